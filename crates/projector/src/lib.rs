//! Read-side projections of the ledger, in sled at `DATA_DIR/projections`.
//!
//! Layout: `keys` is the key schema (every key and prefix, typed);
//! `entries` what is kept per record; `fold` the pure fold of a batch into
//! changes, checking what exactly-once relies on; this module the atomic
//! store that writes a batch's changes with its position, and the
//! `Handler` the consumer drives; `queries` what reports and disputes read;
//! `digest` the canonical hash of the state.
//!
//! One sled tree, `state`, holds every projection under its key prefix, so
//! that one `apply_batch` stores a batch's derived state *and* the log
//! position it reflects atomically (sled batches are atomic per tree). A
//! crash at any instant leaves either the whole batch with its position,
//! or neither: nothing lost, nothing counted twice.
//!
//! Per-record data is stored one value per batch and business date rather
//! than one key per record: a sled insert costs microseconds, a batch of
//! tens of thousands of records costs a handful. Every value is a function
//! of the events alone, and rows are sums, which commute; `digest` hashes
//! the *records* (not the batch values) in key and position order, so two
//! directories that applied the same events share a digest whatever their
//! batch sizes, restarts, redeliveries or partition interleaving; the
//! positions are reported beside it.

mod digest;
mod entries;
mod fold;
mod keys;
mod queries;
pub mod snapshot;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clearing_consumer::{
    catch_up, catch_up_until, check_tips, CatchUp, ConsumeError, Handler, Item, Tip, Undecodable,
};
use clearing_core::chain::Link;
use clearing_core::settlement::add_delta;
use clearing_core::Cut;
use clearing_log::faults::{self, Point};
use clearing_log::{EventLog, Positions, Topic};

pub use digest::DigestState;
pub use entries::{ReconEntry, TxnEntry};
pub use fold::{fold, Changes, Stand};
pub use snapshot::{SnapshotHeader, SNAPSHOT_FORMAT};

use entries::RowValue;
use keys::{Key, Prefix};

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("projections at {path}: {source}")]
    Storage { path: String, source: sled::Error },
    #[error("projections at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "projections at {path} are corrupt: {detail} (delete {path} to rebuild them from the log)"
    )]
    Corrupt { path: String, detail: String },
    #[error("settlement row {key} overflows")]
    Overflow { key: String },
    /// The stored positions are not the log's (see `check_against`).
    #[error("{0}")]
    Behind(clearing_consumer::TipError),
}

/// A position's value: the tip, then the latest `recorded_at` of the
/// partition's events so far (µs, i64 BE).
fn encode_tip(t: &Tip, through: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(49);
    v.extend_from_slice(&t.next.to_be_bytes());
    v.extend_from_slice(&t.link.hash);
    v.push(u8::from(t.link.carried));
    v.extend_from_slice(&through.to_be_bytes());
    v
}

/// A position's value; one stored before `recorded_at` was kept (41
/// bytes) gives `THROUGH_UNKNOWN`.
fn decode_tip(v: &[u8]) -> Option<(Tip, i64)> {
    let through = match v.len() {
        41 => snapshot::THROUGH_UNKNOWN,
        49 => i64::from_be_bytes(v[41..49].try_into().ok()?),
        _ => return None,
    };
    let tip = Tip {
        next: u64::from_be_bytes(v[..8].try_into().ok()?),
        link: Link {
            hash: v[8..40].try_into().ok()?,
            carried: v[40] == 1,
        },
    };
    Some((tip, through))
}

/// The projections' store in a data dir.
pub const STORE_DIR: &str = "projections";

/// When the live projector writes snapshots (`snapshot`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Where (`DATA_DIR/snapshots`).
    pub dir: PathBuf,
    /// A snapshot after every this many offsets applied since the last
    /// one (0: never on count).
    pub every: u64,
    /// A snapshot before the first transaction of a business date later
    /// than every date the state holds: the close of the dates before.
    pub at_date_close: bool,
    /// Snapshots kept; older ones are deleted.
    pub keep: usize,
}

/// Events projected per batch. Each batch is one atomic sled write; big
/// batches make the per-row updates (one per touched merchant row) rare
/// per event, while 32k events of a few hundred bytes bound memory to tens
/// of MiB.
pub const PROJECT_BATCH_MAX: usize = 32_768;

/// Records a catch-up stores in one atomic commit, over several batches
/// read: with many merchants nearly every record of a batch touches its
/// own settlement row, and each row is rewritten once per commit, so
/// commits larger than what is read at once make row writes rarer per
/// record without holding more decoded events in memory. What is held is
/// the batches' folded changes (compressed segments, one delta per row).
pub const COMMIT_RECORDS: u64 = 131_072;

/// The layout of the projected state. Raise it when a change means state
/// built by an earlier version must be rebuilt from the log.
/// 2: the reconciliation index (`rk/`) and runs (`recon/`).
/// 3: the transaction index carries each record's settlement row, its
/// sale's amounts (voids, reversals) and decline code.
/// 4: the transaction index is postcard, not JSON.
/// 5: high-water marks one value per partition (`hw/PARTITION`, postcard).
/// 6: positions carry the link of the last record applied (checked
/// against the log on open).
pub(crate) const FORMAT: u32 = 6;
const FORMAT_KEY: &[u8] = b"format";

pub struct Projector {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    positions: Positions,
    /// The link of the last record applied, per partition.
    tips: BTreeMap<u32, Tip>,
    /// The latest `recorded_at` (µs) of the events applied, per partition
    /// (stored with the position).
    through: BTreeMap<u32, i64>,
    /// The latest business date of the transactions the state holds.
    latest_date: Option<NaiveDate>,
    /// When to write snapshots, and the offsets of the newest one.
    snapshots: Option<(SnapshotPolicy, u64)>,
    /// Whether the stored positions were checked against the log.
    checked: bool,
    /// Highest `seq` applied per event key, per partition (a key's events
    /// are on one partition).
    high_water: HashMap<u32, BTreeMap<String, u64>>,
    /// Whether the log this projector reads has offsets without gaps.
    dense: bool,
    /// Events skipped because their key's `seq` was already applied (a
    /// redelivery or a re-published event).
    pub redelivered: u64,
    /// Events this process applied, by type (for the service's metrics).
    applied_by_type: BTreeMap<&'static str, u64>,
    /// Undecodable messages met by this process, not yet taken.
    undecodable: Vec<Undecodable>,
    /// Whether a read or write of the store failed: then it is not
    /// flushed on drop (see `Drop`).
    failed: std::sync::atomic::AtomicBool,
    /// The stored settlement rows this process wrote or read last, by key
    /// (see `RowCache`).
    rows: RowCache,
    /// Whether `apply` may hold a batch's changes back to store them with
    /// the next batches' (only within `catch_up`/`catch_up_until`, which
    /// store what is held before they return).
    defer: bool,
    /// Changes folded but not yet stored: neither they nor their position
    /// are in the store, so a crash loses both together.
    pending: Option<Changes>,
    /// Records per commit when deferring (`COMMIT_RECORDS`).
    commit_records: u64,
}

/// The settlement rows a projector stored last, so that adding a batch's
/// deltas reads and decodes the stored row only when it is not here.
/// Filled only after a batch is written (a failed write leaves it as the
/// store is), emptied by anything else that writes the store (a snapshot
/// restore), and emptied whole when it outgrows `ROW_CACHE_MAX`: with many
/// merchants every batch touches thousands of rows, and a sled read and
/// a JSON decode per row were a fifth of the projector's time.
#[derive(Default)]
struct RowCache(HashMap<Vec<u8>, RowValue>);

/// Rows cached: 20,000 merchants over a few business dates fit.
const ROW_CACHE_MAX: usize = 200_000;

/// sled flushes a tree when its last handle is dropped, in a loop until
/// the flush writes nothing — which, on a full disk, never comes — and
/// unwraps the final sync. A store that has seen an I/O error is therefore
/// left unflushed: a handle of it is kept for the rest of the process,
/// whose exit releases the store's lock. What was committed is durable
/// already (every batch is atomic); what was not is void.
impl Drop for Projector {
    fn drop(&mut self) {
        if self.failed.load(std::sync::atomic::Ordering::SeqCst) {
            std::mem::forget(self.tree.clone());
            std::mem::forget(self.db.clone());
        }
    }
}

impl Projector {
    /// Opens the projections of a data directory (creating them).
    pub fn open(data_dir: &Path) -> Result<Projector, ProjectorError> {
        let path = data_dir.join(STORE_DIR);
        let storage = |source| match source {
            sled::Error::Corruption { .. } => ProjectorError::Corrupt {
                path: path.display().to_string(),
                detail: "sled read data that fails its checksum".into(),
            },
            source => ProjectorError::Storage {
                path: path.display().to_string(),
                source,
            },
        };
        let db = clearing_log::store::open(&path).map_err(storage)?;
        let tree = db.open_tree("state").map_err(storage)?;
        let meta = db.open_tree("meta").map_err(storage)?;
        let format = meta
            .get(FORMAT_KEY)
            .map_err(storage)?
            .map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4])));
        if format != Some(FORMAT) {
            if !tree.is_empty() {
                // Built by an earlier version, whose state lacks what this one
                // reads (e.g. the reconciliation index): start over, and the
                // next catch-up rebuilds everything from the log.
                tracing::warn!(
                    path = %path.display(),
                    found = format.unwrap_or(1),
                    expected = FORMAT,
                    "projections are of an earlier format; rebuilding them from the log"
                );
                tree.clear().map_err(storage)?;
            }
            meta.insert(FORMAT_KEY, &FORMAT.to_be_bytes())
                .map_err(storage)?;
            db.flush().map_err(storage)?;
        }
        let mut p = Projector {
            path,
            db,
            tree,
            positions: Positions::new(),
            tips: BTreeMap::new(),
            through: BTreeMap::new(),
            latest_date: None,
            snapshots: None,
            checked: false,
            high_water: HashMap::new(),
            dense: false,
            redelivered: 0,
            applied_by_type: BTreeMap::new(),
            undecodable: Vec::new(),
            failed: Default::default(),
            rows: Default::default(),
            defer: false,
            pending: None,
            commit_records: COMMIT_RECORDS,
        };
        let tips = p.read_tips()?;
        p.positions = tips.iter().map(|(p, (t, _))| (*p, t.next)).collect();
        p.through = tips.iter().map(|(p, (_, r))| (*p, *r)).collect();
        p.tips = tips.into_iter().map(|(p, (t, _))| (p, t)).collect();
        p.latest_date = p.read_latest_date()?;
        p.high_water = p.read_high_water()?;
        Ok(p)
    }

    fn read_tips(&self) -> Result<BTreeMap<u32, (Tip, i64)>, ProjectorError> {
        let mut out = BTreeMap::new();
        for kv in self.tree.scan_prefix(Prefix::Positions.bytes()) {
            let (k, v) = kv.map_err(|e| self.storage(e))?;
            let partition =
                keys::position_partition(&k).ok_or_else(|| self.corrupt("position key"))?;
            let tip = decode_tip(&v).ok_or_else(|| self.corrupt("position value"))?;
            out.insert(partition, tip);
        }
        Ok(out)
    }

    /// Checks (once per open) that the log holds the record each partition
    /// last applied, where the stored position says: a log cut back or
    /// restored from an older copy is refused, never reported from.
    pub fn check_against<L: EventLog + ?Sized>(&mut self, log: &L) -> Result<(), ProjectorError> {
        if self.checked {
            return Ok(());
        }
        check_tips(
            log,
            Topic::Events,
            &self.tips,
            &self.path.display().to_string(),
        )
        .map_err(ProjectorError::Behind)?;
        self.checked = true;
        Ok(())
    }

    fn read_high_water(&self) -> Result<HashMap<u32, BTreeMap<String, u64>>, ProjectorError> {
        let mut out = HashMap::new();
        for kv in self.tree.scan_prefix(Prefix::HighWater.bytes()) {
            let (k, v) = kv.map_err(|e| self.storage(e))?;
            let partition =
                keys::high_water_partition(&k).ok_or_else(|| self.corrupt("high-water key"))?;
            let marks = lz4_flex::decompress_size_prepended(&v)
                .ok()
                .and_then(|plain| postcard::from_bytes::<Vec<(String, u64)>>(&plain).ok())
                .ok_or_else(|| self.corrupt("high-water marks"))?;
            out.insert(partition, marks.into_iter().collect());
        }
        Ok(out)
    }

    /// The business date of the last transaction segment (`txn/DATE/…`).
    fn read_latest_date(&self) -> Result<Option<NaiveDate>, ProjectorError> {
        let Some(kv) = self
            .tree
            .scan_prefix(Prefix::AllSegments(keys::SegmentKind::Txn).bytes())
            .next_back()
        else {
            return Ok(None);
        };
        let (k, _) = kv.map_err(|e| self.storage(e))?;
        keys::segment_date(&k)
            .map(Some)
            .ok_or_else(|| self.corrupt("transaction segment key"))
    }

    /// Has this (live) projector write snapshots as `policy` says.
    pub fn with_snapshots(mut self, policy: SnapshotPolicy) -> Projector {
        self.set_snapshots(policy);
        self
    }

    /// Has this (live) projector write snapshots as `policy` says, unless
    /// it already does.
    pub fn set_snapshots(&mut self, policy: SnapshotPolicy) {
        if self.snapshots.as_ref().is_some_and(|(p, _)| *p == policy) {
            return;
        }
        let newest = snapshot::list(&policy.dir)
            .iter()
            .filter_map(|f| f.header.as_ref().ok().map(|h| h.offsets()))
            .max()
            .unwrap_or(0);
        self.snapshots = Some((policy, newest));
    }

    /// Offsets applied, summed over partitions.
    fn offsets(&self) -> u64 {
        self.positions.iter().map(|(_, o)| o).sum()
    }

    /// Writes a snapshot now if `reason` says one is due and the state has
    /// moved since the newest. A snapshot that cannot be written is only a
    /// warning: the projections themselves are whole.
    fn snapshot_if(&mut self, reason: Option<String>) {
        let Some((policy, newest)) = &self.snapshots else {
            return;
        };
        let Some(reason) = reason else {
            return;
        };
        if self.offsets() == *newest {
            return;
        }
        let policy = policy.clone();
        match self.write_snapshot(&policy.dir, &reason) {
            Ok((path, header)) => {
                tracing::info!(path = %path.display(), offsets = header.offsets(), %reason, "snapshot written");
                self.snapshots = Some((policy.clone(), header.offsets()));
                snapshot::prune(&policy.dir, policy.keep);
            }
            Err(e) => tracing::warn!(error = %e, "snapshot not written"),
        }
    }

    /// Why a snapshot is due on count once the state reflects `offsets`
    /// (summed over partitions), if it is.
    fn due_on_count(&self, offsets: u64) -> Option<String> {
        let (policy, newest) = self.snapshots.as_ref()?;
        (policy.every > 0 && offsets.saturating_sub(*newest) >= policy.every)
            .then(|| format!("every {} offsets", policy.every))
    }

    /// Has catch-ups store their changes in commits of up to `records`
    /// records (at least one batch read) instead of `COMMIT_RECORDS`.
    pub fn with_commit_records(mut self, records: u64) -> Projector {
        self.commit_records = records;
        self
    }

    /// Tells the projector whether the log it reads has offsets without
    /// gaps (the embedded log), so that every batch is checked to be
    /// consecutive.
    pub fn with_dense_offsets(mut self, dense: bool) -> Projector {
        self.dense = dense;
        self
    }

    pub(crate) fn storage(&self, source: sled::Error) -> ProjectorError {
        self.failed.store(true, std::sync::atomic::Ordering::SeqCst);
        if let sled::Error::Corruption { .. } = source {
            return self.corrupt("sled read data that fails its checksum");
        }
        ProjectorError::Storage {
            path: self.path.display().to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(&self, detail: impl Into<String>) -> ProjectorError {
        ProjectorError::Corrupt {
            path: self.path.display().to_string(),
            detail: detail.into(),
        }
    }

    /// Brings the projections to the end of the log.
    pub fn catch_up<L: EventLog + ?Sized>(
        &mut self,
        log: &L,
        progress: impl FnMut(u64),
    ) -> Result<CatchUp, ConsumeError<ProjectorError>> {
        self.dense = log.dense_offsets();
        self.check_against(log).map_err(ConsumeError::Handler)?;
        self.deferring(|p| catch_up(log, Topic::Events, p, PROJECT_BATCH_MAX, progress))
    }

    /// Runs a catch-up with `apply` storing changes in commits of up to
    /// `COMMIT_RECORDS` records, and stores what is held when it ends. A
    /// failed catch-up stores nothing more: what it held is dropped with
    /// its position, as a crash would drop it.
    fn deferring(
        &mut self,
        run: impl FnOnce(&mut Projector) -> Result<CatchUp, ConsumeError<ProjectorError>>,
    ) -> Result<CatchUp, ConsumeError<ProjectorError>> {
        self.defer = true;
        let ran = run(self);
        self.defer = false;
        match ran {
            Ok(stats) => {
                self.settle().map_err(ConsumeError::Handler)?;
                Ok(stats)
            }
            Err(e) => {
                self.pending = None;
                Err(e)
            }
        }
    }

    /// Stores the changes held back by `apply`, if any.
    fn settle(&mut self) -> Result<(), ProjectorError> {
        match self.pending.take() {
            Some(changes) => self.store(changes),
            None => Ok(()),
        }
    }

    /// Brings the projections to a cut of the log (a replay's `--until`).
    pub fn catch_up_until<L: EventLog + ?Sized>(
        &mut self,
        log: &L,
        until: &Cut,
        batch_max: usize,
        events_max: u64,
        progress: impl FnMut(u64),
    ) -> Result<CatchUp, ConsumeError<ProjectorError>> {
        self.dense = log.dense_offsets();
        self.check_against(log).map_err(ConsumeError::Handler)?;
        self.deferring(|p| {
            catch_up_until(
                log,
                Topic::Events,
                p,
                batch_max,
                until,
                events_max,
                progress,
            )
        })
    }

    /// Events this process applied since it opened the store, by type.
    pub fn applied_by_type(&self) -> &BTreeMap<&'static str, u64> {
        &self.applied_by_type
    }

    /// This store's identity, created once: names its consumer group on
    /// Kafka, so that two data dirs following the same topic never split
    /// its partitions between them. Kept outside the projected state (and
    /// so outside the digest).
    pub fn follower_id(&self) -> Result<String, ProjectorError> {
        use sha2::{Digest, Sha256};
        let meta = self.db.open_tree("meta").map_err(|e| self.storage(e))?;
        if let Some(v) = meta.get(b"follower-id").map_err(|e| self.storage(e))? {
            return Ok(String::from_utf8_lossy(&v).into_owned());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut h = Sha256::new();
        h.update(nanos.to_be_bytes());
        h.update(std::process::id().to_be_bytes());
        h.update(self.path.display().to_string().as_bytes());
        let id = clearing_core::hex::encode(&h.finalize()[..8]);
        meta.insert(b"follower-id", id.as_bytes())
            .map_err(|e| self.storage(e))?;
        meta.flush().map_err(|e| self.storage(e))?;
        Ok(id)
    }

    /// Next offset to read, per partition.
    pub fn stored_positions(&self) -> &Positions {
        &self.positions
    }

    /// Makes what sled buffered durable.
    pub fn flush(&self) -> Result<(), ProjectorError> {
        faults::check(Point::StoreFlush).map_err(|e| self.io(e))?;
        self.tree.flush().map(|_| ()).map_err(|e| self.storage(e))
    }

    /// Raises the marks of a partition to a batch's; returns what they
    /// were, for `lower_marks`.
    fn raise_marks(
        &mut self,
        partition: u32,
        marks: &HashMap<String, u64>,
    ) -> Vec<(String, Option<u64>)> {
        if marks.is_empty() {
            return Vec::new();
        }
        let all = self.high_water.entry(partition).or_default();
        marks
            .iter()
            .map(|(k, v)| (k.clone(), all.insert(k.clone(), *v)))
            .collect()
    }

    /// Puts back the marks a failed write had raised.
    fn lower_marks(&mut self, partition: u32, raised: Vec<(String, Option<u64>)>) {
        let Some(all) = self.high_water.get_mut(&partition) else {
            return;
        };
        for (k, was) in raised {
            match was {
                Some(v) => all.insert(k, v),
                None => all.remove(&k),
            };
        }
    }

    /// Forgets the cached rows: the store was written by something else.
    pub(crate) fn forget_rows(&mut self) {
        self.rows.0.clear();
    }

    /// An error before sled was asked to write (sled's own state is whole).
    fn io(&self, source: std::io::Error) -> ProjectorError {
        ProjectorError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// The undecodable messages this process met since the last call, for
    /// the caller to dead-letter. (All of them stay recorded under `bad/`.)
    pub fn take_undecodable(&mut self) -> Vec<Undecodable> {
        std::mem::take(&mut self.undecodable)
    }

    /// Writes a batch's changes with its position in one atomic sled batch:
    /// rows are added to what is stored, everything else is put as it is.
    /// The in-memory position and high-water marks move only after the
    /// write succeeded.
    pub fn store(&mut self, changes: Changes) -> Result<(), ProjectorError> {
        let mut batch = sled::Batch::default();
        let mut rows = Vec::with_capacity(changes.rows.len());
        for (k, mut row) in changes.rows {
            let old = match self.rows.0.get(&k) {
                Some(old) => Some(old.totals),
                None => match self.tree.get(&k).map_err(|e| self.storage(e))? {
                    Some(old) => Some(
                        serde_json::from_slice::<RowValue>(&old)
                            .map_err(|e| self.corrupt(format!("row: {e}")))?
                            .totals,
                    ),
                    None => None,
                },
            };
            if let Some(old) = old {
                add_delta(&mut row.totals, &old).map_err(|_| ProjectorError::Overflow {
                    key: String::from_utf8_lossy(&k).into_owned(),
                })?;
            }
            batch.insert(k.clone(), serde_json::to_vec(&row).expect("row serialises"));
            rows.push((k, row));
        }
        for (k, v) in changes.puts {
            batch.insert(k, v);
        }
        // The partition's marks are raised in place (a clone of every key
        // of the partition per batch cost more than the batch's own marks)
        // and put back as they were if the write fails.
        let raised = self.raise_marks(changes.partition, &changes.high_water);
        if !changes.high_water.is_empty() {
            let all = &self.high_water[&changes.partition];
            let encoded =
                postcard::to_stdvec(&all.iter().collect::<Vec<_>>()).expect("marks serialise");
            batch.insert(
                Key::HighWater(changes.partition).bytes(),
                lz4_flex::compress_prepend_size(&encoded),
            );
        }
        let tip = Tip {
            next: changes.next_offset,
            link: changes.last_link,
        };
        let through = self
            .through
            .get(&changes.partition)
            .copied()
            .unwrap_or(i64::MIN)
            .max(changes.recorded_through);
        batch.insert(
            Key::Position(changes.partition).bytes(),
            encode_tip(&tip, through),
        );
        let written = faults::check(Point::StoreBatch)
            .map_err(|e| self.io(e))
            .and_then(|()| self.tree.apply_batch(batch).map_err(|e| self.storage(e)));
        if let Err(e) = written {
            self.lower_marks(changes.partition, raised);
            return Err(e);
        }
        if self.rows.0.len() + rows.len() > ROW_CACHE_MAX {
            self.rows.0.clear();
        }
        self.rows.0.extend(rows);
        self.positions.set(changes.partition, changes.next_offset);
        self.tips.insert(changes.partition, tip);
        self.through.insert(changes.partition, through);
        self.latest_date = self.latest_date.max(changes.latest_date);
        self.redelivered += changes.redelivered;
        for (t, n) in changes.by_type {
            *self.applied_by_type.entry(t).or_default() += n;
        }
        self.undecodable.extend(changes.undecodable);
        Ok(())
    }
}

impl Handler for Projector {
    type Error = ProjectorError;

    fn positions(&self) -> Positions {
        self.positions.clone()
    }

    fn apply(
        &mut self,
        partition: u32,
        items: Vec<Item>,
        next_offset: u64,
    ) -> Result<(), ProjectorError> {
        if items.is_empty() {
            return Ok(());
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|held| held.partition != partition)
        {
            self.settle()?;
        }
        // The close of the dates the state holds: before the first
        // transaction of a later one.
        let held_date = self
            .latest_date
            .max(self.pending.as_ref().and_then(|c| c.latest_date));
        let closing = match (&self.snapshots, held_date) {
            (Some((policy, _)), Some(held)) if policy.at_date_close => fold::latest_date(&items)
                .filter(|d| *d > held)
                .map(|_| held),
            _ => None,
        };
        if closing.is_some() {
            self.settle()?;
        }
        self.snapshot_if(closing.map(|d| format!("close of {d}")));
        let held = self.pending.take();
        let stand = Stand {
            partition,
            next: held
                .as_ref()
                .map_or(self.positions.next(partition), |c| c.next_offset),
            dense: self.dense,
        };
        let hw = self.high_water.get(&partition);
        let changes = fold(
            |key| {
                held.as_ref()
                    .and_then(|c| c.high_water.get(key))
                    .or_else(|| hw.and_then(|m| m.get(key)))
                    .copied()
                    .unwrap_or(0)
            },
            stand,
            items,
            next_offset,
        );
        let changes = match held {
            Some(mut held) => {
                held.absorb(changes).map_err(|k| ProjectorError::Overflow {
                    key: String::from_utf8_lossy(&k).into_owned(),
                })?;
                held
            }
            None => changes,
        };
        let held_offsets = self.offsets() + changes.next_offset - self.positions.next(partition);
        if self.defer
            && self.due_on_count(held_offsets).is_none()
            && changes.records() < self.commit_records
        {
            self.pending = Some(changes);
            return Ok(());
        }
        self.store(changes)?;
        self.snapshot_if(self.due_on_count(self.offsets()));
        Ok(())
    }
}
