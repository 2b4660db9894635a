//! Opens a TCP connection on every batch. `wasi:sockets` is linked but
//! every call is denied, so the connect must fail and the node with it.

use weir_plugin_sdk::prelude::*;

struct NetClient;

impl Transform for NetClient {
    type Config = serde::de::IgnoredAny;

    fn new(_: serde::de::IgnoredAny) -> Result<Self> {
        Ok(NetClient)
    }

    fn process(&mut self, _input: &Batch<'_>) -> Result<Vec<Output>> {
        std::net::TcpStream::connect("127.0.0.1:9")
            .map_err(|e| Error::msg(format!("connect: {e}")))?;
        Err(Error::msg("opened a socket"))
    }
}

weir_plugin_sdk::export!(NetClient);
