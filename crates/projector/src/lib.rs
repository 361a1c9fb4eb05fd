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
//! | `row/` | `DATE/MERCHANT\0CLEARING\0INTERMEDIARY\0PAYOUT` | settlement row totals |
//! | `txn/` | txn id | `TxnEntry`: what the ledger holds of one record |
//! | `rrn/` | `RRN\0TXN_ID` | empty: lookup by retrieval reference number |
//! | `rel/` | `ORIGINAL\0TXN_ID` | type of a void/reversal/refund naming a sale |
//! | `risk/` | `DATE/TXN_ID` | flagged record |
//! | `merchant/` | `MERCHANT\0VERSION (u32 BE)` | registry entry with its position |
//! | `fees/` | version (u32 BE) | fee schedule with its position |
//! | `bad/` | partition, offset (BE) | why an event could not be decoded |
//!
//! Every value is a function of the events alone, and additive values
//! (rows) commute, so two directories that applied the same events hold
//! byte-identical trees whatever the batch sizes or partition interleaving:
//! `digest` hashes the tree in key order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clearing_consumer::{catch_up, CatchUp, ConsumeError, Handler, Item, BATCH_EVENTS_MAX};
use clearing_core::events::{RowDelta, RowKey, TxnRecorded};
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

/// What the projection keeps of one accepted record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnEntry {
    pub event_id: String,
    pub event_type: String,
    /// `PARTITION:OFFSET` of the event.
    pub position: String,
    pub recorded_at: String,
    pub occurred_at: String,
    pub txn_type: TxnType,
    pub result: TxnResult,
    pub merchant_id: String,
    pub terminal_id: String,
    pub rrn: String,
    pub channel: Channel,
    pub amount: Fen,
    pub fee: Fen,
    pub business_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_txn_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RowValue {
    key: RowKey,
    totals: RowDelta,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Positioned<T> {
    position: String,
    recorded_at: String,
    value: T,
}

const POS: &[u8] = b"pos/";

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

pub struct Projector {
    path: PathBuf,
    _db: sled::Db,
    tree: sled::Tree,
    positions: BTreeMap<u32, u64>,
    /// Events skipped because their id was already applied (a redelivery or
    /// a re-published event).
    pub redelivered: u64,
}

impl Projector {
    /// Opens the projections of a data directory (creating them).
    pub fn open(data_dir: &Path) -> Result<Projector, ProjectorError> {
        let path = data_dir.join("projections");
        let storage = |source| ProjectorError::Storage { path: path.display().to_string(), source };
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(64 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(storage)?;
        let tree = db.open_tree("state").map_err(storage)?;
        let mut positions = BTreeMap::new();
        for kv in tree.scan_prefix(POS) {
            let (k, v) = kv.map_err(storage)?;
            let corrupt = || ProjectorError::Corrupt { path: path.display().to_string(), detail: "position entry".into() };
            let p = u32::from_be_bytes(k[POS.len()..].try_into().map_err(|_| corrupt())?);
            let o = u64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt())?);
            positions.insert(p, o);
        }
        Ok(Projector { path, _db: db, tree, positions, redelivered: 0 })
    }

    fn storage(&self, source: sled::Error) -> ProjectorError {
        ProjectorError::Storage { path: self.path.display().to_string(), source }
    }

    fn corrupt(&self, detail: impl Into<String>) -> ProjectorError {
        ProjectorError::Corrupt { path: self.path.display().to_string(), detail: detail.into() }
    }

    /// Brings the projections to the end of the log.
    pub fn catch_up<L: EventLog + ?Sized>(
        &mut self,
        log: &L,
        progress: impl FnMut(u64),
    ) -> Result<CatchUp, ConsumeError<ProjectorError>> {
        catch_up(log, Topic::Events, self, BATCH_EVENTS_MAX, progress)
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
    pub fn settlement_rows(&self, date: NaiveDate) -> Result<Vec<(RowKey, RowDelta)>, ProjectorError> {
        let prefix = format!("row/{date}/");
        self.tree
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.storage(e))?;
                let row: RowValue = serde_json::from_slice(&v).map_err(|e| self.corrupt(format!("row: {e}")))?;
                Ok((row.key, row.totals))
            })
            .collect()
    }

    /// Flagged records of one business date.
    pub fn flagged(&self, date: NaiveDate) -> Result<Vec<FlaggedTxn>, ProjectorError> {
        let prefix = format!("risk/{date}/");
        self.tree
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.storage(e))?;
                serde_json::from_slice(&v).map_err(|e| self.corrupt(format!("risk: {e}")))
            })
            .collect()
    }

    /// What the ledger holds of one record.
    pub fn txn(&self, txn_id: &str) -> Result<Option<TxnEntry>, ProjectorError> {
        match self.tree.get(key(&[b"txn/", txn_id.as_bytes()])).map_err(|e| self.storage(e))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| self.corrupt(format!("txn: {e}"))),
        }
    }

    /// The records carrying a retrieval reference number.
    pub fn txn_ids_by_rrn(&self, rrn: &str) -> Result<Vec<String>, ProjectorError> {
        let prefix = key(&[b"rrn/", rrn.as_bytes(), b"\0"]);
        self.tree
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, _) = kv.map_err(|e| self.storage(e))?;
                Ok(String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            })
            .collect()
    }

    /// The voids, reversals and refunds that name a sale: `(txn_id, type)`.
    pub fn related(&self, original: &str) -> Result<Vec<(String, String)>, ProjectorError> {
        let prefix = key(&[b"rel/", original.as_bytes(), b"\0"]);
        self.tree
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.storage(e))?;
                Ok((String::from_utf8_lossy(&k[prefix.len()..]).into_owned(), String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }

    /// Events that could not be decoded: `(position, reason)`.
    pub fn undecodable(&self) -> Result<Vec<(Position, String)>, ProjectorError> {
        self.tree
            .scan_prefix(b"bad/")
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.storage(e))?;
                let p = u32::from_be_bytes(k[4..8].try_into().map_err(|_| self.corrupt("bad key"))?);
                let o = u64::from_be_bytes(k[8..16].try_into().map_err(|_| self.corrupt("bad key"))?);
                Ok((Position { partition: p, offset: o }, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }

    /// SHA-256 over the whole projection state in key order (each key and
    /// value length-prefixed), positions included: equal for any two
    /// directories that applied the same events.
    pub fn digest(&self) -> Result<String, ProjectorError> {
        let mut h = Sha256::new();
        for kv in self.tree.iter() {
            let (k, v) = kv.map_err(|e| self.storage(e))?;
            h.update((k.len() as u64).to_be_bytes());
            h.update(&k);
            h.update((v.len() as u64).to_be_bytes());
            h.update(&v);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// The state changes of one batch, collected before the atomic write.
#[derive(Default)]
struct Pending {
    rows: HashMap<Vec<u8>, RowValue>,
    txns: HashSet<String>,
    batch: sled::Batch,
    redelivered: u64,
}

impl Pending {
    fn txn(&mut self, tree: &sled::Tree, position: Position, event: &Event, t: &TxnRecorded) -> Result<(), sled::Error> {
        let txn_key = key(&[b"txn/", t.txn_id.as_bytes()]);
        // Deterministic event ids: a txn id is recorded by exactly one
        // event, so an entry already present means this is a redelivery.
        if self.txns.contains(&t.txn_id) || tree.contains_key(&txn_key)? {
            self.redelivered += 1;
            return Ok(());
        }
        self.txns.insert(t.txn_id.clone());
        let entry = TxnEntry {
            event_id: event.event_id.clone(),
            event_type: event.type_name().to_string(),
            position: position.to_string(),
            recorded_at: event.recorded_at.clone(),
            occurred_at: event.occurred_at.clone(),
            txn_type: t.txn_type,
            result: t.result,
            merchant_id: t.merchant_id.clone(),
            terminal_id: t.terminal_id.clone(),
            rrn: t.rrn.clone(),
            channel: t.channel,
            amount: t.amount,
            fee: t.fee,
            business_date: t.business_date,
            payout_date: t.payout_date,
            original_txn_id: t.original_txn_id.clone(),
        };
        self.batch.insert(txn_key, serde_json::to_vec(&entry).expect("entry serialises"));
        self.batch.insert(key(&[b"rrn/", t.rrn.as_bytes(), b"\0", t.txn_id.as_bytes()]), &[][..]);
        if let Some(original) = &t.original_txn_id {
            self.batch.insert(
                key(&[b"rel/", original.as_bytes(), b"\0", t.txn_id.as_bytes()]),
                t.txn_type.as_str().as_bytes(),
            );
        }
        if !t.flags.is_empty() {
            let flagged = FlaggedTxn {
                txn_id: t.txn_id.clone(),
                merchant_id: t.merchant_id.clone(),
                terminal_id: t.terminal_id.clone(),
                flags: t.flags.clone(),
            };
            self.batch.insert(
                format!("risk/{}/{}", t.business_date, t.txn_id).into_bytes(),
                serde_json::to_vec(&flagged).expect("flag serialises"),
            );
        }
        if let Some(effect) = &t.settlement {
            let k = row_key_bytes(&effect.row);
            let row = self
                .rows
                .entry(k)
                .or_insert_with(|| RowValue { key: effect.row.clone(), totals: RowDelta::default() });
            add_delta(&mut row.totals, &effect.delta).expect("a batch's row deltas fit in i64");
        }
        Ok(())
    }

    fn reference<T: Serialize>(&mut self, k: Vec<u8>, position: Position, event: &Event, value: &T) {
        let v = Positioned { position: position.to_string(), recorded_at: event.recorded_at.clone(), value };
        self.batch.insert(k, serde_json::to_vec(&v).expect("reference serialises"));
    }
}

impl Handler for Projector {
    type Error = ProjectorError;

    fn positions(&self) -> BTreeMap<u32, u64> {
        self.positions.clone()
    }

    fn apply(&mut self, partition: u32, items: Vec<Item>, next_offset: u64) -> Result<(), ProjectorError> {
        let mut pending = Pending::default();
        for item in items {
            let event = match item.event {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(position = %item.position, error = %e, "undecodable event recorded under bad/");
                    let k = key(&[b"bad/", &item.position.partition.to_be_bytes(), &item.position.offset.to_be_bytes()]);
                    pending.batch.insert(k, e.to_string().into_bytes());
                    continue;
                }
            };
            let pos = item.position;
            match &event.body {
                EventBody::TransactionRecorded(t) => {
                    pending.txn(&self.tree, pos, &event, t).map_err(|e| self.storage(e))?
                }
                EventBody::MerchantRegistered(m) | EventBody::MerchantUpdated(m) => pending.reference(
                    key(&[b"merchant/", m.value.merchant_id.as_bytes(), b"\0", &m.version.to_be_bytes()]),
                    pos,
                    &event,
                    &m.value,
                ),
                EventBody::IntermediaryRegistered(i) | EventBody::IntermediaryUpdated(i) => pending.reference(
                    key(&[b"intermediary/", i.value.intermediary_id.as_bytes(), b"\0", &i.version.to_be_bytes()]),
                    pos,
                    &event,
                    &i.value,
                ),
                EventBody::FeeScheduleLoaded(f) => {
                    pending.reference(key(&[b"fees/", &f.version.to_be_bytes()]), pos, &event, f)
                }
                EventBody::RecordRejected(_) => {}
            }
        }
        for (k, mut row) in pending.rows.drain() {
            if let Some(old) = self.tree.get(&k).map_err(|e| self.storage(e))? {
                let old: RowValue = serde_json::from_slice(&old).map_err(|e| self.corrupt(format!("row: {e}")))?;
                add_delta(&mut row.totals, &old.totals)
                    .map_err(|_| ProjectorError::Overflow { key: String::from_utf8_lossy(&k).into_owned() })?;
            }
            pending.batch.insert(k, serde_json::to_vec(&row).expect("row serialises"));
        }
        pending.batch.insert(key(&[POS, &partition.to_be_bytes()]), &next_offset.to_be_bytes());
        self.tree.apply_batch(pending.batch).map_err(|e| self.storage(e))?;
        self.positions.insert(partition, next_offset);
        self.redelivered += pending.redelivered;
        Ok(())
    }
}
