//! Comparisons a float would get wrong, and `like`.
//!
//! A decimal column compares with a number literal exactly: the literal is
//! read from its text onto the column's scale. One with more fractional
//! digits than the scale (`amount > 12.345` on cents) falls strictly
//! between two values the column can hold, which decides each operator
//! (`=` is never true, `> 12.345` is `> 12.34`) — no rounding either way.

use std::sync::Arc;

use weir_plugin_sdk::arrow_array::{
    Array, ArrayRef, BooleanArray, Decimal128Array, Decimal256Array, Scalar,
};
use weir_plugin_sdk::arrow_buffer::{i256, BooleanBuffer};
use weir_plugin_sdk::arrow_schema::DataType;
use weir_plugin_sdk::{Error, Result};

use crate::predicate::Op;

/// A number's text as `(digits, scale)`: `-12.345` → (-12345, 3), `1e3` →
/// (1000, 0), `2.5e-3` → (25, 4). `None` when it isn't a plain number or
/// its digits don't fit an i128.
pub(crate) fn parse(text: &str) -> Option<(i128, u32)> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let negative = mantissa.starts_with('-');
    let unsigned = mantissa.trim_start_matches(['-', '+']);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = format!("{int}{frac}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i128 = digits.parse().ok()?;
    let value = if negative { -value } else { value };
    let scale = i32::try_from(frac.len()).ok()? - exponent;
    if scale >= 0 {
        Some((value, scale as u32))
    } else {
        let factor = 10i128.checked_pow(scale.unsigned_abs())?;
        Some((value.checked_mul(factor)?, 0))
    }
}

/// Every row `value`, null where `array` is.
fn constant(array: &dyn Array, value: bool) -> BooleanArray {
    let values = if value {
        BooleanBuffer::new_set(array.len())
    } else {
        BooleanBuffer::new_unset(array.len())
    };
    BooleanArray::new(values, array.logical_nulls())
}

/// `array (op) literal` for a decimal column of scale `scale`, exactly.
pub(crate) fn compare(array: &ArrayRef, scale: i8, op: Op, text: &str) -> Result<BooleanArray> {
    let Some((value, literal_scale)) = parse(text) else {
        // A number past 10^38 is beyond every decimal128 value.
        return match text.parse::<f64>() {
            Ok(f) if f.abs() >= 1e38 => Ok(constant(array, beyond(op, f > 0.0))),
            _ => Err(Error::msg(format!(
                "filter: {text} has more digits than a decimal holds (38)"
            ))),
        };
    };
    let scale = u32::try_from(scale).map_err(|_| {
        Error::msg(format!(
            "filter: a decimal column of negative scale ({scale}) can't be compared yet"
        ))
    })?;
    // The literal on the column's grid: `on_grid` exactly, or between
    // `floor` and `floor + 1` (in units of the column's last digit).
    let (floor, on_grid) = if literal_scale <= scale {
        match 10i128
            .checked_pow(scale - literal_scale)
            .and_then(|f| value.checked_mul(f))
        {
            Some(v) => (v, true),
            // Beyond every value an i128 decimal holds.
            None => return Ok(constant(array, beyond(op, value > 0))),
        }
    } else {
        match 10i128.checked_pow(literal_scale - scale) {
            Some(f) => (value.div_euclid(f), value.rem_euclid(f) == 0),
            None => (if value < 0 { -1 } else { 0 }, value == 0),
        }
    };
    let op = if on_grid {
        op
    } else {
        match op {
            Op::Eq => return Ok(constant(array, false)),
            Op::Ne => return Ok(constant(array, true)),
            // x < L ⟺ x <= floor; x > L ⟺ x > floor (x on the grid).
            Op::Lt | Op::Le => Op::Le,
            Op::Gt | Op::Ge => Op::Gt,
        }
    };
    let scalar: ArrayRef = match array.data_type() {
        DataType::Decimal128(p, s) => {
            Arc::new(Decimal128Array::from(vec![floor]).with_precision_and_scale(*p, *s)?)
        }
        DataType::Decimal256(p, s) => Arc::new(
            Decimal256Array::from(vec![i256::from_i128(floor)]).with_precision_and_scale(*p, *s)?,
        ),
        other => return Err(Error::msg(format!("filter: {other} is not a decimal"))),
    };
    crate::compare(array, op, &Scalar::new(scalar))
}

/// What `x (op) L` is for every x when L is above (or below) them all.
fn beyond(op: Op, above: bool) -> bool {
    match op {
        Op::Lt | Op::Le => above,
        Op::Gt | Op::Ge => !above,
        Op::Eq => false,
        Op::Ne => true,
    }
}

/// Whether `text` matches the whole of `pattern`: `%` any run of
/// characters, `_` one, `\` makes the next character literal.
pub(crate) fn like_match(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(chars.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy with one backtrack point: the classic wildcard match, linear
    // for patterns without nested stars (and `%` never nests).
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match parts.get(p) {
            Some(P::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    parts[p..].iter().all(|x| *x == P::Any)
}

/// `array like pattern`, per row; null stays null.
pub(crate) fn like(array: &ArrayRef, pattern: &str) -> Result<BooleanArray> {
    let texts = weir_plugin_sdk::text::strings(array).ok_or_else(|| {
        Error::msg(format!(
            "filter: `like` matches text, not {}",
            array.data_type()
        ))
    })?;
    Ok(texts
        .into_iter()
        .map(|v| v.map(|v| like_match(v, pattern)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_text_reads_as_exact_digits_and_scale() {
        assert_eq!(parse("-12.345"), Some((-12345, 3)));
        assert_eq!(parse("1e3"), Some((1000, 0)));
        assert_eq!(parse("2.5e-3"), Some((25, 4)));
        assert_eq!(parse(".5"), Some((5, 1)));
        assert_eq!(
            parse("12345678901234567.89"),
            Some((1234567890123456789, 2))
        );
        assert_eq!(parse("abc"), None);
    }

    fn cents(values: Vec<Option<i128>>) -> ArrayRef {
        Arc::new(
            Decimal128Array::from(values)
                .with_precision_and_scale(20, 2)
                .unwrap(),
        )
    }

    fn answer(op: Op, text: &str) -> Vec<Option<bool>> {
        let a = cents(vec![
            Some(1234),
            Some(1235),
            None,
            Some(1_234_567_890_123_456_789),
        ]);
        compare(&a, 2, op, text).unwrap().iter().collect()
    }

    #[test]
    fn decimals_compare_exactly_with_literals_of_any_scale() {
        assert_eq!(
            answer(Op::Eq, "12.34"),
            [Some(true), Some(false), None, Some(false)]
        );
        assert_eq!(
            answer(Op::Eq, "12.340"),
            [Some(true), Some(false), None, Some(false)]
        );
        // Between 12.34 and 12.35: never equal, and > means >= 12.35.
        assert_eq!(
            answer(Op::Eq, "12.345"),
            [Some(false), Some(false), None, Some(false)]
        );
        assert_eq!(
            answer(Op::Gt, "12.345"),
            [Some(false), Some(true), None, Some(true)]
        );
        assert_eq!(
            answer(Op::Le, "12.345"),
            [Some(true), Some(false), None, Some(false)]
        );
        // Past a double's precision: the last cent counts.
        assert_eq!(
            answer(Op::Eq, "12345678901234567.89"),
            [Some(false), Some(false), None, Some(true)]
        );
        assert_eq!(
            answer(Op::Lt, "12345678901234567.89"),
            [Some(true), Some(true), None, Some(false)]
        );
        assert_eq!(
            answer(Op::Lt, "1e40"),
            [Some(true), Some(true), None, Some(true)]
        );
    }

    #[test]
    fn like_matches_the_whole_text_with_percent_underscore_and_escapes() {
        assert!(like_match("Berlin", "B%"));
        assert!(like_match("Berlin", "%rli_"));
        assert!(!like_match("Berlin", "%rl"));
        assert!(like_match("a%b", "a\\%b"));
        assert!(!like_match("axb", "a\\%b"));
        assert!(like_match("", "%"));
        assert!(like_match("ééé", "_é_"));
        assert!(like_match("mississippi", "%iss%ppi"));
    }
}
