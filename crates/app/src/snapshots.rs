//! Snapshots as a replay uses them: which ones lie before a cut, and
//! restoring one into a fresh replay dir, checked before it is built on.
//!
//! A snapshot is never trusted blindly. One whose header does not read,
//! or that is of another format, or that lies after the cut, is passed
//! over; one whose bytes are not those its SHA-256 says, or whose last
//! applied records the log does not hold where it says, is thrown away
//! once restored. Each is named in a warning, and the replay goes on from
//! the next older one, or from the first event.

use std::path::{Path, PathBuf};

use clearing_core::{Cut, Positions};
use clearing_log::EventLog;
use clearing_projector::snapshot::{self, Restoring, THROUGH_UNKNOWN};
use clearing_projector::SnapshotHeader;
use serde::{Deserialize, Serialize};

use crate::config::{open_projector, Config};
use crate::error::{AppError, Context};
use crate::replay::Live;

/// Stored bytes restored before the store is reopened (see `replay`).
pub const RESTORE_LEG_BYTES: u64 = 128 << 20;

/// The snapshot a replay started from, in its marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartedFrom {
    /// The file, in the live data dir's `snapshots/`.
    pub file: String,
    /// The log position it reflects: where the replay's tail began.
    pub log_position: Positions,
    /// Why it was taken (`close of 2026-11-20`, `every 1000000 offsets`).
    pub reason: String,
}

/// Snapshots of `cfg`'s live data dir that lie at or before `cut`, newest
/// first; and a warning for each one passed over as unusable.
pub(crate) fn before_cut(
    cfg: &Config,
    cut: &Cut,
    partitions: u32,
) -> (Vec<(PathBuf, SnapshotHeader)>, Vec<String>) {
    let mut usable = Vec::new();
    let mut warnings = Vec::new();
    for found in list(cfg).into_iter().rev() {
        match found.header {
            Err(why) => warnings.push(skipped(&found.path, &why)),
            Ok(h) if names_foreign_partitions(&h, partitions) => {
                warnings.push(skipped(&found.path, FOREIGN_PARTITIONS))
            }
            Ok(h) => {
                if lies_before(&h, cut) {
                    usable.push((found.path, h));
                }
            }
        }
    }
    (usable, warnings)
}

/// The warning for a snapshot a replay passes over.
pub(crate) fn skipped(path: &Path, why: &str) -> String {
    format!("snapshot {} {why}: skipped", path.display())
}

/// Why a snapshot naming partitions the log lacks is unusable.
pub(crate) const FOREIGN_PARTITIONS: &str = "names partitions the log does not have";

/// Whether `h` names a partition the log (of `partitions`) does not have.
pub(crate) fn names_foreign_partitions(h: &SnapshotHeader, partitions: u32) -> bool {
    h.positions.keys().any(|p| *p >= partitions)
}

/// A snapshot's file name, as reports name it.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every snapshot file of `cfg`'s live data dir, oldest first (see
/// `snapshot::list`).
pub fn list(cfg: &Config) -> Vec<snapshot::Found> {
    snapshot::list(&cfg.snapshot_dir())
}

/// Whether the state of `h` is a prefix of the state at `cut`: every
/// partition's position at or before the cut's.
fn lies_before(h: &SnapshotHeader, cut: &Cut) -> bool {
    let applied = || h.positions.iter().filter(|(_, o)| **o > 0);
    match cut {
        Cut::End => true,
        Cut::Before(at) => applied().all(|(p, o)| at.get(p).is_some_and(|c| o <= c)),
        // Every event before the snapshot's position was recorded by the
        // time, so the cut (the records before the first one recorded
        // after it) lies at or after that position on every partition.
        Cut::RecordedBy(t) => {
            let t = t.at().timestamp_micros();
            applied().all(|(p, _)| {
                h.recorded_through
                    .get(p)
                    .is_some_and(|through| *through != THROUGH_UNKNOWN && *through <= t)
            })
        }
    }
}

/// Restores the snapshot at `path` into the fresh dir `into`, in legs of
/// `RESTORE_LEG_BYTES`, and checks it: its SHA-256, that its positions are
/// those its header says, and that `log` holds the records it last
/// applied. `Err` says why it cannot be used; `into` then holds whatever
/// was restored, for the caller to throw away.
pub(crate) fn restore(
    path: &Path,
    header: &SnapshotHeader,
    into: &Path,
    log: &dyn EventLog,
) -> Result<StartedFrom, String> {
    let mut from = Restoring::open(path)?;
    if from.header != *header {
        return Err("changed while it was being read".into());
    }
    while !from.done() {
        open_projector(into)
            .map_err(|e| e.to_string())?
            .restore_leg(&mut from, RESTORE_LEG_BYTES)?;
    }
    let mut p = open_projector(into).map_err(|e| e.to_string())?;
    let restored: Vec<(u32, u64)> = p
        .stored_positions()
        .iter()
        .filter(|(_, o)| *o > 0)
        .collect();
    let said: Vec<(u32, u64)> = header
        .positions
        .iter()
        .filter(|(_, o)| **o > 0)
        .map(|(p, o)| (*p, *o))
        .collect();
    if restored != said {
        return Err("holds positions other than its header's".into());
    }
    p.check_against(log).map_err(|e| e.to_string())?;
    let log_position = p.stored_positions().clone();
    Ok(StartedFrom {
        file: file_name(path),
        log_position,
        reason: header.reason.clone(),
    })
}

/// Throws away what a failed restore left in `into`.
pub(crate) fn discard(into: &Path) -> Result<(), AppError> {
    let projections = into.join(clearing_projector::STORE_DIR);
    match std::fs::remove_dir_all(&projections) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AppError::storage(format!(
            "removing {}: {e}",
            projections.display()
        ))),
    }
}

/// The newest readable snapshot of `cfg`'s live data dir.
pub fn newest(cfg: &Config) -> Option<PathBuf> {
    list(cfg)
        .into_iter()
        .rev()
        .find(|f| f.header.is_ok())
        .map(|f| f.path)
}

/// Brings the live projections to the end of the log and writes a
/// snapshot of them now (the live projector writes its own at date closes
/// and every N events; this is for an operator, before an upgrade say, and
/// for the benchmark's cost figures). Returns the file and its header.
pub fn take(live: Live<'_>, reason: &str) -> Result<(PathBuf, SnapshotHeader), AppError> {
    let cfg = live.config();
    let log = crate::config::open_log(cfg)?;
    let mut p = open_projector(&cfg.data_dir)?;
    crate::project::catch_up(cfg, &*log, &mut p)?;
    p.flush()?;
    let taken = p
        .write_snapshot(&cfg.snapshot_dir(), reason)
        .context("writing a snapshot")?;
    snapshot::prune(&cfg.snapshot_dir(), cfg.snapshots.keep.max(1));
    Ok(taken)
}
