//! Running the `weir` binary as a user does: the command, Ctrl-C, and the
//! run summary it prints.

use std::process::{Child, Command};

/// The `weir` CLI built from this checkout, logging warnings and errors.
pub fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir-under-test"));
    // `WEIR_TEST_LOG=info cargo test …` shows what the child did.
    cmd.env(
        "RUST_LOG",
        std::env::var("WEIR_TEST_LOG").unwrap_or_else(|_| "warn".into()),
    );
    cmd
}

/// Ctrl-C: sources stop, everything in flight drains, sinks commit.
pub fn interrupt(child: &Child) {
    signal(child, "INT");
}

/// Sends signal `name` (`INT`, `TERM`, …) to `child`.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {}", child.id());
}

/// The rows node `node` moved according to the run summary: a source's
/// rows out, any other node's rows in.
pub fn summary_rows(summary: &str, node: &str) -> u64 {
    let fields: Vec<&str> = summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some(node))
        .unwrap_or_else(|| panic!("no line for {node} in the summary:\n{summary}"))
        .split_whitespace()
        .collect();
    let column = if fields.get(1) == Some(&"source") {
        3
    } else {
        2
    };
    fields
        .get(column)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count for {node} in the summary:\n{summary}"))
}
