//! The write model: what ingest needs to decide (accepted `txn_id`s with
//! their content digests, sales with their refundable remainder, the
//! registry, the fee schedule, the last event number per key). It is a
//! projection of the ledger like any other: stored in sled at
//! `DATA_DIR/writer` with its log positions in the same atomic batch as its
//! state, and caught up from the log before any decision. A crash between
//! publishing and storing it is therefore harmless: the next run re-applies
//! the published events first.
//!
//! The state lives in memory while the process runs. It is stored as one
//! *segment* per commit — the changes of that batch — because a sled insert
//! costs several microseconds and one per record would halve ingest speed.
//! Opening replays the segments in order.
//!
//! Keys of the single tree: `pos/<partition u32 BE>` → next offset (u64 BE),
//! `seg/<segment u64 BE>` → `Segment` in postcard (an internal format,
//! compact and fast; the segments are rebuilt from the log if this build's
//! format ever changes), LZ4-compressed (see the embedded log for why),
//! `ref` → `Reference` JSON.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use clearing_consumer::{catch_up, CatchUp, ConsumeError, Handler, Item};
use clearing_core::ingest::{apply, TxnLookup, TxnState, TxnStore};
use clearing_core::registry::Reference;
use clearing_core::Event;
use clearing_log::{EventLog, Positions, Topic};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum WriteModelError {
    #[error("write model at {path}: {source}")]
    Storage { path: String, source: sled::Error },
    #[error("write model at {path} is corrupt: {detail}")]
    Corrupt { path: String, detail: String },
}

/// Events applied per batch while catching up from the log.
const CATCH_UP_BATCH_MAX: usize = 16_384;

/// One commit's changes, as read back.
#[derive(Deserialize, Default)]
struct Segment {
    txns: Vec<(String, TxnState)>,
    seqs: BTreeMap<String, u64>,
}

/// The same shape, borrowing the state to write it: no copy of each
/// changed record on the commit path (postcard encodes `&T` as `T`).
#[derive(Serialize)]
struct SegmentOut<'a> {
    txns: Vec<(&'a str, &'a TxnState)>,
    seqs: &'a BTreeMap<String, u64>,
}

#[derive(Default)]
struct Txns {
    all: HashMap<String, TxnState>,
}

impl TxnLookup for Txns {
    fn txn(&self, id: &str) -> Option<&TxnState> {
        self.all.get(id)
    }
}

/// Records which ids changed, for the next segment.
struct Tracking<'a> {
    txns: &'a mut Txns,
    changed: &'a mut Vec<String>,
}

impl TxnLookup for Tracking<'_> {
    fn txn(&self, id: &str) -> Option<&TxnState> {
        self.txns.txn(id)
    }
}

impl TxnStore for Tracking<'_> {
    fn put_txn(&mut self, id: &str, state: TxnState) {
        self.changed.push(id.to_string());
        self.txns.all.insert(id.to_string(), state);
    }

    fn txn_mut(&mut self, id: &str) -> Option<&mut TxnState> {
        let state = self.txns.all.get_mut(id)?;
        self.changed.push(id.to_string());
        Some(state)
    }
}

pub struct WriteModel {
    path: PathBuf,
    tree: sled::Tree,
    _db: sled::Db,
    pub reference: Reference,
    reference_dirty: bool,
    positions: Positions,
    txns: Txns,
    seqs: HashMap<String, u64>,
    changed_txns: Vec<String>,
    changed_seqs: BTreeMap<String, u64>,
    next_segment: u64,
}

const POS_PREFIX: &[u8] = b"pos/";
const SEG_PREFIX: &[u8] = b"seg/";
const REF_KEY: &[u8] = b"ref";

impl WriteModel {
    pub fn open(data_dir: &Path) -> Result<WriteModel, WriteModelError> {
        let path = data_dir.join("writer");
        let storage = |source| WriteModelError::Storage {
            path: path.display().to_string(),
            source,
        };
        let corrupt = |detail: String| WriteModelError::Corrupt {
            path: path.display().to_string(),
            detail,
        };
        let db = clearing_log::store::open(&path).map_err(storage)?;
        let tree = db.open_tree("state").map_err(storage)?;
        let mut reference: Reference = match tree.get(REF_KEY).map_err(storage)? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("ref: {e}")))?
            }
            None => Reference::default(),
        };
        reference.reindex();
        let positions = clearing_log::store::read_positions(&tree, POS_PREFIX)
            .map_err(|e| corrupt(e.to_string()))?;
        let mut txns = Txns::default();
        let mut seqs = HashMap::new();
        let mut next_segment = 0;
        for kv in tree.scan_prefix(SEG_PREFIX) {
            let (k, v) = kv.map_err(storage)?;
            let n = u64::from_be_bytes(
                k[SEG_PREFIX.len()..]
                    .try_into()
                    .map_err(|_| corrupt("segment key".into()))?,
            );
            let plain = lz4_flex::decompress_size_prepended(&v)
                .map_err(|e| corrupt(format!("segment {n}: {e}")))?;
            let seg: Segment =
                postcard::from_bytes(&plain).map_err(|e| corrupt(format!("segment {n}: {e}")))?;
            txns.all.extend(seg.txns);
            seqs.extend(seg.seqs);
            next_segment = n + 1;
        }
        Ok(WriteModel {
            path,
            tree,
            _db: db,
            reference,
            reference_dirty: false,
            positions,
            txns,
            seqs,
            changed_txns: Vec::new(),
            changed_seqs: BTreeMap::new(),
            next_segment,
        })
    }

    fn storage(&self, source: sled::Error) -> WriteModelError {
        WriteModelError::Storage {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Applies every event published since the stored position.
    pub fn catch_up<L: EventLog + ?Sized>(
        &mut self,
        log: &L,
    ) -> Result<CatchUp, ConsumeError<WriteModelError>> {
        catch_up(log, Topic::Events, self, CATCH_UP_BATCH_MAX, |_| {})
    }

    /// Numbers a new event within its key: one past the last of that key.
    pub fn assign_seq(&self, event: &mut Event) {
        event.seq = self.seqs.get(event.key()).copied().unwrap_or(0) + 1;
    }

    /// Folds an accepted event into the (not yet stored) state.
    pub fn apply_pending(&mut self, event: &Event) {
        if !matches!(event.body, clearing_core::EventBody::TransactionRecorded(_)) {
            self.reference_dirty = true;
        }
        let seq = self.seqs.entry(event.key().to_string()).or_insert(0);
        if event.seq > *seq {
            *seq = event.seq;
            self.changed_seqs.insert(event.key().to_string(), event.seq);
        }
        let mut store = Tracking {
            txns: &mut self.txns,
            changed: &mut self.changed_txns,
        };
        apply(&mut self.reference, &mut store, event);
    }

    /// Stores the pending state with the log positions it reflects, in one
    /// atomic sled batch.
    pub fn commit(&mut self, ends: &Positions) -> Result<(), WriteModelError> {
        let mut batch = sled::Batch::default();
        if !self.changed_txns.is_empty() || !self.changed_seqs.is_empty() {
            self.changed_txns.sort_unstable();
            self.changed_txns.dedup();
            let all = &self.txns.all;
            let seg = SegmentOut {
                txns: self
                    .changed_txns
                    .iter()
                    .map(|id| (id.as_str(), all.get(id).expect("changed txn is present")))
                    .collect(),
                seqs: &self.changed_seqs,
            };
            let bytes = postcard::to_stdvec(&seg).expect("segment serialises");
            self.changed_txns.clear();
            self.changed_seqs.clear();
            let mut k = SEG_PREFIX.to_vec();
            k.extend_from_slice(&self.next_segment.to_be_bytes());
            batch.insert(k, lz4_flex::compress_prepend_size(&bytes));
            self.next_segment += 1;
        }
        if self.reference_dirty {
            batch.insert(
                REF_KEY,
                serde_json::to_vec(&self.reference).expect("reference serialises"),
            );
            self.reference_dirty = false;
        }
        for (partition, next) in ends.iter() {
            batch.insert(
                clearing_log::store::position_key(POS_PREFIX, partition),
                &next.to_be_bytes(),
            );
        }
        self.tree.apply_batch(batch).map_err(|e| self.storage(e))?;
        self.positions.extend(ends);
        Ok(())
    }

    /// Lookup of accepted records, pending ones included.
    pub fn view(&self) -> &impl TxnLookup {
        &self.txns
    }

    /// Durably stores what sled has buffered.
    pub fn flush(&self) -> Result<(), WriteModelError> {
        self.tree.flush().map(|_| ()).map_err(|e| self.storage(e))
    }
}

impl Handler for WriteModel {
    type Error = WriteModelError;

    fn positions(&self) -> Positions {
        self.positions.clone()
    }

    fn apply(
        &mut self,
        partition: u32,
        items: Vec<Item>,
        next_offset: u64,
    ) -> Result<(), WriteModelError> {
        for item in items {
            match item.event {
                Ok(event) => self.apply_pending(&event),
                Err(e) => {
                    // Not ours to judge further: the projector records it
                    // for operators. Deciding on without it is safe, because
                    // an event we cannot read cannot have been written by
                    // this build's ingest.
                    tracing::error!(position = %item.position, error = %e, "undecodable event in the ledger");
                }
            }
        }
        self.commit(&[(partition, next_offset)].into_iter().collect())
    }
}
