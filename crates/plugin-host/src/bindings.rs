//! Host bindings generated from `wit/plugin.wit`, the single source of the
//! plugin contract. The curated API over them is [the crate root](crate).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
    // Host functions may trap (a stale resource handle is the guest's fault).
    imports: { default: trappable },
    with: {
        "weir:plugin/types.batch": crate::BatchRep,
    },
});

pub use self::exports::weir::plugin::transform;
pub use self::weir::plugin::{log, types};

/// `weir:plugin@0.2.0` (`wit/0.2`): every Arrow type, named ports, the
/// host state store. Served beside 0.1; [`v0_2::map`] moves its records to
/// and from `weir-wit-arrow`'s, which map them to arrow-rs.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit/0.2",
        world: "plugin",
        imports: { default: trappable },
        with: {
            "weir:plugin/types.batch": crate::BatchRep,
        },
    });

    pub use self::exports::weir::plugin::transform;
    pub use self::weir::plugin::{compute, log, stage, state, types};

    weir_wit_arrow::bind!(pub mod map = crate::bindings::v0_2::types);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, Decimal128Array, ListArray, StringArray, StructArray};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};

    use super::v0_2::map;

    #[test]
    fn a_nested_schema_crosses_the_0_2_bindings_unchanged() {
        let schema = Schema::new(vec![
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new(
                "customer",
                DataType::Struct(vec![Field::new("country", DataType::Utf8, true)].into()),
                true,
            ),
            Field::new_list("tags", Field::new_list_field(DataType::Int32, true), true),
            Field::new_dictionary("city", DataType::UInt16, DataType::Utf8, true),
        ]);
        let bound = map::schema_to_wit(weir_wit_arrow::schema_to_wit(&schema));
        let back = weir_wit_arrow::schema_from_wit(&map::schema_from_wit(bound)).expect("valid");
        assert_eq!(back, schema);
    }

    #[test]
    fn nested_columns_cross_the_0_2_bindings_unchanged() {
        let country: ArrayRef = Arc::new(StringArray::from(vec![Some("DE"), None]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                Decimal128Array::from(vec![Some(1250), None])
                    .with_precision_and_scale(12, 2)
                    .expect("decimal"),
            ),
            Arc::new(StructArray::from(vec![(
                Arc::new(Field::new("country", DataType::Utf8, true)),
                country,
            )])),
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                Some(vec![Some(1), None]),
                None,
            ])),
        ];
        for column in columns {
            let bound = map::column_to_wit(
                weir_wit_arrow::array_to_wit(&column.to_data()).expect("encodes"),
            );
            let back =
                weir_wit_arrow::array_from_wit(map::column_from_wit(bound), column.data_type())
                    .expect("valid");
            assert_eq!(back, column.to_data());
        }
    }
}
