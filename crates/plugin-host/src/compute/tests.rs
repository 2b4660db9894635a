use super::*;
use arrow::array::{Int32Array, RecordBatch};
use arrow::buffer::BooleanBuffer;

fn rows() -> Rows {
    let batch = RecordBatch::try_from_iter([
        (
            "amount",
            Arc::new(Float64Array::from(vec![
                Some(1.005),
                Some(-2.5),
                None,
                Some(f64::NAN),
                Some(0.0),
                Some(1e300),
                Some(2.345),
            ])) as ArrayRef,
        ),
        (
            "qty",
            Arc::new(Int32Array::from(vec![
                Some(3),
                Some(0),
                Some(2),
                None,
                Some(5),
                Some(1),
                Some(4),
            ])) as _,
        ),
        (
            "status",
            Arc::new(StringArray::from(vec![
                "paid", "refunded", "paid", "open", "paid", "open", "x",
            ])) as _,
        ),
    ])
    .unwrap();
    Rows::from(batch)
}

fn bits(mask: &[u8], rows: usize) -> Vec<bool> {
    (0..rows)
        .map(|i| mask[i >> 3] >> (i & 7) & 1 == 1)
        .collect()
}

fn ints(a: &ArrayRef) -> Vec<Option<i64>> {
    a.as_primitive::<Int64Type>().iter().collect()
}

#[test]
fn a_predicate_keeps_true_rows_and_drops_null_and_nan() {
    let mask = matches(&rows(), "amount > 0").unwrap();
    assert_eq!(
        bits(&mask, 7),
        [true, false, false, false, false, true, true],
        "null and NaN are not above zero"
    );
    let mask = matches(&rows(), "status = 'paid' and qty >= 3 or amount < -2").unwrap();
    assert_eq!(
        bits(&mask, 7),
        [true, true, false, false, true, false, false]
    );
    let mask = matches(&rows(), "qty is null or not (status <> 'open')").unwrap();
    assert_eq!(
        bits(&mask, 7),
        [false, false, false, true, false, true, false]
    );
}

#[test]
fn cents_round_half_away_from_zero_and_null_when_out_of_range() {
    let cents = evaluate(&rows(), "round(amount * 100)::int64").unwrap();
    let expected: Vec<Option<i64>> = [1.005, -2.5, f64::NAN, f64::NAN, 0.0, 1e300, 2.345]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let x = (a * 100.0).round();
            (i != 2 && x.is_finite() && x.abs() < 9.2e18).then_some(x as i64)
        })
        .collect();
    assert_eq!(ints(&cents), expected);
    assert_eq!(ints(&cents)[0], Some(100), "1.005 * 100 is 100.49999…");
    assert_eq!(ints(&cents)[1], Some(-250));
}

#[test]
fn integers_widen_and_meet_floats_as_floats() {
    let total = evaluate(&rows(), "qty * 2 + 1").unwrap();
    assert_eq!(total.data_type(), &DataType::Int64);
    assert_eq!(
        ints(&total),
        [Some(7), Some(1), Some(5), None, Some(11), Some(3), Some(9)]
    );
    let mixed = evaluate(&rows(), "qty + 0.5").unwrap();
    assert_eq!(mixed.data_type(), &DataType::Float64);
    assert_eq!(mixed.as_primitive::<Float64Type>().value(0), 3.5);
}

#[test]
fn integer_division_by_zero_is_null_and_overflow_an_error() {
    let q = evaluate(&rows(), "10 / qty").unwrap();
    assert_eq!(ints(&q)[..3], [Some(3), None, Some(5)]);
    let err = evaluate(&rows(), "9223372036854775807 + qty").unwrap_err();
    assert!(err.contains("overflow"), "{err}");
}

#[test]
fn coalesce_abs_and_literals_fill_every_row() {
    let filled = evaluate(&rows(), "coalesce(qty, -1)").unwrap();
    assert_eq!(ints(&filled)[3], Some(-1));
    let a = evaluate(&rows(), "abs(qty - 4)").unwrap();
    assert_eq!(ints(&a)[..3], [Some(1), Some(4), Some(2)]);
    let text = evaluate(&rows(), "coalesce(null, status)").unwrap();
    assert_eq!(text.as_string::<i32>().value(1), "refunded");
    assert_eq!(
        matches(&rows(), "status = null").unwrap(),
        vec![0],
        "null is never equal"
    );
    let one = evaluate(&rows(), "1").unwrap();
    assert_eq!(one.len(), 7);
    assert_eq!(matches(&rows(), "true").unwrap(), vec![0b0111_1111]);
}

#[test]
fn mistakes_name_the_column_type_or_function() {
    let err = matches(&rows(), "amout > 0").unwrap_err();
    assert!(err.contains("no column named \"amout\""), "{err}");
    let err = matches(&rows(), "status > 1").unwrap_err();
    assert!(err.contains("can't compare Utf8 with Int64"), "{err}");
    let err = matches(&rows(), "qty + 1").unwrap_err();
    assert!(err.contains("not a boolean"), "{err}");
    let err = evaluate(&rows(), "sqrt(qty)").unwrap_err();
    assert!(err.contains("no function \"sqrt\""), "{err}");
    let err = evaluate(&rows(), "qty::money").unwrap_err();
    assert!(err.contains("no type \"money\""), "{err}");
}

#[test]
fn columns_are_read_through_a_pending_selection() {
    let base = rows();
    let kept = Rows::selected(
        base.base().clone(),
        BooleanBuffer::from_iter([false, true, false, false, true, false, true]),
    );
    let mask = matches(&kept, "qty > 2").unwrap();
    assert_eq!(bits(&mask, 3), [false, true, true]);
    assert_eq!(
        ints(&evaluate(&kept, "qty::int64").unwrap()),
        [Some(0), Some(5), Some(4)]
    );
}
