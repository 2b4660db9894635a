//! A transform's `inputs`: a list of outputs into its one input port, or a
//! table wiring each of the plugin's named input ports.

use serde::Deserialize;

/// A transform's `inputs`. A list — `inputs = ["a", "b"]` — feeds every
/// output into the node's one input port (fan-in: their schemas must
/// agree). A table — `inputs = { orders = "clean", customers =
/// ["crm", "web"] }` — wires each of the plugin's named input ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransformInputs {
    /// Every output feeding the node, in the order of its input slots.
    pub producers: Vec<String>,
    /// The table's form: the input port each producer feeds, by slot.
    /// Empty for the list form.
    pub ports: Vec<String>,
}

impl TransformInputs {
    /// The list form: every producer into the one input port.
    pub fn list(producers: Vec<String>) -> Self {
        TransformInputs {
            producers,
            ports: Vec::new(),
        }
    }

    /// Whether the inputs are a table of named ports.
    pub fn named(&self) -> bool {
        !self.ports.is_empty()
    }

    /// The input port slot `slot` feeds (`None`: the list form's one port).
    pub fn port_of(&self, slot: usize) -> Option<&str> {
        self.ports.get(slot).map(String::as_str)
    }
}

impl<'de> Deserialize<'de> for TransformInputs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TransformInputs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a list of outputs (inputs = [\"clean\"]) or a table of input ports \
                     (inputs = { orders = \"clean\", customers = \"customers\" })",
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let list =
                    Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(TransformInputs::list(list))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut inputs = TransformInputs::default();
                while let Some(port) = map.next_key::<String>()? {
                    let from = match map.next_value::<OneOrMany>().map_err(|_| {
                        serde::de::Error::custom(format!(
                            "input port {port:?}: write an output (\"clean\") or a list of them"
                        ))
                    })? {
                        OneOrMany::One(one) => vec![one],
                        OneOrMany::Many(many) => many,
                    };
                    if from.is_empty() {
                        return Err(serde::de::Error::custom(format!(
                            "input port {port:?} is wired to nothing: name an output"
                        )));
                    }
                    for producer in from {
                        inputs.producers.push(producer);
                        inputs.ports.push(port.clone());
                    }
                }
                if inputs.producers.is_empty() {
                    return Err(serde::de::Error::custom(
                        "`inputs` is empty: wire at least one input port",
                    ));
                }
                Ok(inputs)
            }
        }
        d.deserialize_any(Visitor)
    }
}
