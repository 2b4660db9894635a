//! The glue behind [`crate::export!`]: one transform instance per plugin
//! instance, kept in a thread-local (a component instance is single-threaded).

use std::any::Any;
use std::cell::RefCell;

use crate::convert::{schema_from_wit, schema_to_wit};
use crate::wit::weir::plugin::types as wit;
use crate::{Batch, Error, Output, Transform};

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn config<T: Transform>(json: &str) -> Result<T::Config, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| format!("invalid config: {e}"))
}

fn with_instance<T: Transform, R>(f: impl FnOnce(&mut T) -> Result<R, Error>) -> Result<R, String> {
    INSTANCE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let instance = slot
            .as_mut()
            .and_then(|b| b.downcast_mut::<T>())
            .ok_or_else(|| "the host called the plugin before init".to_string())?;
        f(instance).map_err(|e| e.to_string())
    })
}

/// Routes a panic's message to the host before the instance traps, so the
/// report names the cause rather than "unreachable".
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            crate::log::log(
                crate::log::Level::Error,
                &info.to_string(),
                &[("panic", "true")],
            );
        }));
    });
}

#[doc(hidden)]
pub fn init<T: Transform>(json: &str) -> Result<(), String> {
    install_panic_hook();
    let instance = T::new(config::<T>(json)?).map_err(|e| e.to_string())?;
    INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(instance)));
    Ok(())
}

#[doc(hidden)]
pub fn ports<T: Transform>(json: &str) -> Result<wit::PortNames, String> {
    install_panic_hook();
    let ports = T::ports(&config::<T>(json)?);
    Ok(wit::PortNames {
        inputs: ports.inputs,
        outputs: ports.outputs,
    })
}

#[doc(hidden)]
pub fn describe<T: Transform>(
    inputs: Vec<wit::PortSchema>,
    json: &str,
) -> Result<Vec<wit::PortSchema>, String> {
    // The host may call `describe` before `init` (`weir check` does).
    install_panic_hook();
    let config = config::<T>(json)?;
    let ports = T::ports(&config);
    let schemas = inputs
        .into_iter()
        .map(|p| p.schema.map(schema_from_wit).transpose())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let described = T::describe_ports(&schemas, &config).map_err(|e| e.to_string())?;
    Ok(ports
        .outputs
        .into_iter()
        .zip(described.into_iter().chain(std::iter::repeat(None)))
        .map(|(name, schema)| wit::PortSchema {
            name,
            schema: schema.as_ref().map(schema_to_wit),
        })
        .collect())
}

#[doc(hidden)]
pub fn process<T: Transform>(port: u32, input: &wit::Batch) -> Result<Vec<wit::Output>, String> {
    let batch = Batch::new(input);
    with_instance::<T, _>(|t| {
        t.process_port(port as usize, &batch)?
            .into_iter()
            .map(Output::into_wit)
            .collect()
    })
}

#[doc(hidden)]
pub fn finish<T: Transform>() -> Result<Vec<wit::Output>, String> {
    with_instance::<T, _>(|t| {
        t.finish()?
            .into_iter()
            .map(Output::batch_into_wit)
            .collect()
    })
}

#[doc(hidden)]
pub fn snapshot<T: Transform>() -> Result<Option<Vec<u8>>, String> {
    with_instance::<T, _>(|t| t.snapshot())
}

#[doc(hidden)]
pub fn restore<T: Transform>(state: &[u8]) -> Result<(), String> {
    with_instance::<T, _>(|t| t.restore(state))
}

#[doc(hidden)]
pub fn snapshot_field<T: Transform, S: serde::Serialize>(
    field: impl FnOnce(&T) -> &S,
) -> Result<Option<Vec<u8>>, String> {
    with_instance::<T, _>(|t| Ok(Some(serde_json::to_vec(field(t))?)))
}

#[doc(hidden)]
pub fn restore_field<T: Transform, S: serde::de::DeserializeOwned>(
    state: &[u8],
    set: impl FnOnce(&mut T, S),
) -> Result<(), String> {
    let value: S =
        serde_json::from_slice(state).map_err(|e| format!("can't restore state: {e}"))?;
    with_instance::<T, _>(|t| {
        set(t, value);
        Ok(())
    })
}
