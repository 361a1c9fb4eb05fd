//! What the benchmark measures besides the use cases themselves: the
//! floors a stage is compared with (decoding every event, parsing a
//! channel file), and a projector following a log in-process.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use clearing_consumer::{decode_all, BATCH_EVENTS_MAX};
use clearing_core::Positions;
use clearing_log::{EventLog, Topic};
use clearing_recon::Layout;

use crate::config::{open_projector, Config};
use crate::error::{AppError, Context};

/// Reads and decodes every event of the log, applying nothing: the floor
/// any projector or replay pays. Returns the events decoded.
pub fn decode_only(log: &dyn EventLog) -> Result<u64, AppError> {
    let mut decoded = 0u64;
    let partitions = log.partitions(Topic::Events)?;
    let mut next = Positions::new();
    loop {
        let records = log.read_all(Topic::Events, partitions, &next, BATCH_EVENTS_MAX * 8)?;
        if records.is_empty() {
            return Ok(decoded);
        }
        for item in decode_all(records) {
            next.advance_past(item.position);
            if item.event.is_ok() {
                decoded += 1;
            }
        }
    }
}

/// Reads and validates a channel file, nothing else: the floor of a
/// reconciliation run. Returns the valid lines.
pub fn parse_only(path: &Path, layout: Layout, date: NaiveDate) -> Result<u64, AppError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| AppError::input(format!("{name}: {e}")))?;
    let mut reader = clearing_recon::reader::ChannelReader::new(&name, file, layout, date)
        .map_err(clearing_recon::ReconError::from)?;
    let mut parsed = 0u64;
    while let Some(l) = reader
        .next_line()
        .map_err(clearing_recon::ReconError::from)?
    {
        if let clearing_recon::reader::Parsed::Line(_) = l {
            parsed += 1;
        }
    }
    Ok(parsed)
}

/// How long `follow_in_process` goes on reading, after `done`, for the
/// events it was told to expect.
pub const FOLLOW_SETTLE_MAX: Duration = Duration::from_secs(60);

/// Projects `cfg`'s data dir from `log` on this thread, over and over,
/// until `done` is set and a last catch-up has run, and then until it has
/// applied `at_least` events or `FOLLOW_SETTLE_MAX` has passed: as a
/// projector following an ingest in the same process. (On Kafka the
/// markers that commit a transaction reach its partitions a moment after
/// the commit returns, and a read-committed read until then ends before
/// the transaction's records.) Returns the events applied.
pub fn follow_in_process(
    cfg: &Config,
    log: &dyn EventLog,
    done: &AtomicBool,
    at_least: u64,
) -> Result<u64, AppError> {
    let mut p = open_projector(&cfg.data_dir)?;
    let mut events = 0;
    let mut finished_at = None;
    loop {
        if finished_at.is_none() && done.load(Ordering::SeqCst) {
            finished_at = Some(std::time::Instant::now());
        }
        let s = p.catch_up(log, |_| {}).context("projecting")?;
        events += s.events;
        if finished_at.is_some_and(|t| events >= at_least || t.elapsed() >= FOLLOW_SETTLE_MAX) {
            p.flush()?;
            return Ok(events);
        }
        if s.events == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
