//! The structure checks of [`Graph::new`](super::Graph::new), one named
//! step each: names, wiring, plugin files, order, dead letters.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::NodeKind;
use crate::manifest::{output_ref, producer, Manifest, OnError, DEAD_LETTER, DEAD_LETTER_PORT};
use crate::source::bad::OnBadRecord;
use crate::{Error, Result};

/// Every node's kind; a name may be used once across all sections, and a
/// pipeline needs a source and a sink.
pub(super) fn names(m: &Manifest) -> Result<HashMap<&str, NodeKind>> {
    let loc = &m.located;
    let mut kinds: HashMap<&str, NodeKind> = HashMap::new();
    let all = m
        .sources
        .keys()
        .map(|n| (n, NodeKind::Source))
        .chain(m.transforms.keys().map(|n| (n, NodeKind::Transform)))
        .chain(m.sinks.keys().map(|n| (n, NodeKind::Sink)));
    for (name, kind) in all {
        if name.contains('.') {
            return Err(loc.error(
                kind.section(),
                Some(name),
                None,
                format!(
                    "the name {name:?} holds a `.`, which separates a node from its port in \
                     `inputs` (\"clean.dead_letter\"); use `_` or `-`"
                ),
            ));
        }
        if let Some(other) = kinds.insert(name, kind) {
            return Err(loc.error(
                kind.section(),
                Some(name),
                None,
                format!(
                    "the name {name:?} is also used in [{}]; node names must be unique",
                    other.section()
                ),
            ));
        }
    }
    for (tables, what) in [
        (m.sources.is_empty(), "sources"),
        (m.sinks.is_empty(), "sinks"),
    ] {
        if tables {
            let one = &what[..what.len() - 1];
            return Err(Error::manifest(format!(
                "{}: no [{what}.*] table: a pipeline needs at least one {one}",
                m.path.display()
            )));
        }
    }
    Ok(kinds)
}

/// Who reads whom: every input exists, produces output (a dead-letter
/// output only where the policy makes one), and is listed once. Returns
/// each output's readers, in name order.
pub(super) fn wiring(
    m: &Manifest,
    kinds: &HashMap<&str, NodeKind>,
) -> Result<HashMap<String, Vec<String>>> {
    let inputs_of = m
        .transforms
        .iter()
        .map(|(n, t)| (n, NodeKind::Transform, &t.inputs.producers))
        .chain(m.sinks.iter().map(|(n, s)| (n, NodeKind::Sink, &s.inputs)));
    let mut consumers: HashMap<String, Vec<String>> = HashMap::new();
    for (name, kind, inputs) in inputs_of {
        let at = |message: String| {
            m.located
                .error(kind.section(), Some(name), Some("inputs"), message)
        };
        if inputs.is_empty() {
            return Err(at(
                "`inputs` is empty: name at least one source or transform".into(),
            ));
        }
        let mut seen = HashSet::new();
        for input in inputs {
            check_input(m, kinds, input).map_err(at)?;
            if !seen.insert(input) {
                return Err(at(format!("input {input:?} is listed twice")));
            }
            consumers
                .entry(input.clone())
                .or_default()
                .push(name.clone());
        }
    }
    for list in consumers.values_mut() {
        list.sort();
    }
    Ok(consumers)
}

/// Whether `input` names an output that exists.
fn check_input(
    m: &Manifest,
    kinds: &HashMap<&str, NodeKind>,
    input: &str,
) -> std::result::Result<(), String> {
    let (from, port) = output_ref(input);
    let dead_letter = port == Some(DEAD_LETTER_PORT);
    match kinds.get(from) {
        None => {
            let mut known: Vec<&str> = m
                .sources
                .keys()
                .chain(m.transforms.keys())
                .map(String::as_str)
                .collect();
            known.sort_unstable();
            Err(format!(
                "input {input:?} is not a source or transform (known: {})",
                known.join(", ")
            ))
        }
        Some(NodeKind::Sink) => Err(format!(
            "input {input:?} is a sink; sinks produce no output"
        )),
        Some(NodeKind::Source)
            if dead_letter && m.sources[from].on_bad_record() != OnBadRecord::DeadLetter =>
        {
            Err(format!(
                "input {input:?}: source {from:?} has no dead-letter output; \
                 set on_bad_record = \"dead_letter\" on it"
            ))
        }
        Some(NodeKind::Source) if port.is_some() && !dead_letter => Err(format!(
            "input {input:?}: a source has one output, {from:?} (and {from:?}.dead_letter \
             under on_bad_record = \"dead_letter\")"
        )),
        Some(NodeKind::Transform)
            if dead_letter && m.transforms[from].on_error != OnError::DeadLetter =>
        {
            Err(format!(
                "input {input:?}: transform {from:?} has no dead-letter output; \
                 set on_error = \"dead_letter\" on it"
            ))
        }
        Some(_) => Ok(()),
    }
}

/// Every transform's plugin file exists and `parallelism` is at least 1.
pub(super) fn plugins_present(m: &Manifest) -> Result<()> {
    for (name, t) in &m.transforms {
        if t.parallelism == 0 {
            return Err(m.located.error(
                "transforms",
                Some(name),
                Some("parallelism"),
                "must be at least 1",
            ));
        }
        let path = m.resolve(&t.plugin);
        // A folder gets its own message from the host (which plugin it
        // holds and how to build it).
        if !path.exists() {
            return Err(m.located.error(
                "transforms",
                Some(name),
                Some("plugin"),
                format!(
                    "plugin file {} not found; build it with `weir plugin build` or fix the path \
                     (relative to the manifest's directory)",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Sources, then transforms in dependency order (Kahn's algorithm; what
/// remains is a cycle, an error naming its transforms), then sinks.
pub(super) fn order(
    m: &Manifest,
    consumers: &HashMap<String, Vec<String>>,
) -> Result<Vec<(String, NodeKind)>> {
    let mut indegree: BTreeMap<&str, usize> = m
        .transforms
        .iter()
        .map(|(n, t)| {
            let upstream = t
                .inputs
                .producers
                .iter()
                .filter(|i| m.transforms.contains_key(producer(i).0))
                .count();
            (n.as_str(), upstream)
        })
        .collect();
    let mut ready: VecDeque<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order: Vec<(String, NodeKind)> = m
        .sources
        .keys()
        .map(|n| (n.clone(), NodeKind::Source))
        .collect();
    while let Some(node) = ready.pop_front() {
        order.push((node.to_string(), NodeKind::Transform));
        indegree.remove(node);
        // The readers of every output port of `node`, once per input.
        let readers = consumers
            .iter()
            .filter(|(output, _)| output_ref(output).0 == node)
            .flat_map(|(_, readers)| readers);
        for next in readers {
            if let Some(d) = indegree.get_mut(next.as_str()) {
                *d -= 1;
                if *d == 0 {
                    ready.push_back(next);
                }
            }
        }
    }
    if let Some((first, _)) = indegree.iter().next() {
        let cycle: Vec<&str> = indegree.keys().copied().collect();
        return Err(m.located.error(
            "transforms",
            Some(first),
            Some("inputs"),
            format!(
                "the transforms {} form a cycle; a pipeline must be a DAG",
                cycle.join(", ")
            ),
        ));
    }
    order.extend(m.sinks.keys().map(|n| (n.clone(), NodeKind::Sink)));
    Ok(order)
}

/// A node whose policy makes a dead-letter output has a sink reading it
/// (otherwise its failed rows would vanish).
pub(super) fn dead_letters_read(
    m: &Manifest,
    consumers: &HashMap<String, Vec<String>>,
) -> Result<()> {
    let dead_letters = m
        .transforms
        .iter()
        .filter(|(_, t)| t.on_error == OnError::DeadLetter)
        .map(|(n, _)| (n, "transforms", "on_error"))
        .chain(
            m.sources
                .iter()
                .filter(|(_, s)| s.on_bad_record() == OnBadRecord::DeadLetter)
                .map(|(n, _)| (n, "sources", "on_bad_record")),
        );
    for (name, section, key) in dead_letters {
        let dead = format!("{name}{DEAD_LETTER}");
        if !consumers.contains_key(&dead) {
            return Err(m.located.error(
                section,
                Some(name),
                Some(key),
                format!(
                    "{key} = \"dead_letter\" but no sink reads {dead:?}; add one with inputs = [{dead:?}]"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Graph;
    use super::*;

    /// `toml` as a manifest in a folder holding an (empty) `p.wasm`.
    fn graph(toml: &str) -> Result<Graph> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        let manifest = Manifest::parse(toml, &dir.path().join("pipeline.toml"))?;
        Graph::new(manifest)
    }

    fn error(toml: &str) -> String {
        graph(toml).expect_err("must be rejected").to_string()
    }

    const SOURCE: &str = "[sources.gen]\ntype = \"generate\"\nrows = 1\n";

    fn sink(name: &str, inputs: &str) -> String {
        format!("[sinks.{name}]\ntype = \"blackhole\"\ninputs = [{inputs}]\n")
    }

    fn transform(name: &str, inputs: &str, extra: &str) -> String {
        format!("[transforms.{name}]\nplugin = \"p.wasm\"\ninputs = [{inputs}]\n{extra}\n")
    }

    #[test]
    fn nodes_are_ordered_sources_then_transforms_by_dependency_then_sinks() {
        let g = graph(&format!(
            "{SOURCE}{}{}{}",
            transform("b", "\"a\"", ""),
            transform("a", "\"gen\"", ""),
            sink("out", "\"b\"")
        ))
        .unwrap();
        let order: Vec<_> = g.order.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        assert_eq!(
            order,
            [
                ("gen", NodeKind::Source),
                ("a", NodeKind::Transform),
                ("b", NodeKind::Transform),
                ("out", NodeKind::Sink)
            ]
        );
        assert_eq!(g.consumers["a"], ["b"]);
    }

    #[test]
    fn a_name_used_in_two_sections_is_rejected_at_its_table() {
        let err = error(&format!("{SOURCE}{}", sink("gen", "\"gen\"")));
        assert!(
            err.contains("the name \"gen\" is also used in [sources]"),
            "{err}"
        );
        assert!(err.contains("pipeline.toml:4"), "{err}");
    }

    #[test]
    fn named_inputs_wire_each_port_in_slot_order_and_order_the_graph() {
        let g = graph(&format!(
            "{SOURCE}[sources.more]\ntype = \"generate\"\nrows = 1\n\
             [transforms.j]\nplugin = \"p.wasm\"\n\
             inputs = {{ stream = \"a.late\", table = [\"gen\", \"more\"] }}\n{}{}",
            transform("a", "\"gen\"", ""),
            sink("out", "\"j\"")
        ))
        .unwrap();
        let inputs = &g.manifest.transforms["j"].inputs;
        assert_eq!(inputs.producers, ["a.late", "gen", "more"]);
        assert_eq!(inputs.ports, ["stream", "table", "table"]);
        let order: Vec<&str> = g.order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            order,
            ["gen", "more", "a", "j", "out"],
            "a's `late` port feeds j"
        );
    }

    #[test]
    fn a_named_port_wired_to_nothing_and_a_dotted_node_name_are_rejected() {
        let empty = error(&format!(
            "{SOURCE}[transforms.j]\nplugin = \"p.wasm\"\ninputs = {{ table = [] }}\n{}",
            sink("out", "\"j\"")
        ));
        assert!(
            empty.contains("input port \"table\" is wired to nothing"),
            "{empty}"
        );
        let dotted = error(&format!(
            "{SOURCE}[transforms.\"a.b\"]\nplugin = \"p.wasm\"\ninputs = [\"gen\"]\n{}",
            sink("out", "\"a.b\"")
        ));
        assert!(dotted.contains("holds a `.`"), "{dotted}");
    }

    #[test]
    fn a_source_has_no_port_but_its_dead_letter_one() {
        let err = error(&format!("{SOURCE}{}", sink("out", "\"gen.late\"")));
        assert!(err.contains("a source has one output"), "{err}");
    }

    #[test]
    fn a_pipeline_without_a_sink_is_rejected() {
        assert!(error(SOURCE).contains("a pipeline needs at least one sink"));
    }

    #[test]
    fn an_input_must_be_a_source_or_transform_listed_once() {
        let unknown = error(&format!("{SOURCE}{}", sink("out", "\"nope\"")));
        assert!(
            unknown.contains("input \"nope\" is not a source or transform (known: gen)"),
            "{unknown}"
        );
        let sink_input = error(&format!(
            "{SOURCE}{}{}",
            sink("a", "\"gen\""),
            sink("b", "\"a\"")
        ));
        assert!(
            sink_input.contains("is a sink; sinks produce no output"),
            "{sink_input}"
        );
        let twice = error(&format!("{SOURCE}{}", sink("out", "\"gen\", \"gen\"")));
        assert!(twice.contains("input \"gen\" is listed twice"), "{twice}");
    }

    #[test]
    fn a_cycle_is_rejected_naming_its_transforms() {
        let err = error(&format!(
            "{SOURCE}{}{}{}",
            transform("a", "\"gen\", \"b\"", ""),
            transform("b", "\"a\"", ""),
            sink("out", "\"b\"")
        ));
        assert!(err.contains("the transforms a, b form a cycle"), "{err}");
    }

    #[test]
    fn a_dead_letter_output_needs_the_policy_and_a_reader() {
        let no_policy = error(&format!(
            "{SOURCE}{}{}",
            transform("t", "\"gen\"", ""),
            sink("out", "\"t.dead_letter\"")
        ));
        assert!(
            no_policy.contains("has no dead-letter output; set on_error"),
            "{no_policy}"
        );
        let no_reader = error(&format!(
            "{SOURCE}{}{}",
            transform("t", "\"gen\"", "on_error = \"dead_letter\""),
            sink("out", "\"t\"")
        ));
        assert!(
            no_reader.contains("no sink reads \"t.dead_letter\""),
            "{no_reader}"
        );
    }

    #[test]
    fn a_missing_plugin_file_is_rejected_at_its_key() {
        let err = error(&format!(
            "{SOURCE}{}{}",
            "[transforms.t]\nplugin = \"missing.wasm\"\ninputs = [\"gen\"]\n",
            sink("out", "\"t\"")
        ));
        assert!(err.contains("missing.wasm not found"), "{err}");
    }
}
