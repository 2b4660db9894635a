//! `filter`: keeps the rows where a predicate holds.
//!
//! ```toml
//! [transforms.valid]
//! plugin = "plugins/filter.wasm"
//! inputs = ["orders"]
//! config = { predicate = "amount > 0 and status != 'refunded'" }
//! ```
//!
//! The rows the predicate doesn't keep (false or null) leave by the
//! `rejected` port: `inputs = ["valid.rejected"]` downstream reads them
//! (unread, they cost nothing).
//!
//! See [`predicate`] for the language. Only the columns the predicate
//! names cross the boundary; the answer is a selection bitmap. Decimals
//! compare exactly with number literals (`amount >= 12.30`, never through
//! a float); `customer.country` reads a struct's field; dictionary columns
//! compare on their values.

mod exact;
pub mod predicate;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_arith::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow_ord::cmp;
use predicate::{parse, Expr, Op, Operand};
use weir_plugin_sdk::arrow_array::cast::AsArray;
use weir_plugin_sdk::arrow_array::types::*;
use weir_plugin_sdk::arrow_array::{
    AnyDictionaryArray, Datum, LargeStringArray, Scalar, StringViewArray,
};
use weir_plugin_sdk::prelude::*;
use weir_plugin_sdk::text::is_text;

/// The output port of the rows the predicate doesn't keep.
const REJECTED: &str = "rejected";

/// The `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `predicate`: rows where it is true are kept.
    predicate: String,
}

struct Filter {
    expr: Expr,
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating()
}

/// A numeric array as float64 (for mixed-type comparisons).
fn as_f64(array: &dyn Array) -> Result<Float64Array> {
    macro_rules! conv {
        ($t:ty) => {
            array
                .as_primitive::<$t>()
                .unary::<_, Float64Type>(|v| v as f64)
        };
    }
    Ok(match array.data_type() {
        DataType::Int8 => conv!(Int8Type),
        DataType::Int16 => conv!(Int16Type),
        DataType::Int32 => conv!(Int32Type),
        DataType::Int64 => conv!(Int64Type),
        DataType::UInt8 => conv!(UInt8Type),
        DataType::UInt16 => conv!(UInt16Type),
        DataType::UInt32 => conv!(UInt32Type),
        DataType::UInt64 => conv!(UInt64Type),
        DataType::Float32 => conv!(Float32Type),
        DataType::Float64 => array.as_primitive::<Float64Type>().clone(),
        other => return Err(Error::msg(format!("filter: {other} is not numeric"))),
    })
}

/// An integer literal as a one-row array of exactly `t`, if it fits.
fn int_scalar(t: &DataType, v: i64) -> Option<ArrayRef> {
    Some(match t {
        DataType::Int8 => Arc::new(Int8Array::from(vec![i8::try_from(v).ok()?])),
        DataType::Int16 => Arc::new(Int16Array::from(vec![i16::try_from(v).ok()?])),
        DataType::Int32 => Arc::new(Int32Array::from(vec![i32::try_from(v).ok()?])),
        DataType::Int64 => Arc::new(Int64Array::from(vec![v])),
        DataType::UInt8 => Arc::new(UInt8Array::from(vec![u8::try_from(v).ok()?])),
        DataType::UInt16 => Arc::new(UInt16Array::from(vec![u16::try_from(v).ok()?])),
        DataType::UInt32 => Arc::new(UInt32Array::from(vec![u32::try_from(v).ok()?])),
        DataType::UInt64 => Arc::new(UInt64Array::from(vec![u64::try_from(v).ok()?])),
        DataType::Float32 => Arc::new(Float32Array::from(vec![v as f32])),
        DataType::Float64 => Arc::new(Float64Array::from(vec![v as f64])),
        _ => return None,
    })
}

fn compare(l: &dyn Datum, op: Op, r: &dyn Datum) -> Result<BooleanArray> {
    Ok(match op {
        Op::Eq => cmp::eq(l, r)?,
        Op::Ne => cmp::neq(l, r)?,
        Op::Lt => cmp::lt(l, r)?,
        Op::Le => cmp::lt_eq(l, r)?,
        Op::Gt => cmp::gt(l, r)?,
        Op::Ge => cmp::gt_eq(l, r)?,
    })
}

/// Type-checks `column (op) literal`; returns the literal as a scalar of the
/// column's type, or `None` when the comparison goes through float64.
fn literal_for(name: &str, t: &DataType, lit: &Operand) -> Result<Option<ArrayRef>> {
    let mismatch = || {
        Error::msg(format!(
            "filter: can't compare column {name:?} ({t}) with {lit}"
        ))
    };
    match lit {
        Operand::Int(v) if is_numeric(t) => Ok(int_scalar(t, *v)),
        Operand::Float(v, _) if t == &DataType::Float64 => {
            Ok(Some(Arc::new(Float64Array::from(vec![*v]))))
        }
        Operand::Float(v, _) if t == &DataType::Float32 => {
            Ok(Some(Arc::new(Float32Array::from(vec![*v as f32]))))
        }
        Operand::Float(..) if is_numeric(t) => Ok(None),
        // Compared exactly by `exact::compare`, not through a scalar.
        Operand::Int(_) | Operand::Float(..)
            if matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) =>
        {
            Ok(None)
        }
        Operand::Str(s) if t == &DataType::Utf8 => {
            Ok(Some(Arc::new(StringArray::from(vec![s.as_str()]))))
        }
        Operand::Str(s) if t == &DataType::LargeUtf8 => {
            Ok(Some(Arc::new(LargeStringArray::from(vec![s.as_str()]))))
        }
        Operand::Str(s) if t == &DataType::Utf8View => {
            Ok(Some(Arc::new(StringViewArray::from(vec![s.as_str()]))))
        }
        _ if matches!(t, DataType::Dictionary(..)) => {
            let DataType::Dictionary(_, values) = t else {
                return Err(mismatch());
            };
            literal_for(name, values, lit)
        }
        Operand::Bool(b) if t == &DataType::Boolean => {
            Ok(Some(Arc::new(BooleanArray::from(vec![*b]))))
        }
        _ => Err(mismatch()),
    }
}

fn literal_f64(lit: &Operand) -> Option<f64> {
    match lit {
        Operand::Int(v) => Some(*v as f64),
        Operand::Float(v, _) => Some(*v),
        _ => None,
    }
}

/// Type-checks `l (op) r`.
fn check_cmp(l: &Operand, r: &Operand, ty: &dyn Fn(&str) -> Result<DataType>) -> Result<()> {
    match (l, r) {
        (Operand::Column(a), Operand::Column(b)) => {
            let (ta, tb) = (ty(a)?, ty(b)?);
            if ta == tb || (is_numeric(&ta) && is_numeric(&tb)) {
                Ok(())
            } else {
                Err(Error::msg(format!(
                    "filter: can't compare {a:?} ({ta}) with {b:?} ({tb})"
                )))
            }
        }
        (Operand::Column(c), lit) | (lit, Operand::Column(c)) => {
            literal_for(c, &ty(c)?, lit).map(|_| ())
        }
        _ => Err(Error::msg("filter: a comparison needs at least one column")),
    }
}

/// Checks every column exists and every comparison type-checks.
fn check(expr: &Expr, schema: &Schema) -> Result<()> {
    let ty = |name: &str| -> Result<DataType> {
        weir_plugin_sdk::path::field(schema, name)
            .map(|f| f.data_type().clone())
            .ok_or_else(|| {
                Error::msg(format!(
                    "filter: the predicate names column {name:?}, which the input doesn't have"
                ))
            })
    };
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => {
            check(a, schema)?;
            check(b, schema)
        }
        Expr::Not(a) => check(a, schema),
        Expr::IsNull(Operand::Column(c), _) => ty(c).map(|_| ()),
        Expr::IsNull(_, _) => Ok(()),
        Expr::Truthy(Operand::Column(c)) => match ty(c)? {
            DataType::Boolean => Ok(()),
            other => Err(Error::msg(format!(
                "filter: column {c:?} is {other}, not a boolean"
            ))),
        },
        Expr::Truthy(Operand::Bool(_)) => Ok(()),
        Expr::Truthy(other) => Err(Error::msg(format!("filter: {other} is not a condition"))),
        Expr::Cmp(l, _, r) => check_cmp(l, r, &ty),
        Expr::In(o, values, _) => values.iter().try_for_each(|v| check_cmp(o, v, &ty)),
        Expr::Between(o, low, high, _) => {
            check_cmp(o, low, &ty)?;
            check_cmp(o, high, &ty)
        }
        Expr::Like(Operand::Column(c), _, _) => match ty(c)? {
            t if is_text(&t) => Ok(()),
            other => Err(Error::msg(format!(
                "filter: `like` matches text; column {c:?} is {other}"
            ))),
        },
        Expr::Like(other, _, _) => Err(Error::msg(format!(
            "filter: `like` needs a column, not {other}"
        ))),
    }
}

struct Columns<'b, 'a> {
    batch: &'b Batch<'a>,
    fetched: HashMap<String, ArrayRef>,
}

impl Columns<'_, '_> {
    fn get(&mut self, name: &str) -> Result<ArrayRef> {
        if let Some(a) = self.fetched.get(name) {
            return Ok(a.clone());
        }
        let a = self.batch.array_by_path(name)?;
        self.fetched.insert(name.to_string(), a.clone());
        Ok(a)
    }
}

/// The answer on a dictionary's values, per row: each row takes its key's.
fn per_key(on_values: &BooleanArray, dict: &dyn AnyDictionaryArray) -> BooleanArray {
    let keys = dict.normalized_keys();
    let null_keys = dict.keys().logical_nulls();
    keys.iter()
        .enumerate()
        .map(|(row, &k)| {
            let key_null = null_keys.as_ref().is_some_and(|n| n.is_null(row));
            (!key_null && on_values.is_valid(k)).then(|| on_values.value(k))
        })
        .collect()
}

/// `l (op) r` on the batch.
fn comparison(
    cols: &mut Columns<'_, '_>,
    l: &Operand,
    op: Op,
    r: &Operand,
) -> Result<BooleanArray> {
    match (l, r) {
        (Operand::Column(a), Operand::Column(b)) => {
            let (x, y) = (cols.get(a)?, cols.get(b)?);
            if x.data_type() == y.data_type() {
                compare(&x, op, &y)
            } else {
                compare(&as_f64(&x)?, op, &as_f64(&y)?)
            }
        }
        (Operand::Column(c), lit) => column_vs_literal(cols, c, op, lit),
        (lit, Operand::Column(c)) => column_vs_literal(cols, c, op.flipped(), lit),
        _ => Err(Error::msg("filter: a comparison needs at least one column")),
    }
}

fn eval(expr: &Expr, cols: &mut Columns<'_, '_>) -> Result<BooleanArray> {
    let rows = cols.batch.num_rows();
    Ok(match expr {
        Expr::And(a, b) => and_kleene(&eval(a, cols)?, &eval(b, cols)?)?,
        Expr::Or(a, b) => or_kleene(&eval(a, cols)?, &eval(b, cols)?)?,
        Expr::Not(a) => not(&eval(a, cols)?)?,
        Expr::IsNull(Operand::Column(c), negated) => {
            let a = cols.get(c)?;
            if *negated {
                is_not_null(&a)?
            } else {
                is_null(&a)?
            }
        }
        Expr::IsNull(_, negated) => BooleanArray::from(vec![*negated; rows]),
        Expr::Truthy(Operand::Column(c)) => cols.get(c)?.as_boolean().clone(),
        Expr::Truthy(Operand::Bool(b)) => BooleanArray::from(vec![*b; rows]),
        Expr::Truthy(other) => {
            return Err(Error::msg(format!("filter: {other} is not a condition")))
        }
        Expr::Cmp(l, op, r) => comparison(cols, l, *op, r)?,
        Expr::In(o, values, negated) => {
            let mut any: Option<BooleanArray> = None;
            for v in values {
                let eq = comparison(cols, o, Op::Eq, v)?;
                any = Some(match any {
                    Some(a) => or_kleene(&a, &eq)?,
                    None => eq,
                });
            }
            let any = any.ok_or_else(|| Error::msg("filter: an empty `in` list"))?;
            if *negated {
                not(&any)?
            } else {
                any
            }
        }
        Expr::Between(o, low, high, negated) => {
            let within = and_kleene(
                &comparison(cols, o, Op::Ge, low)?,
                &comparison(cols, o, Op::Le, high)?,
            )?;
            if *negated {
                not(&within)?
            } else {
                within
            }
        }
        Expr::Like(Operand::Column(c), pattern, negated) => {
            let matched = exact::like(&cols.get(c)?, pattern)?;
            if *negated {
                not(&matched)?
            } else {
                matched
            }
        }
        Expr::Like(other, _, _) => {
            return Err(Error::msg(format!(
                "filter: `like` needs a column, not {other}"
            )))
        }
    })
}

fn column_vs_literal(
    cols: &mut Columns<'_, '_>,
    c: &str,
    op: Op,
    lit: &Operand,
) -> Result<BooleanArray> {
    let array = cols.get(c)?;
    literal_compare(c, &array, op, lit)
}

/// `array (op) literal`, `array` being column (or field) `name`.
fn literal_compare(name: &str, array: &ArrayRef, op: Op, lit: &Operand) -> Result<BooleanArray> {
    if let Some(dict) = array.as_any_dictionary_opt() {
        let on_values = literal_compare(name, dict.values(), op, lit)?;
        return Ok(per_key(&on_values, dict));
    }
    if let DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale) = array.data_type() {
        let text = match lit {
            Operand::Int(v) => v.to_string(),
            Operand::Float(_, text) => text.clone(),
            other => {
                return Err(Error::msg(format!(
                    "filter: can't compare column {name:?} ({}) with {other}",
                    array.data_type()
                )))
            }
        };
        return exact::compare(array, *scale, op, &text);
    }
    match literal_for(name, array.data_type(), lit)? {
        Some(scalar) => compare(array, op, &Scalar::new(scalar)),
        None => {
            let v = literal_f64(lit).ok_or_else(|| Error::msg("filter: not a number"))?;
            compare(
                &as_f64(array)?,
                op,
                &Scalar::new(Float64Array::from(vec![v])),
            )
        }
    }
}

impl Transform for Filter {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        let expr = parse(&config.predicate).map_err(|e| {
            Error::msg(format!("filter: bad predicate {:?}: {e}", config.predicate))
        })?;
        Ok(Filter { expr })
    }

    fn ports(_config: &Config) -> Ports {
        Ports::new(&["in"], &["out", REJECTED])
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        let expr = parse(&config.predicate).map_err(|e| {
            Error::msg(format!("filter: bad predicate {:?}: {e}", config.predicate))
        })?;
        check(&expr, input)?;
        Ok(Some(input.clone()))
    }

    fn describe_ports(inputs: &[Option<Schema>], config: &Config) -> Result<Vec<Option<Schema>>> {
        let out = match inputs.first() {
            Some(Some(input)) => Self::describe(input, config)?,
            _ => None,
        };
        Ok(vec![out.clone(), out])
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        check(&self.expr, &input.schema())?;
        let mut cols = Columns {
            batch: input,
            fetched: HashMap::new(),
        };
        let mask = eval(&self.expr, &mut cols)?;
        if mask.null_count() == 0 && mask.true_count() == mask.len() {
            return Ok(vec![Output::pass()]);
        }
        // Null is not kept, so it is rejected: every row leaves by one port.
        let kept = match mask.nulls() {
            Some(nulls) => mask.values() & nulls.inner(),
            None => mask.values().clone(),
        };
        let rejected = BooleanArray::new(!&kept, None);
        Ok(vec![Output::keep(&mask), Output::keep(&rejected).to(1)])
    }
}

weir_plugin_sdk::export!(Filter);
