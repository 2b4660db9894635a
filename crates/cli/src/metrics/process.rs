//! The standard process metrics (`process_*`), as every Prometheus client
//! names them, read from `/proc` at each scrape.

use std::time::SystemTime;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::{counter, family, gauge, unix_secs};

/// The standard process metrics (`process_*`, as every Prometheus client
/// names them).
pub(super) fn process(
    e: &mut DescriptorEncoder<'_>,
    started: SystemTime,
) -> Result<(), std::fmt::Error> {
    if let Some(rss) = resident_bytes() {
        family(
            e,
            gauge(
                "process_resident_memory",
                "Resident memory size.",
                Some(Unit::Bytes),
            ),
            [(vec![], ConstGauge::new(rss as i64))],
        )?;
    }
    if let Some(cpu) = cpu_seconds() {
        family(
            e,
            counter(
                "process_cpu",
                "User and system CPU time spent.",
                Some(Unit::Seconds),
            ),
            [(vec![], ConstCounter::new(cpu))],
        )?;
    }
    family(
        e,
        gauge(
            "process_start_time",
            "When the process started, since the Unix epoch.",
            Some(Unit::Seconds),
        ),
        [(vec![], ConstGauge::new(unix_secs(started)))],
    )
}

/// Resident set size now (`VmRSS`; the summary's peak is `VmHWM`).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The process's user + system CPU time, every thread included: fields
/// 14 and 15 of `/proc/self/stat`, in clock ticks of 1/100 s (`USER_HZ`,
/// which Linux fixes at 100 for what /proc reports).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}
