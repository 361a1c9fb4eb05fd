//! `clearing verify` (SPEC §15): every partition's hash chain recomputed
//! from the log, and the projections rebuilt from the log alone up to the
//! live projections' position, their digests compared.

use clearing_core::chain::{self, Break};
use clearing_core::{hex, Cut, Position, Positions};
use clearing_log::{EventLog, Topic};
use clearing_projector::snapshot;
use serde::Serialize;

use crate::config::{open_log, open_projector};
use crate::error::{AppError, Context};
use crate::replay::{digest_in_legs, replay_legs, Live, REPLAY_LEG_EVENTS};
use crate::snapshots;

/// Records read per call while walking a chain.
const VERIFY_READ_RECORDS_MAX: usize = 8192;

/// Where a partition's chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainBreak {
    pub position: Position,
    pub reason: String,
}

/// One partition's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainView {
    pub partition: u32,
    pub records: u64,
    /// The chain hash after the last record (hex).
    pub head: String,
    /// The first record that breaks the chain, if one does.
    #[serde(rename = "break")]
    pub broken: Option<ChainBreak>,
}

/// The live projections' digest against one rebuilt from the log alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DigestCheck {
    pub log_position: Positions,
    pub live: String,
    pub rebuilt: String,
    pub equal: bool,
    /// Why the live projections could not be brought up (they stand where
    /// the log does not, say), when they could not.
    pub error: Option<String>,
}

/// One snapshot of the live data dir against the state rebuilt from the
/// log at its position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotCheck {
    pub file: String,
    /// The position it says it reflects (empty when its header does not read).
    pub log_position: Positions,
    /// The digest it carries.
    pub digest: String,
    pub rebuilt: String,
    /// Its bytes are whole (SHA-256) and its digest is the rebuilt one.
    pub equal: bool,
    /// Of another format (left by an upgrade): not read, and no failure.
    pub other_format: bool,
    /// Why it is unusable: damaged, beyond the live position, …
    pub error: Option<String>,
}

impl SnapshotCheck {
    fn holds(&self) -> bool {
        self.other_format || (self.equal && self.error.is_none())
    }
}

/// `clearing verify --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyReport {
    pub chains: Vec<ChainView>,
    pub digest: DigestCheck,
    /// The live data dir's snapshots, oldest first.
    pub snapshots: Vec<SnapshotCheck>,
    /// Every chain holds, the digests are equal, and every snapshot of
    /// this build's format is whole and has the digest of its position.
    pub ok: bool,
}

impl VerifyReport {
    /// The first thing wrong, in one line.
    pub fn failure(&self) -> Option<String> {
        if let Some(b) = self.chains.iter().find_map(|c| c.broken.as_ref()) {
            return Some(format!(
                "the hash chain breaks at {}: {}",
                b.position, b.reason
            ));
        }
        if let Some(e) = &self.digest.error {
            return Some(e.clone());
        }
        if !self.digest.equal {
            return Some(format!(
                "the projections' digest {} is not the digest {} of the same log position ({}) rebuilt from the log",
                self.digest.live, self.digest.rebuilt, self.digest.log_position
            ));
        }
        self.snapshots.iter().find(|c| !c.holds()).map(|c| match &c.error {
            Some(e) => format!("snapshot {} {e}", c.file),
            None => format!(
                "snapshot {} carries the digest {}, not the digest {} of its log position ({}) rebuilt from the log",
                c.file, c.digest, c.rebuilt, c.log_position
            ),
        })
    }
}

/// Verifies a live ledger.
pub fn verify(live: Live<'_>) -> Result<VerifyReport, AppError> {
    let cfg = live.config();
    let log = open_log(cfg)?;
    let partitions = log.partitions(Topic::Events).context("reading the log")?;
    let chains = (0..partitions)
        .map(|p| walk_chain(&*log, p))
        .collect::<Result<Vec<_>, _>>()?;
    // The live projections, brought up; then the same position rebuilt.
    let live_state = (|| {
        let mut p = open_projector(&cfg.data_dir)?;
        crate::project::catch_up(cfg, &*log, &mut p)?;
        p.flush()?;
        Ok::<_, AppError>((p.digest()?, p.stored_positions().clone()))
    })();
    drop(log);
    let (live_digest, positions) = match live_state {
        Ok(state) => state,
        Err(e) => {
            let digest = DigestCheck {
                log_position: Positions::new(),
                live: String::new(),
                rebuilt: String::new(),
                equal: false,
                error: Some(e.to_string()),
            };
            return Ok(VerifyReport {
                chains,
                digest,
                snapshots: Vec::new(),
                ok: false,
            });
        }
    };
    // One rebuild from the first event, stopping at each snapshot's
    // position on the way to the live one.
    let live_cut = full_cut(&positions, partitions);
    let scratch = tempfile_in(&cfg.data_dir)?;
    let mut at = Positions::new();
    let snapshots = snapshots::list(cfg)
        .into_iter()
        .map(|found| check_snapshot(cfg, found, &live_cut, partitions, scratch.path(), &mut at))
        .collect::<Result<Vec<_>, _>>()?;
    let cut = Cut::Before(live_cut);
    replay_legs(cfg, &cut, scratch.path(), REPLAY_LEG_EVENTS, |_| {})?;
    let rebuilt = digest_in_legs(scratch.path())?;
    let digest = DigestCheck {
        equal: rebuilt == live_digest,
        log_position: positions,
        live: live_digest,
        rebuilt,
        error: None,
    };
    let ok = digest.equal
        && chains.iter().all(|c| c.broken.is_none())
        && snapshots.iter().all(SnapshotCheck::holds);
    Ok(VerifyReport {
        chains,
        digest,
        snapshots,
        ok,
    })
}

/// Checks one snapshot: its bytes against its SHA-256, and its digest
/// against the state rebuilt at its position. `scratch` stands at `at`
/// and is advanced to the snapshot's position when that lies between
/// `at` and the live position; a snapshot elsewhere is rebuilt apart.
fn check_snapshot(
    cfg: &crate::Config,
    found: snapshot::Found,
    live_cut: &Positions,
    partitions: u32,
    scratch: &std::path::Path,
    at: &mut Positions,
) -> Result<SnapshotCheck, AppError> {
    let mut check = SnapshotCheck {
        file: snapshots::file_name(&found.path),
        log_position: Positions::new(),
        digest: String::new(),
        rebuilt: String::new(),
        equal: false,
        other_format: found.other_format,
        error: None,
    };
    let header = match found.header {
        Ok(h) => h,
        Err(why) => {
            check.error = Some(why);
            return Ok(check);
        }
    };
    check.log_position = header.positions.iter().map(|(p, o)| (*p, *o)).collect();
    check.digest = header.digest.clone();
    if snapshots::names_foreign_partitions(&header, partitions) {
        check.error = Some(snapshots::FOREIGN_PARTITIONS.into());
        return Ok(check);
    }
    if let Err(why) = snapshot::Restoring::open(&found.path).and_then(|r| r.check()) {
        check.error = Some(why);
        return Ok(check);
    }
    let cut = full_cut(&check.log_position, partitions);
    let within = |lo: &Positions, hi: &Positions| (0..partitions).all(|p| lo.next(p) <= hi.next(p));
    if !within(&cut, live_cut) {
        check.error = Some(format!(
            "lies beyond the live projections' position ({live_cut})"
        ));
        return Ok(check);
    }
    check.rebuilt = if within(at, &cut) {
        let (_, reached) = replay_legs(cfg, &Cut::Before(cut), scratch, REPLAY_LEG_EVENTS, |_| {})?;
        *at = reached;
        digest_in_legs(scratch)?
    } else {
        let apart = tempfile_in(&cfg.data_dir)?;
        replay_legs(
            cfg,
            &Cut::Before(cut),
            apart.path(),
            REPLAY_LEG_EVENTS,
            |_| {},
        )?;
        digest_in_legs(apart.path())?
    };
    check.equal = check.rebuilt == check.digest;
    Ok(check)
}

/// Positions naming every partition (0 for one never applied).
fn full_cut(positions: &Positions, partitions: u32) -> Positions {
    (0..partitions).map(|p| (p, positions.next(p))).collect()
}

/// A scratch directory beside the data dir (same filesystem), removed
/// when dropped.
fn tempfile_in(data_dir: &std::path::Path) -> Result<ScratchDir, AppError> {
    let parent = data_dir
        .canonicalize()
        .ok()
        .and_then(|d| d.parent().map(|p| p.to_path_buf()))
        .unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = parent.join(format!(".clearing-verify-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&path)
        .map_err(|e| AppError::storage(format!("creating {}: {e}", path.display())))?;
    Ok(ScratchDir { path })
}

struct ScratchDir {
    path: std::path::PathBuf,
}

impl ScratchDir {
    fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Recomputes one partition's chain from its first record, stopping at
/// the first that breaks it.
fn walk_chain(log: &dyn EventLog, partition: u32) -> Result<ChainView, AppError> {
    let mut head = chain::GENESIS;
    let mut chained = false;
    let mut offset = 0u64;
    let mut records = 0u64;
    loop {
        let batch = log
            .read(Topic::Events, partition, offset, VERIFY_READ_RECORDS_MAX)
            .context("reading the log")?;
        let Some(last) = batch.last().map(|d| d.position.offset) else {
            break;
        };
        for d in batch {
            match chain::check(&head, chained, &d.payload) {
                Ok(h) => head = h,
                Err(b) => {
                    let reason = match b {
                        Break::Mismatch => "its chain hash is not what its bytes and its predecessor's hash give (the record was changed, or records before it removed, reordered or inserted)",
                        Break::Unchained => "it carries no chain after records that did (inserted by something other than the ledger)",
                    };
                    return Ok(ChainView {
                        partition,
                        records,
                        head: hex::encode(&head),
                        broken: Some(ChainBreak {
                            position: d.position,
                            reason: reason.to_string(),
                        }),
                    });
                }
            }
            chained |= chain::carried(&d.payload).is_some();
            records += 1;
        }
        offset = last + 1;
    }
    Ok(ChainView {
        partition,
        records,
        head: hex::encode(&head),
        broken: None,
    })
}
