//! Readers of other tools' bytes (arrow-rs IPC, Parquet — files, and the
//! IPC streams plugins return) can panic on malformed input: a buffer
//! offset past its end, a lying length. Every call into them runs here: a
//! panic becomes an error naming what was being read, which then follows
//! the node's `on_bad_record` / `on_error` policy, and the panic is not
//! printed as if weir had crashed.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Inside [`contained`]: a panic is expected and reported as an error.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read`; a panic inside it is returned as `Err(message)`.
pub fn contained<T>(read: impl FnOnce() -> T) -> Result<T, String> {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = CONTAINING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(read));
    CONTAINING.with(|c| c.set(was));
    result.map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        format!("the reader failed on malformed data ({message})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_becomes_an_error_and_outside_still_panics() {
        assert_eq!(contained(|| 7), Ok(7));
        let err = contained(|| -> u8 { panic!("offset past the end") }).unwrap_err();
        assert!(err.contains("offset past the end"), "{err}");
        assert!(std::panic::catch_unwind(|| panic!("not contained")).is_err());
    }
}
