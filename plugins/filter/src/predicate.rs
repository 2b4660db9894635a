//! The predicate language: parsing.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | operand "is" ["not"] "null"
//!          | operand ["not"] "in" "(" operand ("," operand)* ")"
//!          | operand ["not"] "like" 'pattern'
//!          | operand ["not"] "between" operand "and" operand
//!          | operand (op operand)?
//! op      := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! operand := column | customer.country | "quoted column" | `quoted column`
//!          | number | 'string' | true | false
//! ```
//! Keywords are case-insensitive. `a.b` reads field `b` of struct column
//! `a` (unless a column is called `a.b`). `like` patterns match all of the
//! text: `%` any run of characters, `_` one character. Comparisons with
//! null are null, and a null predicate drops the row (as SQL's WHERE does).

use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// The operator with its operands swapped (`1 < x` is `x > 1`).
    pub fn flipped(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }
}

/// A value in a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Column(String),
    Int(i64),
    /// A number that isn't an i64, and its text (decimals compare exactly
    /// against it).
    Float(f64, String),
    Str(String),
    Bool(bool),
}

/// As the user writes it in a predicate: `amount`, `"order id"`, `0`,
/// `2.5`, `'500'`, `true`.
impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Column(c) if c.chars().all(|ch| ch.is_alphanumeric() || ch == '_') => {
                write!(f, "{c}")
            }
            Operand::Column(c) => write!(f, "\"{c}\""),
            Operand::Int(v) => write!(f, "{v}"),
            Operand::Float(_, text) => write!(f, "{text}"),
            Operand::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Operand::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A parsed predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, Op, Operand),
    IsNull(Operand, bool),
    /// `operand [not] in (values)`.
    In(Operand, Vec<Operand>, bool),
    /// `operand [not] like 'pattern'`.
    Like(Operand, String, bool),
    /// `operand [not] between low and high` (both ends included).
    Between(Operand, Operand, Operand, bool),
    /// A bare boolean column or literal.
    Truthy(Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Quoted(String),
    Str(String),
    Num(String),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(s) | Token::Num(s) => write!(f, "{s}"),
            Token::Quoted(s) => write!(f, "\"{s}\""),
            Token::Str(s) => write!(f, "'{s}'"),
            Token::Op(op) => write!(f, "{op:?}"),
            Token::LParen => write!(f, "("),
            Token::RParen => write!(f, ")"),
            Token::Comma => write!(f, ","),
        }
    }
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '\'' | '"' | '`' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!("unterminated {quote}…{quote} at position {i}"))
                        }
                        Some(&q) if q == quote => {
                            // A doubled quote is a literal quote.
                            if chars.get(i + 1) == Some(&quote) {
                                text.push(quote);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(if quote == '\'' {
                    Token::Str(text)
                } else {
                    Token::Quoted(text)
                });
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('=', _) => (Op::Eq, 1),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('>', _) => (Op::Gt, 1),
                    _ => return Err(format!("unexpected {c:?} at position {i}")),
                };
                out.push(Token::Op(op));
                i += len;
            }
            c if c.is_ascii_digit()
                || (c == '-'
                    && chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == '.'))
                || c == '.' =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '.'
                        || ((chars[i] == '-' || chars[i] == '+')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                out.push(Token::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} at position {i}")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn keyword(&mut self, word: &str) -> bool {
        if let Some(Token::Ident(s)) = self.peek() {
            if s.eq_ignore_ascii_case(word) {
                self.pos += 1;
                return true;
            }
        }
        false
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.expr()?;
            if self.peek() != Some(&Token::RParen) {
                return Err("missing `)`".into());
            }
            self.pos += 1;
            return Ok(inner);
        }
        let left = self.operand()?;
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err("expected `null` after `is`".into());
            }
            return Ok(Expr::IsNull(left, negated));
        }
        let negated = self.keyword("not");
        if self.keyword("in") {
            return Ok(Expr::In(left, self.list()?, negated));
        }
        if self.keyword("like") {
            return match self.operand()? {
                Operand::Str(pattern) => Ok(Expr::Like(left, pattern, negated)),
                other => Err(format!("`like` takes a 'quoted pattern', not {other}")),
            };
        }
        if self.keyword("between") {
            let low = self.operand()?;
            if !self.keyword("and") {
                return Err("expected `and` in `between … and …`".into());
            }
            let high = self.operand()?;
            return Ok(Expr::Between(left, low, high, negated));
        }
        if negated {
            return Err("expected `in`, `like` or `between` after `not`".into());
        }
        if let Some(Token::Op(op)) = self.peek().cloned() {
            self.pos += 1;
            let right = self.operand()?;
            return Ok(Expr::Cmp(left, op, right));
        }
        Ok(Expr::Truthy(left))
    }

    /// `( operand, … )` after `in`.
    fn list(&mut self) -> Result<Vec<Operand>, String> {
        if self.peek() != Some(&Token::LParen) {
            return Err("expected `(` after `in`".into());
        }
        self.pos += 1;
        let mut values = vec![self.operand()?];
        while self.peek() == Some(&Token::Comma) {
            self.pos += 1;
            values.push(self.operand()?);
        }
        if self.peek() != Some(&Token::RParen) {
            return Err("missing `)` after the `in` list".into());
        }
        self.pos += 1;
        Ok(values)
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let token = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or("the predicate ends where a value was expected")?;
        self.pos += 1;
        Ok(match token {
            Token::Quoted(name) => Operand::Column(name),
            Token::Str(s) => Operand::Str(s),
            Token::Num(n) => match n.parse::<i64>() {
                Ok(i) => Operand::Int(i),
                Err(_) => {
                    let v = n.parse::<f64>().map_err(|_| format!("bad number {n:?}"))?;
                    Operand::Float(v, n)
                }
            },
            Token::Ident(word) if word.eq_ignore_ascii_case("true") => Operand::Bool(true),
            Token::Ident(word) if word.eq_ignore_ascii_case("false") => Operand::Bool(false),
            Token::Ident(word)
                if ["and", "or", "not", "is", "null", "in", "like", "between"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k)) =>
            {
                return Err(format!("expected a column or value, found `{word}`"))
            }
            Token::Ident(name) => Operand::Column(name),
            other => return Err(format!("expected a column or value, found `{other}`")),
        })
    }
}

/// Parses a predicate.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        pos: 0,
    };
    if parser.tokens.is_empty() {
        return Err("the predicate is empty".into());
    }
    let expr = parser.expr()?;
    match parser.peek() {
        None => Ok(expr),
        Some(t) => Err(format!("unexpected `{t}` after a complete predicate")),
    }
}

impl Expr {
    /// Every column the predicate reads.
    pub fn columns(&self, out: &mut Vec<String>) {
        let mut add = |o: &Operand| {
            if let Operand::Column(c) = o {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        };
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::Not(a) => a.columns(out),
            Expr::Cmp(l, _, r) => {
                add(l);
                add(r);
            }
            Expr::IsNull(o, _) | Expr::Truthy(o) | Expr::Like(o, _, _) => add(o),
            Expr::In(o, values, _) => {
                add(o);
                values.iter().for_each(add);
            }
            Expr::Between(o, low, high, _) => {
                add(o);
                add(low);
                add(high);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_print_as_the_user_wrote_them() {
        let shown: Vec<String> = [
            Operand::Int(0),
            Operand::Float(2.5, "2.5".into()),
            Operand::Str("it's".into()),
            Operand::Column("order id".into()),
            Operand::Column("amount".into()),
            Operand::Bool(true),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            shown,
            ["0", "2.5", "'it''s'", "\"order id\"", "amount", "true"]
        );
    }

    #[test]
    fn parses_precedence_and_quotes() {
        let e = parse("amount > 0 and status != 'it''s' or \"Order ID\" is not null").unwrap();
        assert_eq!(
            e,
            Expr::Or(
                Box::new(Expr::And(
                    Box::new(Expr::Cmp(
                        Operand::Column("amount".into()),
                        Op::Gt,
                        Operand::Int(0)
                    )),
                    Box::new(Expr::Cmp(
                        Operand::Column("status".into()),
                        Op::Ne,
                        Operand::Str("it's".into())
                    )),
                )),
                Box::new(Expr::IsNull(Operand::Column("Order ID".into()), true)),
            )
        );
    }

    #[test]
    fn parses_in_like_and_between_with_their_negations() {
        let col = |c: &str| Operand::Column(c.into());
        assert_eq!(
            parse("country in ('DE', 'FR')").unwrap(),
            Expr::In(
                col("country"),
                vec![Operand::Str("DE".into()), Operand::Str("FR".into())],
                false
            )
        );
        assert_eq!(
            parse("customer.name NOT LIKE 'A%'").unwrap(),
            Expr::Like(col("customer.name"), "A%".into(), true)
        );
        assert_eq!(
            parse("amount between 10 and 20.50 and ok").unwrap(),
            Expr::And(
                Box::new(Expr::Between(
                    col("amount"),
                    Operand::Int(10),
                    Operand::Float(20.5, "20.50".into()),
                    false
                )),
                Box::new(Expr::Truthy(col("ok")))
            )
        );
        assert!(parse("a not = 1").unwrap_err().contains("after `not`"));
        assert!(parse("a in 1, 2").unwrap_err().contains("expected `(`"));
        assert!(parse("a like b").unwrap_err().contains("quoted pattern"));
    }

    #[test]
    fn rejects_trailing_tokens() {
        assert!(parse("a > 1 b").is_err());
        assert!(parse("a >").is_err());
        assert!(parse("(a > 1").is_err());
    }
}
