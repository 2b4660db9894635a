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
