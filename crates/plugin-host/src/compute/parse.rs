//! The expression language of the `compute` import: parsing.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | compare
//! compare := sum [op sum | "is" ["not"] "null"]
//! op      := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! sum     := product (("+" | "-") product)*
//! product := unary (("*" | "/" | "%") unary)*
//! unary   := "-" unary | primary ("::" type)*
//! primary := number | 'text' | true | false | null | "(" expr ")"
//!          | column | "quoted column" | function "(" expr ("," expr)* ")"
//! ```
//!
//! Keywords and function names are case-insensitive; columns are not.
//! Nesting is bounded ([`MAX_DEPTH`]) so a hostile expression can't
//! exhaust the host's stack.

/// Deepest nesting of parentheses, operators and calls.
pub const MAX_DEPTH: usize = 64;

/// Longest expression, in bytes.
pub const MAX_LEN: usize = 4096;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column(String),
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Null,
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(Box<Expr>, Op, Box<Expr>),
    IsNull(Box<Expr>, bool),
    Cast(Box<Expr>, String),
    Call(String, Vec<Expr>),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Text(String),
    Number(String),
    Sym(&'static str),
}

const SYMBOLS: [&str; 17] = [
    "::", "==", "!=", "<>", "<=", ">=", "<", ">", "=", "+", "-", "*", "/", "%", "(", ")", ",",
];

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '\'' || c == '"' {
            let (value, after) = quoted(rest, c)?;
            out.push(match c {
                '\'' => Token::Text(value),
                _ => Token::Quoted(value),
            });
            rest = after;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit())) {
            let end = rest
                .find(|d: char| !(d.is_ascii_alphanumeric() || d == '.' || d == '_'))
                .unwrap_or(rest.len());
            // An exponent's sign belongs to the number: `1e-3`.
            let mut end = end;
            if rest[..end].ends_with(['e', 'E']) && rest[end..].starts_with(['+', '-']) {
                end += 1 + rest[end + 1..]
                    .find(|d: char| !d.is_ascii_digit())
                    .unwrap_or(rest.len() - end - 1);
            }
            out.push(Token::Number(rest[..end].to_string()));
            rest = &rest[end..];
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let end = rest
                .find(|d: char| !(d.is_alphanumeric() || d == '_'))
                .unwrap_or(rest.len());
            out.push(Token::Word(rest[..end].to_string()));
            rest = &rest[end..];
            continue;
        }
        match SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
            Some(s) => {
                out.push(Token::Sym(s));
                rest = &rest[s.len()..];
            }
            None => return Err(format!("unexpected {c:?}")),
        }
    }
    Ok(out)
}

/// A `'…'` or `"…"` literal at the start of `text` (the quote doubled
/// inside), and what follows it.
fn quoted(text: &str, quote: char) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            if chars.peek().map(|(_, n)| *n) == Some(quote) {
                chars.next();
                value.push(quote);
                continue;
            }
            return Ok((value, &text[i + 1..]));
        }
        value.push(c);
    }
    Err(format!("unterminated {quote}…{quote}"))
}

/// Parses `text`.
pub fn parse(text: &str) -> Result<Expr, String> {
    if text.len() > MAX_LEN {
        return Err(format!(
            "the expression is {} bytes (at most {MAX_LEN})",
            text.len()
        ));
    }
    let mut p = Parser {
        tokens: tokens(text)?,
        at: 0,
        depth: 0,
    };
    let expr = p.or()?;
    if let Some(t) = p.tokens.get(p.at) {
        return Err(format!(
            "unexpected {} after a complete expression",
            show(t)
        ));
    }
    // A chain `a + b + c …` nests to the left without parentheses; the
    // evaluator recurses on the tree, so its depth is bounded too.
    if depth(&expr) > MAX_TREE_DEPTH {
        return Err(format!(
            "the expression has more than {MAX_TREE_DEPTH} operations in a chain"
        ));
    }
    Ok(expr)
}

/// Deepest chain of operations the evaluator may recurse through.
pub const MAX_TREE_DEPTH: usize = 256;

/// The tree's depth, without recursion (the tree may be as deep as the
/// text is long).
fn depth(root: &Expr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root, 1)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        match e {
            Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => {
                stack.push((x, d + 1))
            }
            Expr::Binary(l, _, r) => {
                stack.push((l, d + 1));
                stack.push((r, d + 1));
            }
            Expr::Call(_, args) => stack.extend(args.iter().map(|a| (a, d + 1))),
            _ => {}
        }
    }
    deepest
}

fn show(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("`{w}`"),
        Token::Quoted(q) => format!("\"{q}\""),
        Token::Text(s) => format!("'{s}'"),
        Token::Number(n) => n.clone(),
        Token::Sym(s) => format!("`{s}`"),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(word) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn symbol(&mut self, options: &[&'static str]) -> Option<&'static str> {
        match self.peek() {
            Some(Token::Sym(s)) if options.contains(s) => {
                let s = *s;
                self.at += 1;
                Some(s)
            }
            _ => None,
        }
    }

    fn expect(&mut self, symbol: &'static str) -> Result<(), String> {
        match self.symbol(&[symbol]) {
            Some(_) => Ok(()),
            None => Err(match self.peek() {
                Some(t) => format!("expected `{symbol}`, found {}", show(t)),
                None => format!("expected `{symbol}` at the end"),
            }),
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("the expression nests deeper than {MAX_DEPTH}"));
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.nested(|p| {
            let mut left = p.and()?;
            while p.keyword("or") {
                left = Expr::Binary(Box::new(left), Op::Or, Box::new(p.and()?));
            }
            Ok(left)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.keyword("and") {
            left = Expr::Binary(Box::new(left), Op::And, Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return self.nested(|p| Ok(Expr::Not(Box::new(p.not()?))));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, String> {
        let left = self.sum()?;
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err("expected `null` after `is`".into());
            }
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let op = match self.symbol(&["=", "==", "!=", "<>", "<", "<=", ">", ">="]) {
            None => return Ok(left),
            Some("=" | "==") => Op::Eq,
            Some("!=" | "<>") => Op::Ne,
            Some("<") => Op::Lt,
            Some("<=") => Op::Le,
            Some(">") => Op::Gt,
            Some(_) => Op::Ge,
        };
        Ok(Expr::Binary(Box::new(left), op, Box::new(self.sum()?)))
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.product()?;
        while let Some(s) = self.symbol(&["+", "-"]) {
            let op = if s == "+" { Op::Add } else { Op::Sub };
            left = Expr::Binary(Box::new(left), op, Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while let Some(s) = self.symbol(&["*", "/", "%"]) {
            let op = match s {
                "*" => Op::Mul,
                "/" => Op::Div,
                _ => Op::Rem,
            };
            left = Expr::Binary(Box::new(left), op, Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.symbol(&["-"]).is_some() {
            return self.nested(|p| Ok(Expr::Neg(Box::new(p.unary()?))));
        }
        let mut expr = self.primary()?;
        while self.symbol(&["::"]).is_some() {
            match self.peek().cloned() {
                Some(Token::Word(t)) => {
                    self.at += 1;
                    expr = Expr::Cast(Box::new(expr), t.to_ascii_lowercase());
                }
                _ => return Err("expected a type name after `::`".into()),
            }
        }
        Ok(expr)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let Some(token) = self.peek().cloned() else {
            return Err("the expression ends where a value was expected".into());
        };
        self.at += 1;
        match token {
            Token::Number(n) => number(&n),
            Token::Text(s) => Ok(Expr::Text(s)),
            Token::Quoted(c) => Ok(Expr::Column(c)),
            Token::Sym("(") => {
                let inner = self.or()?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Word(w) if self.symbol(&["("]).is_some() => self.nested(|p| {
                let mut args = vec![p.or()?];
                while p.symbol(&[","]).is_some() {
                    args.push(p.or()?);
                }
                p.expect(")")?;
                Ok(Expr::Call(w.to_ascii_lowercase(), args))
            }),
            Token::Word(w) => Ok(match w.to_ascii_lowercase().as_str() {
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "null" => Expr::Null,
                _ => Expr::Column(w),
            }),
            other => Err(format!("unexpected {}", show(&other))),
        }
    }
}

fn number(text: &str) -> Result<Expr, String> {
    let plain = text.replace('_', "");
    if let Ok(i) = plain.parse::<i64>() {
        return Ok(Expr::Int(i));
    }
    match plain.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Expr::Float(f)),
        _ => Err(format!("{text} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(c: &str) -> Box<Expr> {
        Box::new(Expr::Column(c.into()))
    }

    #[test]
    fn arithmetic_binds_tighter_than_comparison_and_comparison_than_logic() {
        let e = parse("a + 2 * b > 3 and not c is null or d").unwrap();
        let sum = Expr::Binary(
            col("a"),
            Op::Add,
            Box::new(Expr::Binary(Box::new(Expr::Int(2)), Op::Mul, col("b"))),
        );
        let gt = Expr::Binary(Box::new(sum), Op::Gt, Box::new(Expr::Int(3)));
        let not = Expr::Not(Box::new(Expr::IsNull(col("c"), false)));
        let and = Expr::Binary(Box::new(gt), Op::And, Box::new(not));
        assert_eq!(e, Expr::Binary(Box::new(and), Op::Or, col("d")));
    }

    #[test]
    fn casts_calls_quotes_and_literals() {
        assert_eq!(
            parse(r#"round("unit price" * 100)::INT64"#).unwrap(),
            Expr::Cast(
                Box::new(Expr::Call(
                    "round".into(),
                    vec![Expr::Binary(
                        col("unit price"),
                        Op::Mul,
                        Box::new(Expr::Int(100))
                    )]
                )),
                "int64".into()
            )
        );
        assert_eq!(parse("'it''s'").unwrap(), Expr::Text("it's".into()));
        assert_eq!(parse("1.5e-3").unwrap(), Expr::Float(0.0015));
        assert_eq!(parse("-x").unwrap(), Expr::Neg(col("x")));
        assert_eq!(
            parse("x IS NOT NULL").unwrap(),
            Expr::IsNull(col("x"), true)
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse("a >").unwrap_err().contains("ends where a value"));
        assert!(parse("(a").unwrap_err().contains("expected `)`"));
        assert!(parse("a b")
            .unwrap_err()
            .contains("after a complete expression"));
        assert!(parse("'open").unwrap_err().contains("unterminated"));
        assert!(parse("a # b").unwrap_err().contains("unexpected '#'"));
    }

    #[test]
    fn hostile_nesting_and_length_are_refused_not_a_stack_overflow() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&deep).is_err());
        let negs = format!("{}1", "-".repeat(3_000));
        assert!(parse(&negs).unwrap_err().contains("nests deeper"));
        let nots = format!("{}true", "not ".repeat(1_000));
        assert!(parse(&nots).is_err());
        let chain = format!("a{}", " + a".repeat(1_000));
        assert!(parse(&chain).unwrap_err().contains("operations in a chain"));
        assert!(parse(&format!("a{}", " + a".repeat(200))).is_ok());
    }
}
