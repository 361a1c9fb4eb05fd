//! The write model: what ingest needs to decide (accepted `txn_id`s with
//! their content digests, sales with their refundable remainder, the
//! registry, the fee schedule). It is itself a projection of the ledger,
//! stored in sled at `DATA_DIR/writer` with its log positions in the same
//! atomic batch as its state, and caught up from the log before any
//! decision. A crash between publishing and storing it is therefore
//! harmless: the next run re-applies the published events first.
//!
//! Keys of the single tree: `pos/<partition u32 BE>` → next offset (u64 BE),
//! `txn/<txn_id>` → `TxnState` JSON, `ref` → `Reference` JSON,
//! `bad/<partition>/<offset>` → why an event could not be decoded.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use clearing_consumer::{catch_up, CatchUp, ConsumeError, Handler, Item, BATCH_EVENTS_MAX};
use clearing_core::ingest::{apply, TxnLookup, TxnState, TxnStore};
use clearing_core::registry::Reference;
use clearing_core::Event;
use clearing_log::{EventLog, Topic};

#[derive(Debug, thiserror::Error)]
pub enum WriteModelError {
    #[error("write model at {path}: {source}")]
    Storage { path: String, source: sled::Error },
    #[error("write model at {path} is corrupt: {detail}")]
    Corrupt { path: String, detail: String },
}

pub struct WriteModel {
    path: PathBuf,
    tree: sled::Tree,
    _db: sled::Db,
    pub reference: Reference,
    reference_dirty: bool,
    positions: BTreeMap<u32, u64>,
    /// Changes not yet stored: decided in this batch, or read from the log
    /// and not yet committed.
    dirty: HashMap<String, TxnState>,
}

const POS_PREFIX: &[u8] = b"pos/";
const TXN_PREFIX: &[u8] = b"txn/";
const REF_KEY: &[u8] = b"ref";

fn txn_key(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(TXN_PREFIX.len() + id.len());
    k.extend_from_slice(TXN_PREFIX);
    k.extend_from_slice(id.as_bytes());
    k
}

fn pos_key(partition: u32) -> Vec<u8> {
    let mut k = POS_PREFIX.to_vec();
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

impl WriteModel {
    pub fn open(data_dir: &Path) -> Result<WriteModel, WriteModelError> {
        let path = data_dir.join("writer");
        let storage = |source| WriteModelError::Storage { path: path.display().to_string(), source };
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(64 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(storage)?;
        let tree = db.open_tree("state").map_err(storage)?;
        let corrupt = |detail: String| WriteModelError::Corrupt { path: path.display().to_string(), detail };
        let mut reference: Reference = match tree.get(REF_KEY).map_err(storage)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("ref: {e}")))?,
            None => Reference::default(),
        };
        reference.reindex();
        let mut positions = BTreeMap::new();
        for kv in tree.scan_prefix(POS_PREFIX) {
            let (k, v) = kv.map_err(storage)?;
            let p = u32::from_be_bytes(k[POS_PREFIX.len()..].try_into().map_err(|_| corrupt("position key".into()))?);
            let o = u64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt("position value".into()))?);
            positions.insert(p, o);
        }
        Ok(WriteModel {
            path,
            tree,
            _db: db,
            reference,
            reference_dirty: false,
            positions,
            dirty: HashMap::new(),
        })
    }

    fn storage(&self, source: sled::Error) -> WriteModelError {
        WriteModelError::Storage { path: self.path.display().to_string(), source }
    }

    /// Applies every event published since the stored position.
    pub fn catch_up<L: EventLog + ?Sized>(&mut self, log: &L) -> Result<CatchUp, ConsumeError<WriteModelError>> {
        catch_up(log, Topic::Events, self, BATCH_EVENTS_MAX, |_| {})
    }

    /// Folds an accepted event into the (not yet stored) state.
    pub fn apply_pending(&mut self, event: &Event) {
        if !matches!(event.body, clearing_core::EventBody::TransactionRecorded(_)) {
            self.reference_dirty = true;
        }
        let mut store = Store { dirty: &mut self.dirty, tree: &self.tree };
        apply(&mut self.reference, &mut store, event);
    }

    /// Stores the pending state with the log position it reflects, in one
    /// atomic sled batch.
    pub fn commit(&mut self, partition: u32, next_offset: u64) -> Result<(), WriteModelError> {
        let mut batch = sled::Batch::default();
        for (id, state) in self.dirty.drain() {
            batch.insert(txn_key(&id), serde_json::to_vec(&state).expect("state serialises"));
        }
        if self.reference_dirty {
            batch.insert(REF_KEY, serde_json::to_vec(&self.reference).expect("reference serialises"));
            self.reference_dirty = false;
        }
        batch.insert(pos_key(partition), &next_offset.to_be_bytes());
        self.tree.apply_batch(batch).map_err(|e| self.storage(e))?;
        self.positions.insert(partition, next_offset);
        Ok(())
    }

    /// Lookup of accepted records, pending ones included.
    pub fn view(&self) -> View<'_> {
        View { dirty: &self.dirty, tree: &self.tree }
    }

    pub fn position(&self, partition: u32) -> u64 {
        self.positions.get(&partition).copied().unwrap_or(0)
    }

    /// Durably stores what sled has buffered.
    pub fn flush(&self) -> Result<(), WriteModelError> {
        self.tree.flush().map(|_| ()).map_err(|e| self.storage(e))
    }
}

impl Handler for WriteModel {
    type Error = WriteModelError;

    fn positions(&self) -> BTreeMap<u32, u64> {
        self.positions.clone()
    }

    fn apply(&mut self, partition: u32, items: Vec<Item>, next_offset: u64) -> Result<(), WriteModelError> {
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
        self.commit(partition, next_offset)
    }
}

fn lookup(dirty: &HashMap<String, TxnState>, tree: &sled::Tree, id: &str) -> Option<TxnState> {
    if let Some(s) = dirty.get(id) {
        return Some(s.clone());
    }
    // A storage error here would silently turn a duplicate into a new
    // record; it must stop the process instead.
    let bytes = tree.get(txn_key(id)).expect("write model storage is readable")?;
    Some(serde_json::from_slice(&bytes).expect("write model txn state decodes"))
}

pub struct View<'a> {
    dirty: &'a HashMap<String, TxnState>,
    tree: &'a sled::Tree,
}

impl TxnLookup for View<'_> {
    fn txn(&self, id: &str) -> Option<TxnState> {
        lookup(self.dirty, self.tree, id)
    }
}

struct Store<'a> {
    dirty: &'a mut HashMap<String, TxnState>,
    tree: &'a sled::Tree,
}

impl TxnLookup for Store<'_> {
    fn txn(&self, id: &str) -> Option<TxnState> {
        lookup(self.dirty, self.tree, id)
    }
}

impl TxnStore for Store<'_> {
    fn put_txn(&mut self, id: &str, state: TxnState) {
        self.dirty.insert(id.to_string(), state);
    }
}
