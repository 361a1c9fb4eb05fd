//! Read-side projections of the ledger, in sled at `DATA_DIR/projections`.
//!
//! Layout: one sled tree, `state`, holds every projection under a key
//! prefix, so that one `apply_batch` stores a batch's derived state *and*
//! the log position it reflects atomically (sled batches are atomic per
//! tree). A crash at any instant leaves either the whole batch with its
//! position, or neither: nothing lost, nothing counted twice.
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `pos/` | partition (u32 BE) | next offset to read (u64 BE) |
//! | `hw` | — | highest event `seq` applied per key (redelivery guard) |
//! | `row/` | `DATE/MERCHANT\0CLEARING\0INTERMEDIARY\0PAYOUT` | settlement row totals |
//! | `txn/` | `DATE/` + batch's first position | transaction index: the records of that date in that batch (LZ4 postcard) |
//! | `rk/` | `DATE/` + batch's first position | reconciliation index: what a run needs of those records (LZ4 postcard) |
//! | `risk/` | `DATE/` + batch's first position | flagged records of that date in that batch (LZ4 JSON) |
//! | `merchant/` | `MERCHANT\0VERSION (u32 BE)` | registry entry with its position |
//! | `intermediary/` | `ID\0VERSION (u32 BE)` | intermediary with its position |
//! | `fees/` | version (u32 BE) | fee schedule with its position |
//! | `bad/` | partition, offset (BE) | why an event could not be decoded |
//!
//! Per-record data is stored one value per batch and business date rather
//! than one key per record: a sled insert costs microseconds, a batch of
//! tens of thousands of records costs a handful. Every value is a function
//! of the events alone, and rows are sums, which commute; `digest` hashes
//! the *records* (not the batch values) in key and position order, so two
//! directories that applied the same events share a digest whatever their
//! batch sizes, restarts, redeliveries or partition interleaving; the
//! positions are reported beside it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clearing_consumer::{
    catch_up, catch_up_until, CatchUp, ConsumeError, Handler, Item, Undecodable, Until,
};
use clearing_core::events::{OriginalSale, RowDelta, RowKey, TxnRecorded};
use clearing_core::recon::{ReconciliationBreak, ReconciliationRun};
use clearing_core::settlement::{add_delta, FlaggedTxn};
use clearing_core::{Channel, Event, EventBody, Fen, TxnResult, TxnType};
use clearing_log::{EventLog, Position, Topic};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("projections at {path}: {source}")]
    Storage { path: String, source: sled::Error },
    #[error("projections at {path} are corrupt: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("settlement row {key} overflows")]
    Overflow { key: String },
}

/// Events projected per batch. Each batch is one atomic sled write; big
/// batches make the per-row updates (one per touched merchant row) rare
/// per event, while 32k events of a few hundred bytes bound memory to tens
/// of MiB.
pub const PROJECT_BATCH_MAX: usize = 32_768;

/// What the transaction index keeps of one accepted record (postcard:
/// every field is written, in order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnEntry {
    /// `PARTITION:OFFSET` of the event.
    pub position: String,
    pub recorded_at: String,
    pub occurred_at: String,
    pub txn_id: String,
    pub txn_type: TxnType,
    pub result: TxnResult,
    pub merchant_id: String,
    pub terminal_id: String,
    pub rrn: String,
    pub channel: Channel,
    pub amount: Fen,
    pub fee: Fen,
    pub business_date: NaiveDate,
    #[serde(default)]
    pub payout_date: Option<NaiveDate>,
    #[serde(default)]
    pub original_txn_id: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    /// The settlement row it changes, when it moves money.
    #[serde(default)]
    pub settlement: Option<RowKey>,
    /// What an approved void or reversal cancelled of its sale.
    #[serde(default)]
    pub original: Option<OriginalSale>,
}

impl TxnEntry {
    /// The settlement row this record changes and by how much (the same
    /// rule as the event's).
    pub fn row_delta(&self) -> Option<(&RowKey, RowDelta)> {
        let row = self.settlement.as_ref()?;
        let delta = RowDelta::of(self.txn_type, self.amount, self.fee, self.original.as_ref())?;
        Some((row, delta))
    }
}

/// What reconciliation needs of one accepted record, kept per business
/// date in its own compact index (postcard, not JSON): a run loads a whole
/// date's worth, up to millions, before reading the channel's file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconEntry {
    pub txn_id: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub rrn: String,
    pub txn_type: TxnType,
    pub result: TxnResult,
    pub original_txn_id: Option<String>,
    pub amount_fen: i64,
    pub fee_fen: i64,
    /// Local (UTC+08:00) time of day it occurred, in seconds.
    pub local_seconds: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RowValue {
    key: RowKey,
    totals: RowDelta,
}

/// A value from the log, with where and when it was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recorded<T> {
    /// `PARTITION:OFFSET` of the event.
    pub position: String,
    pub recorded_at: String,
    pub value: T,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Positioned<T> {
    position: String,
    recorded_at: String,
    value: T,
}

const POS: &[u8] = b"pos/";
/// The layout of the projected state. Raise it when a change means state
/// built by an earlier version must be rebuilt from the log.
/// 2: the reconciliation index (`rk/`) and runs (`recon/`).
/// 3: the transaction index carries each record's settlement row, its
/// sale's amounts (voids, reversals) and decline code.
/// 4: the transaction index is postcard, not JSON.
const FORMAT: u32 = 4;
const FORMAT_KEY: &[u8] = b"format";
const HW: &[u8] = b"hw";

fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

fn row_key_bytes(k: &RowKey) -> Vec<u8> {
    format!(
        "row/{}/{}\0{}\0{}\0{}",
        k.business_date,
        k.merchant_id,
        k.clearing.as_str(),
        k.intermediary_id.as_deref().unwrap_or(""),
        k.payout_date
    )
    .into_bytes()
}

/// `recon/KIND/DATE/SHA256/`: where a reconciliation run's summary
/// (`run`) and breaks (`break`, then the index) are kept.
fn recon_key(kind: &str, date: NaiveDate, file_sha256: &str) -> Vec<u8> {
    format!("recon/{kind}/{date}/{file_sha256}/").into_bytes()
}

fn recon_latest_key(date: NaiveDate) -> Vec<u8> {
    format!("recon/latest/{date}").into_bytes()
}

fn segment_key(prefix: &str, date: NaiveDate, first: Position) -> Vec<u8> {
    key(&[
        format!("{prefix}/{date}/").as_bytes(),
        &first.partition.to_be_bytes(),
        &first.offset.to_be_bytes(),
    ])
}

/// How a segment's records are encoded: postcard for the indexes read in
/// bulk (`txn/`, `rk/`), JSON for the rest.
#[derive(Clone, Copy)]
enum Encoding {
    Json,
    Postcard,
}

/// Adds one segment per business date to a batch: the date's records of
/// this batch, encoded and LZ4-compressed (sled rewrites whole tree nodes
/// with their values, so bytes per value are what writing costs).
fn put_segments<T: Serialize>(
    batch: &mut sled::Batch,
    prefix: &str,
    first: Position,
    by_date: &BTreeMap<NaiveDate, Vec<T>>,
    encoding: Encoding,
) {
    for (date, entries) in by_date {
        let bytes = match encoding {
            Encoding::Json => serde_json::to_vec(entries).expect("segments serialise"),
            Encoding::Postcard => postcard::to_stdvec(entries).expect("segments serialise"),
        };
        batch.insert(
            segment_key(prefix, *date, first),
            lz4_flex::compress_prepend_size(&bytes),
        );
    }
}

pub struct Projector {
    path: PathBuf,
    _db: sled::Db,
    tree: sled::Tree,
    positions: BTreeMap<u32, u64>,
    /// Highest `seq` applied per event key.
    high_water: BTreeMap<String, u64>,
    /// Events skipped because their key's `seq` was already applied (a
    /// redelivery or a re-published event).
    pub redelivered: u64,
    /// Undecodable messages met by this process, not yet taken.
    undecodable: Vec<Undecodable>,
}

impl Projector {
    /// Opens the projections of a data directory (creating them).
    pub fn open(data_dir: &Path) -> Result<Projector, ProjectorError> {
        let path = data_dir.join("projections");
        let storage = |source| ProjectorError::Storage {
            path: path.display().to_string(),
            source,
        };
        let corrupt = |detail: &str| ProjectorError::Corrupt {
            path: path.display().to_string(),
            detail: detail.into(),
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
        let positions = clearing_log::store::read_positions(&tree, POS).map_err(|e| {
            ProjectorError::Corrupt {
                path: path.display().to_string(),
                detail: e.to_string(),
            }
        })?;
        let high_water = match tree.get(HW).map_err(storage)? {
            Some(v) => serde_json::from_slice(&v).map_err(|_| corrupt("high-water marks"))?,
            None => BTreeMap::new(),
        };
        Ok(Projector {
            path,
            _db: db,
            tree,
            positions,
            high_water,
            redelivered: 0,
            undecodable: Vec::new(),
        })
    }

    fn storage(&self, source: sled::Error) -> ProjectorError {
        ProjectorError::Storage {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn corrupt(&self, detail: impl Into<String>) -> ProjectorError {
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
        catch_up(log, Topic::Events, self, PROJECT_BATCH_MAX, progress)
    }

    /// Brings the projections to a cut of the log (a replay's `--until`).
    pub fn catch_up_until<L: EventLog + ?Sized>(
        &mut self,
        log: &L,
        until: &Until,
        batch_max: usize,
        events_max: u64,
        progress: impl FnMut(u64),
    ) -> Result<CatchUp, ConsumeError<ProjectorError>> {
        catch_up_until(
            log,
            Topic::Events,
            self,
            batch_max,
            until,
            events_max,
            progress,
        )
    }

    /// This store's identity, created once: names its consumer group on
    /// Kafka, so that two data dirs following the same topic never split
    /// its partitions between them. Kept outside the projected state (and
    /// so outside the digest).
    pub fn follower_id(&self) -> Result<String, ProjectorError> {
        let meta = self._db.open_tree("meta").map_err(|e| self.storage(e))?;
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
        let id: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        meta.insert(b"follower-id", id.as_bytes())
            .map_err(|e| self.storage(e))?;
        meta.flush().map_err(|e| self.storage(e))?;
        Ok(id)
    }

    fn positioned<T: serde::de::DeserializeOwned>(
        &self,
        k: &[u8],
    ) -> Result<Option<Recorded<T>>, ProjectorError> {
        match self.tree.get(k).map_err(|e| self.storage(e))? {
            None => Ok(None),
            Some(v) => {
                let p: Positioned<T> = serde_json::from_slice(&v)
                    .map_err(|e| self.corrupt(format!("{}: {e}", String::from_utf8_lossy(k))))?;
                Ok(Some(Recorded {
                    position: p.position,
                    recorded_at: p.recorded_at,
                    value: p.value,
                }))
            }
        }
    }

    /// The reconciliation run of `date` over the file with this digest.
    pub fn recon_run(
        &self,
        date: NaiveDate,
        file_sha256: &str,
    ) -> Result<Option<Recorded<ReconciliationRun>>, ProjectorError> {
        self.positioned(&recon_key("run", date, file_sha256))
    }

    /// The latest reconciliation run recorded for `date`.
    pub fn recon_latest(
        &self,
        date: NaiveDate,
    ) -> Result<Option<Recorded<ReconciliationRun>>, ProjectorError> {
        match self
            .tree
            .get(recon_latest_key(date))
            .map_err(|e| self.storage(e))?
        {
            None => Ok(None),
            Some(sha) => self.recon_run(date, &String::from_utf8_lossy(&sha)),
        }
    }

    /// Every version of a merchant's registry entry, oldest first.
    pub fn merchant_versions(
        &self,
        merchant_id: &str,
    ) -> Result<Vec<(u32, Recorded<clearing_core::registry::Merchant>)>, ProjectorError> {
        self.versions(b"merchant/", merchant_id)
    }

    /// Every version of an intermediary, oldest first.
    pub fn intermediary_versions(
        &self,
        intermediary_id: &str,
    ) -> Result<Vec<(u32, Recorded<clearing_core::registry::Intermediary>)>, ProjectorError> {
        self.versions(b"intermediary/", intermediary_id)
    }

    fn versions<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &[u8],
        id: &str,
    ) -> Result<Vec<(u32, Recorded<T>)>, ProjectorError> {
        let mut out = Vec::new();
        let prefix = key(&[prefix, id.as_bytes(), b"\0"]);
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(|e| self.storage(e))?;
            let version = k[prefix.len()..]
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| self.corrupt("registry key"))?;
            if let Some(r) = self.positioned(&k)? {
                out.push((version, r));
            }
        }
        Ok(out)
    }

    /// The breaks a run recorded, in report order.
    pub fn recon_breaks(
        &self,
        date: NaiveDate,
        file_sha256: &str,
    ) -> Result<Vec<Recorded<ReconciliationBreak>>, ProjectorError> {
        let prefix = recon_key("break", date, file_sha256);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(|e| self.storage(e))?;
            if let Some(b) = self.positioned(&k)? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Next offset to read, per partition.
    pub fn stored_positions(&self) -> &BTreeMap<u32, u64> {
        &self.positions
    }

    /// Makes what sled buffered durable.
    pub fn flush(&self) -> Result<(), ProjectorError> {
        self.tree.flush().map(|_| ()).map_err(|e| self.storage(e))
    }

    /// Settlement rows of one business date.
    pub fn settlement_rows(
        &self,
        date: NaiveDate,
    ) -> Result<Vec<(RowKey, RowDelta)>, ProjectorError> {
        let prefix = format!("row/{date}/");
        self.tree
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.storage(e))?;
                let row: RowValue =
                    serde_json::from_slice(&v).map_err(|e| self.corrupt(format!("row: {e}")))?;
                Ok((row.key, row.totals))
            })
            .collect()
    }

    /// The records of a stored segment, as `put_segments` encoded them.
    fn segment<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        v: &[u8],
        encoding: Encoding,
    ) -> Result<Vec<T>, ProjectorError> {
        let plain = lz4_flex::decompress_size_prepended(v)
            .map_err(|e| self.corrupt(format!("{what}: {e}")))?;
        match encoding {
            Encoding::Json => {
                serde_json::from_slice(&plain).map_err(|e| self.corrupt(format!("{what}: {e}")))
            }
            Encoding::Postcard => {
                postcard::from_bytes(&plain).map_err(|e| self.corrupt(format!("{what}: {e}")))
            }
        }
    }

    /// Every segment under `prefix`, in key (log) order, each decoded by
    /// `decode`, in parallel: a date's index can hold a million records.
    fn decoded_segments<T: Send>(
        &self,
        prefix: &str,
        decode: impl Fn(&[u8]) -> Result<Vec<T>, ProjectorError> + Sync,
    ) -> Result<Vec<Vec<T>>, ProjectorError> {
        use rayon::prelude::*;
        let raw = self
            .tree
            .scan_prefix(prefix.as_bytes())
            .values()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.storage(e))?;
        raw.par_iter().map(|v| decode(v)).collect()
    }

    /// The records of every JSON segment under `prefix`, in log order.
    fn segments<T: serde::de::DeserializeOwned + Send>(
        &self,
        prefix: &str,
    ) -> Result<Vec<T>, ProjectorError> {
        let decoded =
            self.decoded_segments(prefix, |v| self.segment::<T>(prefix, v, Encoding::Json))?;
        Ok(decoded.into_iter().flatten().collect())
    }

    fn recon_segment(&self, v: &[u8]) -> Result<Vec<ReconEntry>, ProjectorError> {
        self.segment("rk", v, Encoding::Postcard)
    }

    /// What reconciliation needs of every accepted record of a business
    /// date, in log order, segment by segment (decoded in parallel).
    pub fn recon_entries(&self, date: NaiveDate) -> Result<Vec<Vec<ReconEntry>>, ProjectorError> {
        self.decoded_segments(&format!("rk/{date}/"), |v| self.recon_segment(v))
    }

    /// Flagged records of one business date, in log order.
    pub fn flagged(&self, date: NaiveDate) -> Result<Vec<FlaggedTxn>, ProjectorError> {
        self.segments(&format!("risk/{date}/"))
    }

    /// The accepted records of one business date, in log order.
    pub fn txns_on(&self, date: NaiveDate) -> Result<Vec<TxnEntry>, ProjectorError> {
        self.matching_txns(&format!("txn/{date}/"), "", |_| true)
    }

    /// The records of one business date that belong to `merchant_id`: its
    /// own, and any moving money in its settlement row (a void naming its
    /// sale under another merchant id), in log order.
    pub fn merchant_txns_on(
        &self,
        date: NaiveDate,
        merchant_id: &str,
    ) -> Result<Vec<TxnEntry>, ProjectorError> {
        self.matching_txns(&format!("txn/{date}/"), merchant_id, |t| {
            t.merchant_id == merchant_id
                || t.settlement
                    .as_ref()
                    .is_some_and(|r| r.merchant_id == merchant_id)
        })
    }

    /// Every accepted record whose `txn_id`, `rrn` or `original_txn_id` is
    /// `id`, in log order per business date. A scan of the whole index
    /// that parses only the segments containing `id`: for look-ups by
    /// people, not for hot paths.
    pub fn find_txns(&self, id: &str) -> Result<Vec<TxnEntry>, ProjectorError> {
        self.matching_txns("txn/", id, |t| {
            t.txn_id == id || t.rrn == id || t.original_txn_id.as_deref() == Some(id)
        })
    }

    /// The records under `prefix` that `keep` accepts, decoding only the
    /// segments whose bytes contain `needle` (all of them when it is empty).
    fn matching_txns(
        &self,
        prefix: &str,
        needle: &str,
        keep: impl Fn(&TxnEntry) -> bool + Sync,
    ) -> Result<Vec<TxnEntry>, ProjectorError> {
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let decoded = self.decoded_segments(prefix, |v| {
            let plain = lz4_flex::decompress_size_prepended(v)
                .map_err(|e| self.corrupt(format!("txn: {e}")))?;
            if !needle.is_empty() && finder.find(&plain).is_none() {
                return Ok(Vec::new());
            }
            let items: Vec<TxnEntry> =
                postcard::from_bytes(&plain).map_err(|e| self.corrupt(format!("txn: {e}")))?;
            Ok(items.into_iter().filter(|t| keep(t)).collect())
        })?;
        Ok(decoded.into_iter().flatten().collect())
    }

    /// The undecodable messages this process met since the last call, for
    /// the caller to dead-letter. (All of them stay recorded under `bad/`.)
    pub fn take_undecodable(&mut self) -> Vec<Undecodable> {
        std::mem::take(&mut self.undecodable)
    }

    /// Events that could not be decoded: `(position, reason)`.
    pub fn undecodable(&self) -> Result<Vec<(Position, String)>, ProjectorError> {
        self.tree
            .scan_prefix(b"bad/")
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.storage(e))?;
                let p =
                    u32::from_be_bytes(k[4..8].try_into().map_err(|_| self.corrupt("bad key"))?);
                let o =
                    u64::from_be_bytes(k[8..16].try_into().map_err(|_| self.corrupt("bad key"))?);
                Ok((
                    Position {
                        partition: p,
                        offset: o,
                    },
                    String::from_utf8_lossy(&v).into_owned(),
                ))
            })
            .collect()
    }

    /// SHA-256 over the projection state: over the SHA-256 of every key and
    /// value in key order (computed in parallel), except that batch values
    /// (`txn/`, `rk/`, `risk/`) contribute each record on its own, so the
    /// digest does not depend on batch boundaries, and
    /// that the stored positions are left out: they are reported beside the
    /// digest (`stored_positions`), so that a log carrying redelivered
    /// copies of the same events yields the same state digest.
    pub fn digest(&self) -> Result<String, ProjectorError> {
        let mut state = DigestState::default();
        self.digest_leg(&mut state, u64::MAX)?;
        Ok(state.finish())
    }

    /// Goes on with a digest from where `state` stopped, over at most
    /// `bytes_max` bytes of stored values (then `state.done()` is false and
    /// another leg, on a store opened afresh, goes on: sled keeps what an
    /// open store read in memory, and a whole ledger does not fit).
    pub fn digest_leg(
        &self,
        state: &mut DigestState,
        bytes_max: u64,
    ) -> Result<(), ProjectorError> {
        use rayon::prelude::*;
        /// Stored bytes whose records are split and hashed in parallel at
        /// a time: bounds the memory of the decompressed records.
        const CHUNK_BYTES: u64 = 8 << 20;
        let iter = match &state.after {
            Some(k) => self.tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(k.as_slice()),
                std::ops::Bound::Unbounded,
            )),
            None => self.tree.iter(),
        };
        let mut read = 0u64;
        let mut chunk: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        let mut chunk_bytes = 0u64;
        let mut stopped = false;
        let mut iter = iter.peekable();
        loop {
            let next = match iter.next() {
                Some(kv) => Some(kv.map_err(|e| self.storage(e))?),
                None => None,
            };
            let flush = match &next {
                None => true,
                Some((k, v)) => {
                    if read >= bytes_max {
                        stopped = true;
                        true
                    } else {
                        let n = (k.len() + v.len()) as u64;
                        read += n;
                        chunk_bytes += n;
                        false
                    }
                }
            };
            if let (false, Some(kv)) = (flush, next) {
                chunk.push(kv);
                if chunk_bytes < CHUNK_BYTES {
                    continue;
                }
            }
            // Each stored value's records (or the value itself), hashed in
            // parallel; the record hashes then go into the digest in order.
            let hashed: Vec<Vec<[u8; 32]>> = chunk
                .par_iter()
                .map(|(k, v)| self.record_hashes(k, v))
                .collect::<Result<_, _>>()?;
            for h in hashed.iter().flatten() {
                state.hasher.update(h);
            }
            if let Some((k, _)) = chunk.last() {
                state.after = Some(k.to_vec());
            }
            chunk.clear();
            chunk_bytes = 0;
            if stopped {
                return Ok(());
            }
            if iter.peek().is_none() {
                break;
            }
        }
        state.done = true;
        Ok(())
    }

    /// The SHA-256 of each record a stored value holds, with the part of
    /// its key that does not depend on batching: a segment's records one by
    /// one (as stored: the same struct encoded by the same code), other
    /// values whole; positions none.
    fn record_hashes(&self, k: &[u8], v: &[u8]) -> Result<Vec<[u8; 32]>, ProjectorError> {
        let hash = |key: &[u8], value: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update((key.len() as u64).to_be_bytes());
            h.update(key);
            h.update((value.len() as u64).to_be_bytes());
            h.update(value);
            h.finalize().into()
        };
        if k.starts_with(POS) {
            return Ok(Vec::new());
        }
        let segment = [(&b"risk/"[..], 16), (b"rk/", 14), (b"txn/", 15)]
            .into_iter()
            .find(|(p, _)| k.starts_with(p));
        let Some((prefix, date_len)) = segment else {
            return Ok(vec![hash(k, v)]);
        };
        // `PREFIX/DATE/`
        let date_part = &k[..date_len];
        let plain = lz4_flex::decompress_size_prepended(v)
            .map_err(|e| self.corrupt(format!("segment: {e}")))?;
        let corrupt = |e: &dyn std::fmt::Display| self.corrupt(format!("segment: {e}"));
        let mut out = Vec::new();
        match prefix {
            b"risk/" => {
                let items: Vec<&serde_json::value::RawValue> =
                    serde_json::from_slice(&plain).map_err(|e| corrupt(&e))?;
                for item in items {
                    out.push(hash(date_part, item.get().as_bytes()));
                }
            }
            _ => {
                // postcard: a length, then the records back to back; each
                // record's bytes are what decoding it consumes.
                let (n, mut rest) =
                    postcard::take_from_bytes::<usize>(&plain).map_err(|e| corrupt(&e))?;
                for _ in 0..n {
                    let before = rest;
                    rest = if prefix == b"rk/" {
                        postcard::take_from_bytes::<ReconEntry>(rest)
                            .map_err(|e| corrupt(&e))?
                            .1
                    } else {
                        postcard::take_from_bytes::<TxnEntry>(rest)
                            .map_err(|e| corrupt(&e))?
                            .1
                    };
                    out.push(hash(date_part, &before[..before.len() - rest.len()]));
                }
            }
        }
        Ok(out)
    }
}

/// A digest under way (see `Projector::digest_leg`).
#[derive(Default)]
pub struct DigestState {
    hasher: Sha256,
    /// The last key hashed.
    after: Option<Vec<u8>>,
    done: bool,
}

impl DigestState {
    pub fn done(&self) -> bool {
        self.done
    }

    pub fn finish(self) -> String {
        self.hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The state changes of one batch, collected before the atomic write.
#[derive(Default)]
struct Pending {
    rows: HashMap<Vec<u8>, RowValue>,
    txns: BTreeMap<NaiveDate, Vec<TxnEntry>>,
    recon: BTreeMap<NaiveDate, Vec<ReconEntry>>,
    risk: BTreeMap<NaiveDate, Vec<FlaggedTxn>>,
    batch: sled::Batch,
    redelivered: u64,
    high_water_changed: bool,
    undecodable: Vec<Undecodable>,
}

impl Pending {
    fn txn(&mut self, position: Position, event: &Event, t: &TxnRecorded) {
        self.txns
            .entry(t.business_date)
            .or_default()
            .push(TxnEntry {
                position: position.to_string(),
                recorded_at: event.recorded_at.clone(),
                occurred_at: event.occurred_at.clone(),
                txn_id: t.txn_id.clone(),
                txn_type: t.txn_type,
                result: t.result,
                merchant_id: t.merchant_id.clone(),
                terminal_id: t.terminal_id.clone(),
                rrn: t.rrn.clone(),
                channel: t.channel,
                amount: t.amount,
                fee: t.fee,
                business_date: t.business_date,
                payout_date: t.settlement.as_ref().map(|r| r.payout_date),
                original_txn_id: t.original_txn_id.clone(),
                decline_code: t.decline_code.clone(),
                settlement: t.settlement.clone(),
                original: t.original.clone(),
            });
        let local_seconds =
            clearing_core::calendar::local_seconds_of_day(&event.occurred_at).unwrap_or(0);
        self.recon
            .entry(t.business_date)
            .or_default()
            .push(ReconEntry {
                txn_id: t.txn_id.clone(),
                merchant_id: t.merchant_id.clone(),
                terminal_id: t.terminal_id.clone(),
                rrn: t.rrn.clone(),
                txn_type: t.txn_type,
                result: t.result,
                original_txn_id: t.original_txn_id.clone(),
                amount_fen: t.amount.0,
                fee_fen: t.fee.0,
                local_seconds,
            });
        if !t.flags.is_empty() {
            self.risk
                .entry(t.business_date)
                .or_default()
                .push(FlaggedTxn {
                    txn_id: t.txn_id.clone(),
                    merchant_id: t.merchant_id.clone(),
                    terminal_id: t.terminal_id.clone(),
                    flags: t.flags.clone(),
                });
        }
        if let Some((row, delta)) = t.row_delta() {
            let totals = &mut self
                .rows
                .entry(row_key_bytes(row))
                .or_insert_with(|| RowValue {
                    key: row.clone(),
                    totals: RowDelta::default(),
                })
                .totals;
            add_delta(totals, &delta).expect("a batch's row deltas fit in i64");
        }
    }

    fn reference<T: Serialize>(
        &mut self,
        k: Vec<u8>,
        position: Position,
        event: &Event,
        value: &T,
    ) {
        let v = Positioned {
            position: position.to_string(),
            recorded_at: event.recorded_at.clone(),
            value,
        };
        self.batch
            .insert(k, serde_json::to_vec(&v).expect("reference serialises"));
    }
}

impl Handler for Projector {
    type Error = ProjectorError;

    fn positions(&self) -> BTreeMap<u32, u64> {
        self.positions.clone()
    }

    fn apply(
        &mut self,
        partition: u32,
        items: Vec<Item>,
        next_offset: u64,
    ) -> Result<(), ProjectorError> {
        let Some(first) = items.first().map(|i| i.position) else {
            return Ok(());
        };
        let mut pending = Pending::default();
        for item in items {
            let event = match item.event {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(position = %item.position, error = %e, "undecodable event recorded under bad/");
                    let k = key(&[
                        b"bad/",
                        &item.position.partition.to_be_bytes(),
                        &item.position.offset.to_be_bytes(),
                    ]);
                    pending.batch.insert(k, e.to_string().into_bytes());
                    pending.undecodable.push(Undecodable {
                        position: item.position,
                        reason: e.to_string(),
                        raw: item.raw.unwrap_or_default(),
                    });
                    continue;
                }
            };
            if event.seq > 0 {
                let hw = self.high_water.entry(event.key().to_string()).or_insert(0);
                if event.seq <= *hw {
                    pending.redelivered += 1;
                    continue;
                }
                *hw = event.seq;
                pending.high_water_changed = true;
            }
            let pos = item.position;
            match &event.body {
                EventBody::TransactionRecorded(t) => pending.txn(pos, &event, t),
                EventBody::MerchantRegistered(m) | EventBody::MerchantUpdated(m) => pending
                    .reference(
                        key(&[
                            b"merchant/",
                            m.value.merchant_id.as_bytes(),
                            b"\0",
                            &m.version.to_be_bytes(),
                        ]),
                        pos,
                        &event,
                        &m.value,
                    ),
                EventBody::IntermediaryRegistered(i) | EventBody::IntermediaryUpdated(i) => pending
                    .reference(
                        key(&[
                            b"intermediary/",
                            i.value.intermediary_id.as_bytes(),
                            b"\0",
                            &i.version.to_be_bytes(),
                        ]),
                        pos,
                        &event,
                        &i.value,
                    ),
                EventBody::FeeScheduleLoaded(f) => {
                    pending.reference(key(&[b"fees/", &f.version.to_be_bytes()]), pos, &event, f)
                }
                EventBody::RecordRejected(_) => {}
                EventBody::ReconciliationRun(r) => {
                    pending.reference(
                        recon_key("run", r.business_date, &r.file_sha256),
                        pos,
                        &event,
                        r,
                    );
                    // The latest run of a date is the one whose held pool
                    // the next date's run takes over.
                    pending
                        .batch
                        .insert(recon_latest_key(r.business_date), r.file_sha256.as_bytes());
                }
                EventBody::ReconciliationBreak(b) => {
                    pending.reference(
                        key(&[
                            &recon_key("break", b.business_date, &b.file_sha256),
                            &b.index.to_be_bytes(),
                        ]),
                        pos,
                        &event,
                        b,
                    );
                }
            }
        }
        for (k, mut row) in pending.rows.drain() {
            if let Some(old) = self.tree.get(&k).map_err(|e| self.storage(e))? {
                let old: RowValue =
                    serde_json::from_slice(&old).map_err(|e| self.corrupt(format!("row: {e}")))?;
                add_delta(&mut row.totals, &old.totals).map_err(|_| ProjectorError::Overflow {
                    key: String::from_utf8_lossy(&k).into_owned(),
                })?;
            }
            pending
                .batch
                .insert(k, serde_json::to_vec(&row).expect("row serialises"));
        }
        put_segments(
            &mut pending.batch,
            "txn",
            first,
            &pending.txns,
            Encoding::Postcard,
        );
        put_segments(
            &mut pending.batch,
            "rk",
            first,
            &pending.recon,
            Encoding::Postcard,
        );
        put_segments(
            &mut pending.batch,
            "risk",
            first,
            &pending.risk,
            Encoding::Json,
        );
        if pending.high_water_changed {
            pending.batch.insert(
                HW,
                serde_json::to_vec(&self.high_water).expect("marks serialise"),
            );
        }
        pending.batch.insert(
            clearing_log::store::position_key(POS, partition),
            &next_offset.to_be_bytes(),
        );
        self.tree
            .apply_batch(pending.batch)
            .map_err(|e| self.storage(e))?;
        self.positions.insert(partition, next_offset);
        self.redelivered += pending.redelivered;
        self.undecodable.extend(pending.undecodable);
        Ok(())
    }
}
