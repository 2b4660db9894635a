//! Nested and parameterised type names as a manifest spells them, the way
//! DuckDB and Spark DDL do: `decimal(12, 2)`, `list<utf8>`,
//! `struct<id: int64, tags: list<utf8>>`, `map<utf8, int64>`,
//! `dictionary<int32, utf8>`, `fixed_size_list<float32, 3>`,
//! `fixed_size_binary(16)` — nested to any depth, the leaves being the
//! simple names of [`super::schema::parse_type`].

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields};

/// Whether `s` is spelled in this syntax (rather than a simple name or
/// arrow-rs's own `Debug` spelling, which [`super::schema::parse_type`]
/// also reads).
pub(crate) fn is_ours(s: &str) -> bool {
    let head: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    s.contains('<')
        || matches!(
            head.as_str(),
            "decimal" | "decimal128" | "decimal256" | "numeric" | "fixed_size_binary"
        )
}

/// Parses `s`; `simple` reads a leaf name (`int64`, `utf8`, …).
pub(crate) fn parse(
    s: &str,
    simple: &dyn Fn(&str) -> Option<DataType>,
) -> Result<DataType, String> {
    let mut p = Parser { s, pos: 0, simple };
    let t = p.ty(0)?;
    p.skip_ws();
    if p.pos != s.len() {
        return Err(p.error("unexpected text after the type"));
    }
    Ok(t)
}

/// Deeper than this is a mistake (or an attack), not a schema.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    simple: &'a dyn Fn(&str) -> Option<DataType>,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!(
            "{:?}: {what} at character {}; nested types read like \
             struct<id: int64, tags: list<utf8>>, map<utf8, int64>, decimal(12, 2)",
            self.s,
            self.pos + 1
        )
    }

    fn skip_ws(&mut self) {
        while self.s[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.s[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.s[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{c}`")))
        }
    }

    fn word(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        let len = self.s[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.s.len() - start);
        self.pos += len;
        &self.s[start..start + len]
    }

    fn number(&mut self) -> Result<i64, String> {
        self.skip_ws();
        let negative = self.eat('-');
        let digits = self.word().to_string();
        let n: i64 = digits
            .parse()
            .map_err(|_| self.error(&format!("expected a number, not {digits:?}")))?;
        Ok(if negative { -n } else { n })
    }

    /// A struct field's name: a word, or quoted with `"` or `` ` `` (then
    /// any text but the quote).
    fn name(&mut self) -> Result<String, String> {
        self.skip_ws();
        for quote in ['"', '`'] {
            if self.eat(quote) {
                let end = self.s[self.pos..]
                    .find(quote)
                    .ok_or_else(|| self.error("unclosed quote"))?;
                let name = self.s[self.pos..self.pos + end].to_string();
                self.pos += end + 1;
                return Ok(name);
            }
        }
        let name = self.word().to_string();
        if name.is_empty() {
            return Err(self.error("expected a field name"));
        }
        Ok(name)
    }

    fn ty(&mut self, depth: usize) -> Result<DataType, String> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH}")));
        }
        let start = self.pos;
        let word = self.word().to_ascii_lowercase();
        Ok(match word.as_str() {
            "decimal" | "decimal128" | "decimal256" | "numeric" => self.decimal(&word)?,
            "fixed_size_binary" => {
                self.expect('(')?;
                let width = self.width()?;
                self.expect(')')?;
                DataType::FixedSizeBinary(width)
            }
            "list" | "large_list" => {
                self.expect('<')?;
                let item = Arc::new(Field::new_list_field(self.ty(depth + 1)?, true));
                self.expect('>')?;
                match word.as_str() {
                    "list" => DataType::List(item),
                    _ => DataType::LargeList(item),
                }
            }
            "fixed_size_list" => {
                self.expect('<')?;
                let item = Arc::new(Field::new_list_field(self.ty(depth + 1)?, true));
                self.expect(',')?;
                let size = self.width()?;
                self.expect('>')?;
                DataType::FixedSizeList(item, size)
            }
            "struct" => self.fields(depth)?,
            "map" => {
                self.expect('<')?;
                let key = self.ty(depth + 1)?;
                self.expect(',')?;
                let value = self.ty(depth + 1)?;
                self.expect('>')?;
                let entries = Fields::from(vec![
                    Field::new("key", key, false),
                    Field::new("value", value, true),
                ]);
                let entries = Field::new("entries", DataType::Struct(entries), false);
                DataType::Map(Arc::new(entries), false)
            }
            "dictionary" => {
                self.expect('<')?;
                let key = self.ty(depth + 1)?;
                if !key.is_dictionary_key_type() {
                    return Err(self.error(&format!(
                        "a dictionary's keys are an integer type (int8..int64, uint8..uint64), \
                         not {key}"
                    )));
                }
                self.expect(',')?;
                let value = self.ty(depth + 1)?;
                self.expect('>')?;
                DataType::Dictionary(Box::new(key), Box::new(value))
            }
            "" => return Err(self.error("expected a type")),
            name => (self.simple)(name).ok_or_else(|| {
                self.pos = start;
                self.skip_ws();
                self.error(&format!("unknown type {name:?}"))
            })?,
        })
    }

    fn width(&mut self) -> Result<i32, String> {
        let n = self.number()?;
        i32::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| self.error(&format!("a width must be a positive number, not {n}")))
    }

    /// `(precision, scale)` after `decimal`: decimal128 up to precision 38,
    /// decimal256 beyond (or when asked for by name).
    fn decimal(&mut self, word: &str) -> Result<DataType, String> {
        self.expect('(')?;
        let precision = self.number()?;
        let scale = if self.eat(',') { self.number()? } else { 0 };
        self.expect(')')?;
        let max = if word == "decimal128" { 38 } else { 76 };
        let precision = u8::try_from(precision)
            .ok()
            .filter(|p| (1..=max).contains(p))
            .ok_or_else(|| self.error(&format!("precision {precision} is outside 1..={max}")))?;
        let scale = i8::try_from(scale)
            .ok()
            .filter(|s| i16::from(*s) <= i16::from(precision))
            .ok_or_else(|| {
                self.error(&format!(
                    "scale {scale} is more than the precision {precision}"
                ))
            })?;
        Ok(if precision <= 38 && word != "decimal256" {
            DataType::Decimal128(precision, scale)
        } else {
            DataType::Decimal256(precision, scale)
        })
    }

    fn fields(&mut self, depth: usize) -> Result<DataType, String> {
        self.expect('<')?;
        let mut fields = Vec::new();
        loop {
            let name = self.name()?;
            if fields.iter().any(|f: &Field| f.name() == &name) {
                return Err(self.error(&format!("field {name:?} appears twice")));
            }
            self.expect(':')?;
            fields.push(Field::new(name, self.ty(depth + 1)?, true));
            if !self.eat(',') {
                break;
            }
        }
        self.expect('>')?;
        Ok(DataType::Struct(Fields::from(fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(name: &str) -> Option<DataType> {
        match name {
            "int64" => Some(DataType::Int64),
            "int32" => Some(DataType::Int32),
            "utf8" => Some(DataType::Utf8),
            "float64" => Some(DataType::Float64),
            _ => None,
        }
    }

    fn p(s: &str) -> Result<DataType, String> {
        parse(s, &simple)
    }

    fn list(t: DataType) -> DataType {
        DataType::List(Arc::new(Field::new_list_field(t, true)))
    }

    #[test]
    fn a_struct_of_a_list_and_a_decimal_parses_to_arrows_types() {
        let t = p("struct<id: int64, tags: list<utf8>, amount: decimal(12, 2)>").unwrap();
        assert_eq!(
            t,
            DataType::Struct(Fields::from(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("tags", list(DataType::Utf8), true),
                Field::new("amount", DataType::Decimal128(12, 2), true),
            ]))
        );
    }

    #[test]
    fn decimals_past_precision_38_are_decimal256() {
        assert_eq!(p("decimal(50,1)"), Ok(DataType::Decimal256(50, 1)));
        assert_eq!(p("numeric(10)"), Ok(DataType::Decimal128(10, 0)));
        assert_eq!(p("decimal256(10, 2)"), Ok(DataType::Decimal256(10, 2)));
        assert!(p("decimal128(39, 2)")
            .unwrap_err()
            .contains("outside 1..=38"));
        assert!(p("decimal(5, 6)")
            .unwrap_err()
            .contains("more than the precision"));
    }

    #[test]
    fn maps_dictionaries_and_fixed_sizes_parse() {
        let DataType::Map(entries, false) = p("map<utf8, list<int64>>").unwrap() else {
            panic!("a map")
        };
        let DataType::Struct(kv) = entries.data_type() else {
            panic!("entries")
        };
        assert_eq!(kv[0].data_type(), &DataType::Utf8);
        assert!(!kv[0].is_nullable(), "map keys are never null");
        assert_eq!(kv[1].data_type(), &list(DataType::Int64));
        assert_eq!(
            p("dictionary<int32, utf8>"),
            Ok(DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(DataType::Utf8)
            ))
        );
        assert!(p("dictionary<utf8, utf8>")
            .unwrap_err()
            .contains("integer type"));
        assert_eq!(
            p("fixed_size_list<float64, 3>"),
            Ok(DataType::FixedSizeList(
                Arc::new(Field::new_list_field(DataType::Float64, true)),
                3
            ))
        );
        assert_eq!(
            p("fixed_size_binary(16)"),
            Ok(DataType::FixedSizeBinary(16))
        );
    }

    #[test]
    fn quoted_field_names_keep_any_text() {
        let t = p("struct<\"order id\": int64, `a:b`: utf8>").unwrap();
        let DataType::Struct(fields) = t else {
            panic!("a struct")
        };
        assert_eq!(fields[0].name(), "order id");
        assert_eq!(fields[1].name(), "a:b");
    }

    #[test]
    fn mistakes_are_named_with_their_position() {
        let err = p("struct<id int64>").unwrap_err();
        assert!(err.contains("expected `:` at character 11"), "{err}");
        let err = p("list<money>").unwrap_err();
        assert!(
            err.contains("unknown type \"money\" at character 6"),
            "{err}"
        );
        let err = p("list<int64").unwrap_err();
        assert!(err.contains("expected `>`"), "{err}");
        assert!(p("struct<a: int64, a: utf8>")
            .unwrap_err()
            .contains("appears twice"));
        let deep = format!("{}int64{}", "list<".repeat(100), ">".repeat(100));
        assert!(p(&deep).unwrap_err().contains("deeper than 64"));
    }

    #[test]
    fn only_nested_and_parameterised_names_are_ours() {
        assert!(is_ours("list<int64>") && is_ours(" Decimal(3,1)") && is_ours("numeric(4)"));
        assert!(!is_ours("int64") && !is_ours("Timestamp(Microsecond, None)"));
    }
}
