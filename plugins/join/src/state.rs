//! The join's state for checkpoints and hot reload: whether the table is
//! complete, its rows, and the stream batches waiting for it — each part
//! an Arrow IPC stream behind its length.

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use weir_plugin_sdk::prelude::*;

use super::Join;

const COMPLETE: u8 = 1;
/// An interval join: its two sides' waiting rows follow.
const INTERVAL: u8 = 2;

fn ipc(batches: &[RecordBatch], out: &mut Vec<u8>) -> Result<()> {
    let mut bytes = Vec::new();
    if let Some(first) = batches.first() {
        let mut writer = StreamWriter::try_new(&mut bytes, &first.schema())?;
        for b in batches {
            writer.write(b)?;
        }
        writer.finish()?;
    }
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

fn batches(bytes: &mut &[u8]) -> Result<Vec<RecordBatch>> {
    let damaged = || Error::msg("join: the saved state is damaged");
    let (len, rest) = bytes.split_first_chunk::<8>().ok_or_else(damaged)?;
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| damaged())?;
    let (part, rest) = (rest.get(..len).ok_or_else(damaged)?, &rest[len..]);
    *bytes = rest;
    if part.is_empty() {
        return Ok(Vec::new());
    }
    let reader = StreamReader::try_new(part, None)?;
    Ok(reader.collect::<std::result::Result<_, _>>()?)
}

pub(super) fn save(join: &Join) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(interval) = &join.interval {
        out.push(INTERVAL);
        for side in interval.state() {
            ipc(&side, &mut out)?;
        }
        return Ok(out);
    }
    match &join.index {
        Some(index) => {
            out.push(COMPLETE);
            ipc(std::slice::from_ref(&index.table), &mut out)?;
        }
        None => {
            out.push(0);
            ipc(&join.loading, &mut out)?;
        }
    }
    ipc(&join.waiting, &mut out)?;
    Ok(out)
}

pub(super) fn load(join: &mut Join, bytes: &[u8]) -> Result<()> {
    let (flag, mut rest) = bytes
        .split_first()
        .ok_or_else(|| Error::msg("join: the saved state is empty"))?;
    if *flag == INTERVAL {
        let sides = [batches(&mut rest)?, batches(&mut rest)?];
        let Some(interval) = join.interval.as_mut() else {
            bail!(
                "join: the saved state is an interval join's; this node's config has no `within`"
            );
        };
        return interval.restore(sides, &join.config);
    }
    let table = batches(&mut rest)?;
    join.waiting = batches(&mut rest)?;
    join.loading = table;
    join.index = None;
    join.plan = None;
    if *flag == COMPLETE {
        let schema = match join.loading.first() {
            Some(b) => b.schema(),
            None => bail!("join: the saved state has a complete table without a schema"),
        };
        // Nothing waits once the table is complete: what `complete`
        // returns is empty.
        let waiting = std::mem::take(&mut join.waiting);
        join.complete(schema)?;
        join.waiting = waiting;
    }
    Ok(())
}
