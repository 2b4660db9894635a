//! The shape rules both flattened trees (types and arrays) follow.

use crate::{Error, Result};

/// Checks that `roots` and each node's `children` form a forest laid out
/// parents first: every index in range, every child after its parent,
/// every node the child of exactly one parent or a root. Together these
/// rule out cycles and shared subtrees, so decoding visits each node once.
pub(crate) fn check(
    len: usize,
    roots: &[u32],
    children: impl Iterator<Item = Vec<u32>>,
) -> Result<()> {
    let mut parents = vec![0u32; len];
    let mut claim = |node: u32, by: &dyn Fn() -> String| -> Result<()> {
        let slot = parents.get_mut(node as usize).ok_or_else(|| {
            Error::new(format!(
                "{} refers to node {node}, past the last ({len})",
                by()
            ))
        })?;
        *slot += 1;
        Ok(())
    };
    for &root in roots {
        claim(root, &|| "a root".to_string())?;
    }
    for (parent, kids) in children.enumerate() {
        for kid in kids {
            if (kid as usize) <= parent {
                return Err(Error::new(format!(
                    "node {parent} refers back to node {kid}: children follow their parent"
                )));
            }
            claim(kid, &|| format!("node {parent}"))?;
        }
    }
    match parents.iter().position(|&n| n != 1) {
        None => Ok(()),
        Some(node) => Err(Error::new(format!(
            "node {node} is referenced {} times: each node belongs to exactly one parent",
            parents[node]
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(len: usize, roots: &[u32], children: &[&[u32]]) -> Result<()> {
        check(len, roots, children.iter().map(|c| c.to_vec()))
    }

    #[test]
    fn a_forest_laid_out_parents_first_is_accepted() {
        assert!(shape(4, &[0, 3], &[&[1], &[2], &[], &[]]).is_ok());
    }

    #[test]
    fn a_child_before_its_parent_is_a_cycle_and_refused() {
        let e = shape(2, &[0], &[&[1], &[0]]).unwrap_err();
        assert!(e.to_string().contains("refers back"), "{e}");
    }

    #[test]
    fn a_shared_child_is_refused() {
        let e = shape(3, &[0], &[&[1, 2], &[2], &[]]).unwrap_err();
        assert!(
            e.to_string().contains("node 2 is referenced 2 times"),
            "{e}"
        );
    }

    #[test]
    fn an_index_past_the_end_is_refused() {
        let e = shape(1, &[0], &[&[7]]).unwrap_err();
        assert!(e.to_string().contains("past the last"), "{e}");
        assert!(shape(1, &[4], &[&[]]).is_err());
    }

    #[test]
    fn an_unreferenced_node_is_refused() {
        assert!(shape(2, &[0], &[&[], &[]]).is_err());
    }
}
