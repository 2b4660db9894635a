//! The `compute` import of `weir:plugin@0.2.0`: whole-column expressions
//! the host evaluates with Arrow kernels over a lent batch's rows, for
//! guests whose own per-value loops are slow (JavaScript and Python run
//! interpreted inside the sandbox: 0.4–0.5 M rows/s for a comparison and
//! a multiplication, where the kernels do hundreds of millions).
//!
//! Semantics are SQL's, with the types kept narrow and explicit:
//! - integers (any width, unsigned up to 32 bits) compute as int64, floats
//!   as float64; an int64 meeting a float64 becomes a float64. Overflow is
//!   an error; an integer division or remainder by zero is null; `uint64`
//!   and decimals must be cast first (`x::float64`).
//! - comparisons take two numbers, two strings, two booleans, or two
//!   values of the same type (dates, timestamps); a NaN compares as null.
//! - `and`/`or` are three-valued (null and false is false); a predicate
//!   keeps the rows where it is true (null drops the row, as `WHERE` does).
//! - functions: `round` (half away from zero), `floor`, `ceil`, `abs`,
//!   `coalesce(a, b, …)`; `x::type` casts (`boolean`, `int8`…`int64`,
//!   `uint8`…`uint64`, `float32`, `float64`, `utf8`, `date32`,
//!   `timestamp`): a value that doesn't fit or parse becomes null.

mod parse;

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Datum, Float64Array, Int64Array, Scalar, StringArray,
    UInt32Array,
};
use arrow::compute::kernels::{boolean, cmp, numeric, zip::zip};
use arrow::compute::{cast_with_options, is_not_null, is_null, nullif, CastOptions};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use arrow::error::ArrowError;

use crate::rows::Rows;
use parse::{parse, Expr, Op};
pub use parse::{MAX_DEPTH, MAX_LEN};

/// The rows where `predicate` is true over `rows`, as a selection bitmap:
/// bit `i % 8` of byte `i / 8` for row `i`.
pub fn matches(rows: &Rows, predicate: &str) -> Result<Vec<u8>, String> {
    let expr = parse(predicate).map_err(|e| format!("predicate {predicate:?}: {e}"))?;
    let value = Eval { rows }
        .eval(&expr)
        .map_err(|e| format!("predicate {predicate:?}: {e}"))?;
    let value = value.broadcast(rows.num_rows())?;
    let Some(mask) = value.as_boolean_opt() else {
        return Err(format!(
            "predicate {predicate:?} is {}, not a boolean",
            value.data_type()
        ));
    };
    // Null is not true: the row goes.
    let kept = match mask.nulls() {
        Some(nulls) => mask.values() & nulls.inner(),
        None => mask.values().clone(),
    };
    Ok(kept.sliced().as_slice()[..rows.num_rows().div_ceil(8)].to_vec())
}

/// `expression` evaluated over every row of `rows`, one value per row.
pub fn evaluate(rows: &Rows, expression: &str) -> Result<ArrayRef, String> {
    let expr = parse(expression).map_err(|e| format!("expression {expression:?}: {e}"))?;
    Eval { rows }
        .eval(&expr)
        .and_then(|v| v.broadcast(rows.num_rows()))
        .map_err(|e| format!("expression {expression:?}: {e}"))
}

/// A value under evaluation: one per row, or one for every row.
#[derive(Clone)]
enum Value {
    Rows(ArrayRef),
    /// A one-element array standing for every row.
    Scalar(ArrayRef),
}

impl Value {
    fn array(&self) -> &ArrayRef {
        match self {
            Value::Rows(a) | Value::Scalar(a) => a,
        }
    }

    fn data_type(&self) -> &DataType {
        self.array().data_type()
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }

    /// The same kind of value over `array` (a kernel's result).
    fn with(&self, other: &Value, array: ArrayRef) -> Value {
        match self.is_scalar() && other.is_scalar() {
            true => Value::Scalar(array),
            false => Value::Rows(array),
        }
    }

    fn map(self, f: impl FnOnce(&ArrayRef) -> Result<ArrayRef, String>) -> Result<Value, String> {
        Ok(match self {
            Value::Rows(a) => Value::Rows(f(&a)?),
            Value::Scalar(a) => Value::Scalar(f(&a)?),
        })
    }

    /// One value per row: a scalar repeated `rows` times.
    fn broadcast(self, rows: usize) -> Result<ArrayRef, String> {
        match self {
            Value::Rows(a) => Ok(a),
            Value::Scalar(a) => {
                let zeros = UInt32Array::from(vec![0u32; rows]);
                arrow::compute::take(&a, &zeros, None).map_err(|e| e.to_string())
            }
        }
    }

    fn datum(&self) -> Box<dyn Datum + '_> {
        match self {
            Value::Rows(a) => Box::new(a),
            Value::Scalar(a) => Box::new(Scalar::new(a.clone())),
        }
    }
}

fn scalar(array: impl Array + 'static) -> Value {
    Value::Scalar(Arc::new(array))
}

fn kernel(e: ArrowError) -> String {
    match e {
        ArrowError::ArithmeticOverflow(m) => format!("arithmetic overflow ({m})"),
        other => other.to_string(),
    }
}

struct Eval<'a> {
    rows: &'a Rows,
}

impl Eval<'_> {
    fn eval(&self, expr: &Expr) -> Result<Value, String> {
        match expr {
            Expr::Column(name) => self.column(name),
            Expr::Int(i) => Ok(scalar(Int64Array::from(vec![*i]))),
            Expr::Float(f) => Ok(scalar(Float64Array::from(vec![*f]))),
            Expr::Text(s) => Ok(scalar(StringArray::from(vec![s.as_str()]))),
            Expr::Bool(b) => Ok(scalar(BooleanArray::from(vec![*b]))),
            Expr::Null => Ok(Value::Scalar(arrow::array::new_null_array(
                &DataType::Null,
                1,
            ))),
            Expr::Neg(inner) => {
                let v = numeric_value(self.eval(inner)?)?;
                v.map(|a| numeric::neg(a).map_err(kernel))
            }
            Expr::Not(inner) => {
                let v = boolean_value(self.eval(inner)?)?;
                v.map(|a| {
                    boolean::not(a.as_boolean())
                        .map(|b| Arc::new(b) as ArrayRef)
                        .map_err(kernel)
                })
            }
            Expr::IsNull(inner, negated) => self.eval(inner)?.map(|a| {
                let out = match negated {
                    false => is_null(a),
                    true => is_not_null(a),
                };
                out.map(|b| Arc::new(b) as ArrayRef).map_err(kernel)
            }),
            Expr::Cast(inner, to) => {
                let to = type_named(to)?;
                self.eval(inner)?.map(|a| cast(a, &to))
            }
            Expr::Call(name, args) => self.call(name, args),
            Expr::Binary(l, op, r) => {
                let (l, r) = (self.eval(l)?, self.eval(r)?);
                match op {
                    Op::And | Op::Or => self.logic(l, *op, r),
                    Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem => arithmetic(l, *op, r),
                    _ => compare(l, *op, r),
                }
            }
        }
    }

    fn column(&self, name: &str) -> Result<Value, String> {
        let schema = self.rows.schema();
        let Some((index, _)) = schema.column_with_name(name) else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(format!(
                "no column named {name:?} (the batch has {})",
                names.join(", ")
            ));
        };
        match self.rows.column(index) {
            Some(Ok(array)) => Ok(Value::Rows(array)),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(format!("no column {index}")),
        }
    }

    fn logic(&self, l: Value, op: Op, r: Value) -> Result<Value, String> {
        let rows = self.rows.num_rows();
        let (l, r) = (boolean_value(l)?, boolean_value(r)?);
        let both_scalar = l.is_scalar() && r.is_scalar();
        let (l, r) = match both_scalar {
            true => (l.array().clone(), r.array().clone()),
            false => (l.broadcast(rows)?, r.broadcast(rows)?),
        };
        let (l, r) = (l.as_boolean(), r.as_boolean());
        let out = match op {
            Op::And => boolean::and_kleene(l, r),
            _ => boolean::or_kleene(l, r),
        }
        .map_err(kernel)?;
        Ok(match both_scalar {
            true => scalar(out),
            false => Value::Rows(Arc::new(out)),
        })
    }

    fn call(&self, name: &str, args: &[Expr]) -> Result<Value, String> {
        let one = || -> Result<Value, String> {
            match args {
                [arg] => numeric_value(self.eval(arg)?),
                _ => Err(format!("{name} takes one argument, not {}", args.len())),
            }
        };
        match name {
            "round" => one()?.map(|a| float_unary(a, f64::round)),
            "floor" => one()?.map(|a| float_unary(a, f64::floor)),
            "ceil" => one()?.map(|a| float_unary(a, f64::ceil)),
            "abs" => one()?.map(abs),
            // Argument by argument: a hostile `coalesce(x, x, …)` of a
            // thousand arguments holds two columns at a time, not a
            // thousand (the host's memory is not the plugin's budget).
            "coalesce" => coalesce(args.iter().map(|a| self.eval(a))),
            other => Err(format!(
                "no function {other:?} (there are round, floor, ceil, abs, coalesce)"
            )),
        }
    }
}

/// `v` as int64 or float64 (null: an int64 null).
fn numeric_value(v: Value) -> Result<Value, String> {
    let to = match v.data_type() {
        DataType::Int64 | DataType::Float64 => return Ok(v),
        DataType::Null
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => DataType::Int64,
        DataType::Float16 | DataType::Float32 => DataType::Float64,
        other => {
            return Err(format!(
                "{other} is not a number here{}",
                match other {
                    DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) =>
                        " (cast it first: x::float64 or x::int64)",
                    _ => "",
                }
            ))
        }
    };
    v.map(|a| cast(a, &to))
}

fn boolean_value(v: Value) -> Result<Value, String> {
    match v.data_type() {
        DataType::Boolean => Ok(v),
        DataType::Null => v.map(|a| cast(a, &DataType::Boolean)),
        other => Err(format!("{other} is not a boolean")),
    }
}

/// Two numbers brought to one type: int64, or float64 if either is.
fn numeric_pair(l: Value, r: Value) -> Result<(Value, Value), String> {
    let (l, r) = (numeric_value(l)?, numeric_value(r)?);
    if l.data_type() == r.data_type() {
        return Ok((l, r));
    }
    let float = |v: Value| v.map(|a| cast(a, &DataType::Float64));
    Ok((float(l)?, float(r)?))
}

fn arithmetic(l: Value, op: Op, r: Value) -> Result<Value, String> {
    let (l, mut r) = numeric_pair(l, r)?;
    if l.data_type() == &DataType::Int64 && matches!(op, Op::Div | Op::Rem) {
        // A zero divisor gives null, not an error for the whole batch.
        r = r.map(|a| {
            let zero = cmp::eq(a, &Int64Array::new_scalar(0)).map_err(kernel)?;
            nullif(a, &zero).map_err(kernel)
        })?;
    }
    let (ld, rd) = (l.datum(), r.datum());
    let out = match op {
        Op::Add => numeric::add(&*ld, &*rd),
        Op::Sub => numeric::sub(&*ld, &*rd),
        Op::Mul => numeric::mul(&*ld, &*rd),
        Op::Div => numeric::div(&*ld, &*rd),
        _ => numeric::rem(&*ld, &*rd),
    }
    .map_err(kernel)?;
    Ok(l.with(&r, out))
}

fn compare(l: Value, op: Op, r: Value) -> Result<Value, String> {
    let number = |t: &DataType| t.is_numeric() || t == &DataType::Null;
    let text = |t: &DataType| {
        matches!(
            t,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
        )
    };
    let (l, r) = match (l.data_type(), r.data_type()) {
        (a, b) if number(a) && number(b) => {
            let (l, r) = numeric_pair(l, r)?;
            (without_nan(l)?, without_nan(r)?)
        }
        (a, b) if text(a) && text(b) => (
            l.map(|a| cast(a, &DataType::Utf8))?,
            r.map(|a| cast(a, &DataType::Utf8))?,
        ),
        (a, b) if a == b || a == &DataType::Null || b == &DataType::Null => untyped_null(l, r)?,
        (a, b) => return Err(format!("can't compare {a} with {b}")),
    };
    let (ld, rd) = (l.datum(), r.datum());
    let out = match op {
        Op::Eq => cmp::eq(&*ld, &*rd),
        Op::Ne => cmp::neq(&*ld, &*rd),
        Op::Lt => cmp::lt(&*ld, &*rd),
        Op::Le => cmp::lt_eq(&*ld, &*rd),
        Op::Gt => cmp::gt(&*ld, &*rd),
        _ => cmp::gt_eq(&*ld, &*rd),
    }
    .map_err(kernel)?;
    Ok(l.with(&r, Arc::new(out)))
}

/// A float64's NaNs as nulls: Arrow orders NaN above every number, SQL
/// engines differ, and a plugin author writing `amount > 0` means a
/// number.
fn without_nan(v: Value) -> Result<Value, String> {
    if v.data_type() != &DataType::Float64 {
        return Ok(v);
    }
    v.map(|a| {
        let floats = a.as_primitive::<Float64Type>();
        if !floats.values().iter().any(|x| x.is_nan()) {
            return Ok(a.clone());
        }
        let nan = BooleanArray::from_unary(floats, f64::is_nan);
        nullif(a, &nan).map_err(kernel)
    })
}

fn float_unary(a: &ArrayRef, f: fn(f64) -> f64) -> Result<ArrayRef, String> {
    match a.data_type() {
        DataType::Float64 => Ok(Arc::new(
            a.as_primitive::<Float64Type>().unary::<_, Float64Type>(f),
        )),
        // Integers are whole already.
        _ => Ok(a.clone()),
    }
}

fn abs(a: &ArrayRef) -> Result<ArrayRef, String> {
    match a.data_type() {
        DataType::Float64 => float_unary(a, f64::abs),
        _ => a
            .as_primitive::<Int64Type>()
            .try_unary::<_, Int64Type, _>(|x| {
                x.checked_abs().ok_or_else(|| {
                    ArrowError::ArithmeticOverflow(format!("abs({x}) does not fit an int64"))
                })
            })
            .map(|b| Arc::new(b) as ArrayRef)
            .map_err(kernel),
    }
}

/// Two values of one type: a bare `null` takes the other side's.
fn untyped_null(l: Value, r: Value) -> Result<(Value, Value), String> {
    match (l.data_type(), r.data_type()) {
        (DataType::Null, t) if t != &DataType::Null => {
            let t = t.clone();
            Ok((l.map(|a| cast(a, &t))?, r))
        }
        (t, DataType::Null) if t != &DataType::Null => {
            let t = t.clone();
            Ok((l, r.map(|a| cast(a, &t))?))
        }
        _ => Ok((l, r)),
    }
}

fn coalesce(mut values: impl Iterator<Item = Result<Value, String>>) -> Result<Value, String> {
    let Some(first) = values.next() else {
        return Err("coalesce takes at least one argument".into());
    };
    let mut out = first?;
    for next in values {
        let next = next?;
        let (a, b) = match (out.data_type(), next.data_type()) {
            (x, y) if x == y => (out, next),
            (x, y)
                if (x.is_numeric() || x == &DataType::Null)
                    && (y.is_numeric() || y == &DataType::Null) =>
            {
                numeric_pair(out, next)?
            }
            (x, y) if x == &DataType::Null || y == &DataType::Null => untyped_null(out, next)?,
            (x, y) => return Err(format!("coalesce of {x} and {y}")),
        };
        out = match &a {
            // One value for every row: it, or else the next.
            Value::Scalar(first) if first.is_valid(0) => a,
            Value::Scalar(_) => b,
            Value::Rows(first) => {
                let present = is_not_null(first).map_err(kernel)?;
                let picked = zip(&present, &*a.datum(), &*b.datum()).map_err(kernel)?;
                Value::Rows(picked)
            }
        };
    }
    Ok(out)
}

fn cast(a: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    cast_with_options(a, to, &options).map_err(|e| format!("{} to {to}: {e}", a.data_type()))
}

fn type_named(name: &str) -> Result<DataType, String> {
    Ok(match name {
        "boolean" | "bool" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "utf8" | "string" => DataType::Utf8,
        "date32" | "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => {
            return Err(format!(
                "no type {other:?} to cast to (boolean, int8…int64, uint8…uint64, float32, \
                 float64, utf8, date32, timestamp)"
            ))
        }
    })
}

#[cfg(test)]
mod tests;
