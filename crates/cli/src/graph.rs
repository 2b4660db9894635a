//! `weir graph`: the pipeline as a picture — Mermaid (renders in GitHub
//! and most docs tools), Graphviz DOT, or a self-contained SVG laid out by
//! `layout-rs` (a Rust implementation of Graphviz's layered layout) from
//! that same DOT.

use weir::graph::{Graph, NodeKind, Prepared};
use weir::manifest::{output_ref, DEAD_LETTER};

/// How many columns a node's box lists before "… N more".
const MAX_COLUMNS: usize = 8;

/// What `weir graph` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
    /// SVG, laid out in-process (no Graphviz needed).
    Svg,
}

/// One node as drawn: its title lines and its output columns.
struct Drawn {
    name: String,
    kind: NodeKind,
    title: String,
    columns: Vec<String>,
}

fn drawn(graph: &Graph, prepared: &Prepared) -> Vec<Drawn> {
    let m = &graph.manifest;
    graph
        .order
        .iter()
        .map(|(name, kind)| {
            let title = match kind {
                NodeKind::Source => format!("source · {}", m.sources[name].kind()),
                NodeKind::Sink => format!("sink · {}", m.sinks[name].config.kind()),
                NodeKind::Transform => {
                    let plugin = &m.transforms[name].plugin;
                    let file = plugin.file_name().unwrap_or(plugin.as_os_str());
                    format!("transform · {}", file.to_string_lossy())
                }
            };
            let columns = match prepared.schemas.get(name) {
                Some(Some(schema)) => {
                    let fields = schema.fields();
                    let mut lines: Vec<String> = fields
                        .iter()
                        .take(MAX_COLUMNS)
                        .map(|f| format!("{}: {}", f.name(), f.data_type()))
                        .collect();
                    if fields.len() > MAX_COLUMNS {
                        lines.push(format!("… {} more", fields.len() - MAX_COLUMNS));
                    }
                    lines
                }
                _ => vec!["(schema known once data flows)".into()],
            };
            Drawn {
                name: name.clone(),
                kind: *kind,
                title,
                columns,
            }
        })
        .collect()
}

/// One edge of the drawing.
struct DrawnEdge {
    from: String,
    to: String,
    /// From the producer's dead-letter port (drawn dashed).
    dead: bool,
    /// The ports it joins, where not the first: `late`, `→ customers`.
    label: Option<String>,
}

/// Every edge, labelled with its output port (other than a node's first)
/// and the consumer's named input port.
fn edges(graph: &Graph) -> Vec<DrawnEdge> {
    graph
        .order
        .iter()
        .flat_map(|(to, _)| {
            let named = graph.manifest.transforms.get(to).map(|t| &t.inputs);
            graph
                .inputs(to)
                .iter()
                .enumerate()
                .map(move |(slot, input)| {
                    let (from, port) = output_ref(input);
                    let into = named.and_then(|n| n.port_of(slot));
                    let label = match (port, into) {
                        (None, None) => None,
                        (Some(p), None) => Some(p.to_string()),
                        (None, Some(i)) => Some(format!("→ {i}")),
                        (Some(p), Some(i)) => Some(format!("{p} → {i}")),
                    };
                    DrawnEdge {
                        from: from.to_string(),
                        to: to.clone(),
                        dead: port == Some(DEAD_LETTER.trim_start_matches('.')),
                        label,
                    }
                })
        })
        .collect()
}

/// The pipeline in `format`.
pub(crate) fn render(graph: &Graph, prepared: &Prepared, format: Format) -> String {
    match format {
        Format::Mermaid => mermaid(graph, prepared),
        Format::Dot => dot(graph, prepared, false),
        Format::Svg => svg(&dot(graph, prepared, false)),
    }
}

/// The line the live view (`weir run --ui`) fills in with each node's
/// figures: the third line of the node's label.
pub(crate) const LIVE_PLACEHOLDER: &str = "·";

/// The SVG for the live view: each node's label has a [`LIVE_PLACEHOLDER`]
/// line under its title for the page to fill.
pub(crate) fn live_svg(graph: &Graph, prepared: &Prepared) -> String {
    svg(&dot(graph, prepared, true))
}

fn mermaid(graph: &Graph, prepared: &Prepared) -> String {
    let nodes = drawn(graph, prepared);
    // Node names may hold characters Mermaid ids can't: number them.
    let id = |name: &str| {
        nodes
            .iter()
            .position(|n| n.name == name)
            .map_or_else(|| "unknown".to_string(), |i| format!("n{i}"))
    };
    // Mermaid labels are quoted; `#quot;` is its escape for a quote.
    let text = |s: &str| s.replace('"', "#quot;");
    let mut out = String::from("flowchart LR\n");
    for (i, n) in nodes.iter().enumerate() {
        let body = n
            .columns
            .iter()
            .map(|c| text(c))
            .collect::<Vec<_>>()
            .join("<br/>");
        let label = format!(
            "<b>{}</b><br/><i>{}</i><br/>{body}",
            text(&n.name),
            text(&n.title)
        );
        let (open, close) = match n.kind {
            NodeKind::Source => ("[(", ")]"),
            NodeKind::Transform => ("[", "]"),
            NodeKind::Sink => ("[/", "/]"),
        };
        out.push_str(&format!("    n{i}{open}\"{label}\"{close}\n"));
    }
    for e in edges(graph) {
        let (from, to) = (id(&e.from), id(&e.to));
        let line = match (&e.label, e.dead) {
            (Some(label), true) => format!("{from} -. {} .-> {to}", text(label)),
            (Some(label), false) => format!("{from} -->|\"{}\"| {to}", text(label)),
            (None, _) => format!("{from} --> {to}"),
        };
        out.push_str(&format!("    {line}\n"));
    }
    for (i, n) in nodes.iter().enumerate() {
        out.push_str(&format!("    class n{i} {}\n", n.kind.section()));
    }
    out.push_str(
        "    classDef sources fill:#e3f2fd,stroke:#1565c0\n    \
         classDef transforms fill:#fff8e1,stroke:#ef6c00\n    \
         classDef sinks fill:#e8f5e9,stroke:#2e7d32\n",
    );
    out
}

/// `s` escaped for inside a DOT string literal.
fn escaped(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A DOT string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", escaped(s))
}

fn dot(graph: &Graph, prepared: &Prepared, live: bool) -> String {
    let mut out = String::from(
        "digraph pipeline {\n    rankdir=LR;\n    node [shape=box, style=filled, fontsize=12];\n",
    );
    for n in drawn(graph, prepared) {
        let fill = match n.kind {
            NodeKind::Source => "#e3f2fd",
            NodeKind::Transform => "#fff8e1",
            NodeKind::Sink => "#e8f5e9",
        };
        // `\n` ends a centred line and `\l` a left-aligned one: DOT's
        // escapes, added around the escaped text.
        let columns: String = n
            .columns
            .iter()
            .map(|c| format!("{}\\l", escaped(c)))
            .collect();
        let figures = if live { LIVE_PLACEHOLDER } else { "" };
        let label = format!(
            "\"{}\\n{}\\n{figures}\\n{columns}\"",
            escaped(&n.name),
            escaped(&n.title)
        );
        out.push_str(&format!(
            "    {} [label={label}, fillcolor={}];\n",
            quoted(&n.name),
            quoted(fill)
        ));
    }
    for e in edges(graph) {
        let style = match (&e.label, e.dead) {
            (Some(label), true) => format!(" [label={}, style=dashed]", quoted(label)),
            (Some(label), false) => format!(" [label={}]", quoted(label)),
            (None, _) => String::new(),
        };
        out.push_str(&format!(
            "    {} -> {}{style};\n",
            quoted(&e.from),
            quoted(&e.to)
        ));
    }
    out.push_str("}\n");
    out
}

/// `dot` laid out and drawn by layout-rs.
fn svg(dot: &str) -> String {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    let mut parser = DotParser::new(dot);
    let Ok(ast) = parser.process() else {
        // The DOT is our own: a parse error is a bug in `dot` above.
        return format!("<!-- layout-rs could not read weir's DOT -->\n<pre>{dot}</pre>");
    };
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&ast);
    let mut visual = builder.get();
    let mut writer = SVGWriter::new();
    visual.do_it(false, false, false, &mut writer);
    writer.finalize()
}
