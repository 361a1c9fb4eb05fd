//! The snapshot figures: what the live projector's snapshots cost on disk
//! and in time, and what they save a replay to a cut near the end of the
//! log, against the same log replayed from its first event.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use clearing_app::core::Positions;
use clearing_app::{Config, ReadLedger};
use serde::Serialize;

use super::{global_args, replay_child, ReplayFigures};

/// Events before the end of the log at which the tail replay cuts.
pub const TAIL_CUT_BEHIND_END: u64 = 100_000;

#[derive(Serialize)]
pub struct SnapshotFigures {
    /// Snapshots the live projector wrote while it projected the log
    /// (`--snapshot-every`, date closes), and their bytes on disk.
    pub snapshots_written: u64,
    pub snapshot_every: u64,
    /// One snapshot of the whole state at the end of the log, timed.
    pub snapshot_write_s: f64,
    pub snapshot_bytes: u64,
    pub snapshot_keys: u64,
    /// `snapshot_bytes` per million events the state reflects.
    pub snapshot_bytes_per_million_events: u64,
    /// `clearing replay --until P:O` to `replay_tail_cut_behind_end`
    /// events before the end, from the newest snapshot at or before it
    /// (own process, digest included).
    pub replay_tail_s: f64,
    pub replay_tail_cut_behind_end: u64,
    /// Where the snapshot it started from stands (events), and the events
    /// it applied after it.
    pub replay_tail_from_snapshot_at: Option<u64>,
    pub replay_tail_events: u64,
    pub replay_tail_peak_rss_bytes: u64,
}

/// The snapshot figures of a stage's ledger, whose projections are at the
/// end of its log. The state-at-the-end snapshot is written after the
/// tail replay, so that the replay starts from what the live projector
/// wrote on its way, as it would on an operator's ledger.
pub fn figures(cfg: &Config, root: &Path) -> Result<SnapshotFigures> {
    let written = clearing_app::snapshots::list(cfg).len() as u64;
    let end = ReadLedger::open(cfg)?.digest()?.log_position;
    let partitions = match &cfg.kafka {
        Some(k) => k.partitions,
        None => 1,
    };
    let cut = behind(&end, partitions, TAIL_CUT_BEHIND_END);
    eprintln!("bench: replay to {TAIL_CUT_BEHIND_END} events before the end ({cut})");
    let tail = replay_child(
        global_args(cfg),
        &root.join("replay-tail"),
        &cut.to_string(),
        false,
    )?;
    eprintln!("bench: a snapshot of the state at the end");
    let t = Instant::now();
    let (path, header) = clearing_app::snapshots::take(cfg.live()?, "bench")?;
    let snapshot_write_s = t.elapsed().as_secs_f64();
    let snapshot_bytes = std::fs::metadata(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let events = header.offsets().max(1);
    Ok(SnapshotFigures {
        snapshots_written: written,
        snapshot_every: cfg.snapshots.every,
        snapshot_write_s,
        snapshot_bytes,
        snapshot_keys: header.keys,
        snapshot_bytes_per_million_events: (snapshot_bytes as u128 * 1_000_000 / u128::from(events))
            as u64,
        replay_tail_s: tail.secs,
        replay_tail_cut_behind_end: TAIL_CUT_BEHIND_END,
        replay_tail_from_snapshot_at: tail.from_snapshot_at,
        replay_tail_events: tail.events,
        replay_tail_peak_rss_bytes: tail.peak_rss_bytes,
    })
}

/// `end` moved back by `n` events in all, shared among the partitions in
/// proportion to what each holds; naming every partition.
fn behind(end: &Positions, partitions: u32, n: u64) -> Positions {
    let total = end.total().max(1);
    let n = n.min(total);
    (0..partitions)
        .map(|p| {
            let o = end.next(p);
            let share = (u128::from(o) * u128::from(n) / u128::from(total)) as u64;
            (p, o - share)
        })
        .collect()
}

impl ReplayFigures {
    pub fn peak_rss_mib(&self) -> f64 {
        (self.peak_rss_bytes as f64 / (1 << 20) as f64 * 10.0).round() / 10.0
    }
}
