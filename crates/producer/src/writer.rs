//! The one way the ledger records events.
//!
//! A `Writer` owns the write model and the log it writes to. Every change —
//! a fee schedule, a registry load, a batch of transactions, a
//! reconciliation run — goes through the same protocol:
//!
//! 1. the write model is caught up from the log (on open, and before each
//!    step that decides against it);
//! 2. decided events are *staged*: numbered within their key (`seq`) and
//!    folded into the write model's pending state, so that later decisions
//!    in the same step see them;
//! 3. `commit` appends the staged events to the events topic and waits
//!    until the log has them durably;
//! 4. only then the write model stores the changes of those events with
//!    the new log positions, in one atomic write. The next batch may be
//!    decided and staged while an append is in flight (ingest overlaps
//!    them); its changes are sealed apart and stored after its own append.
//!
//! A crash between 3 and 4 is harmless: the next open re-applies the
//! published events from the log before deciding anything. A failed commit
//! leaves the in-memory pending state void, so the writer refuses further
//! work until it is reopened.

use std::collections::BTreeMap;
use std::sync::Arc;

use clearing_consumer::ConsumeError;
use clearing_core::chain::{self, Link};
use clearing_core::ingest::TxnLookup;
use clearing_core::registry::Reference;
use clearing_core::Event;
use clearing_log::{EventLog, LogError, Position, Record, Started, Topic};

use crate::writemodel::{Sealed, WriteModel, WriteModelError};

/// Why recording failed. The cause is kept: a write-model disk error is
/// not a broker error.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The log did not acknowledge the append (broker down, disk full…).
    #[error("{0}")]
    Log(#[from] LogError),
    /// The log has the events, but the write model could not store its
    /// state; the next open catches it up from the log.
    #[error("{0}")]
    WriteModel(#[from] WriteModelError),
    #[error("catching up the write model: {0}")]
    CatchUp(#[from] ConsumeError<WriteModelError>),
    /// An earlier commit of this writer failed: its pending state is void.
    #[error("an earlier write failed; reopen the ledger before recording more")]
    Poisoned,
}

impl WriteError {
    /// Whether running the same step again (after the cause is fixed) can
    /// complete it.
    pub fn retryable(&self) -> bool {
        match self {
            WriteError::Log(e) => e.retryable(),
            WriteError::WriteModel(_) | WriteError::CatchUp(_) | WriteError::Poisoned => false,
        }
    }
}

pub struct Writer {
    log: Arc<dyn EventLog>,
    wm: WriteModel,
    staged: Vec<Event>,
    /// An append started by `start_commit` and not yet settled: the chain
    /// hash of each record, and the write model's changes it carries.
    in_flight: Option<(Vec<[u8; 32]>, Sealed)>,
    poisoned: bool,
}

/// An event as a log record: its encoding under its key, with its type,
/// schema version and id also as headers, so that consumers can route or
/// skip messages without decoding them.
pub fn to_record(e: &Event) -> Record {
    record_with(e, e.encode())
}

/// The record of `e` with `payload` as its bytes.
fn record_with(e: &Event, payload: Vec<u8>) -> Record {
    Record {
        key: e.key().to_string(),
        payload,
        headers: vec![
            ("type", e.type_name().to_string()),
            ("schema_version", e.schema_version().to_string()),
            ("event_id", e.event_id.clone()),
        ],
        partition: None,
    }
}

/// Appends dead letters to the rejected topic. They carry no write-model
/// state: every reader that finds the same fault writes the same id.
pub fn dead_letter(log: &dyn EventLog, events: &[Event]) -> Result<(), LogError> {
    if events.is_empty() {
        return Ok(());
    }
    let records: Vec<Record> = events.iter().map(to_record).collect();
    log.append(Topic::Rejected, &records).map(|_| ())
}

impl Writer {
    /// Opens the write model of `data_dir` and catches it up with `log`.
    pub fn open(log: Arc<dyn EventLog>, data_dir: &std::path::Path) -> Result<Writer, WriteError> {
        let wm = WriteModel::open(data_dir)?;
        let mut w = Writer {
            log,
            wm,
            staged: Vec::new(),
            in_flight: None,
            poisoned: false,
        };
        w.catch_up()?;
        Ok(w)
    }

    /// The log this writer records on.
    pub fn log(&self) -> &dyn EventLog {
        &*self.log
    }

    /// Applies what the log holds beyond the stored position (another
    /// process of this ledger may have recorded since).
    pub fn catch_up(&mut self) -> Result<(), WriteError> {
        self.usable()?;
        self.wm.catch_up(&*self.log)?;
        Ok(())
    }

    /// Reference data as recorded, staged events included.
    pub fn reference(&self) -> &Reference {
        &self.wm.reference
    }

    /// Reads the accepted records, if not read yet: before `txns` and
    /// before staging a transaction.
    pub fn load_txns(&mut self) -> Result<(), WriteError> {
        self.wm.load_txns()?;
        Ok(())
    }

    /// Whether the accepted records are read (`load_txns`).
    pub fn txns_loaded(&self) -> bool {
        self.wm.txns_loaded()
    }

    /// Accepted records by `txn_id`, staged ones included (after
    /// `load_txns`).
    pub fn txns(&self) -> &impl TxnLookup {
        self.wm.view()
    }

    /// Numbers `event` within its key and folds it into the pending state.
    /// An event of a multi-event step (a reconciliation run's breaks and
    /// summary, …) already recorded — by an earlier run of the same step
    /// that was stopped half-way — is not staged again: such steps are
    /// recorded exactly once under kills. An append may be in flight: what
    /// is staged now builds on it and is committed after it.
    pub fn stage(&mut self, mut event: Event) {
        if self.wm.recorded_step(&event.event_id) {
            return;
        }
        self.wm.assign_seq(&mut event);
        self.wm.apply_pending(&event);
        self.staged.push(event);
    }

    /// Events staged and not yet committed.
    pub fn staged(&self) -> usize {
        self.staged.len()
    }

    /// Appends the staged events, waits for the log's acknowledgement, and
    /// stores the write model at the new log end. Nothing staged: nothing
    /// happens.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        self.settle()?;
        self.start_commit()?;
        self.settle()
    }

    /// Hands the staged events to the log and returns before it has
    /// acknowledged them when it can work meanwhile (a broker's round trip,
    /// the embedded log's write and sync): `settle` waits, then stores the
    /// write model's changes of these events alone. The next batch may be
    /// decided and staged meanwhile (ingest does), and is committed after
    /// this one is settled.
    pub fn start_commit(&mut self) -> Result<(), WriteError> {
        self.usable()?;
        assert!(self.in_flight.is_none(), "one append in flight at a time");
        if self.staged.is_empty() {
            return Ok(());
        }
        let result = self.start_staged();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Waits for the append `start_commit` left in flight and stores the
    /// write model at the new log end. Nothing in flight: nothing happens.
    pub fn settle(&mut self) -> Result<(), WriteError> {
        self.usable()?;
        let Some((heads, sealed)) = self.in_flight.take() else {
            return Ok(());
        };
        let result = self
            .log
            .finish_append(Topic::Events)
            .map_err(WriteError::from)
            .and_then(|positions| self.store(&positions, heads, sealed));
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn start_staged(&mut self) -> Result<(), WriteError> {
        let (records, heads) = self.seal_staged()?;
        let sealed = self.wm.seal();
        let started = self.log.start_append(Topic::Events, records)?;
        self.staged.clear();
        match started {
            Started::Done(positions) => self.store(&positions, heads, sealed),
            Started::InFlight => {
                self.in_flight = Some((heads, sealed));
                Ok(())
            }
        }
    }

    /// Stores the write model after an acknowledged append: per partition,
    /// past its last record, and that record's link (every staged record
    /// carries its chain hash).
    fn store(
        &mut self,
        positions: &[Position],
        heads: Vec<[u8; 32]>,
        sealed: Sealed,
    ) -> Result<(), WriteError> {
        let mut tips: BTreeMap<u32, (u64, Link)> = BTreeMap::new();
        for (p, hash) in positions.iter().zip(heads) {
            let link = Link {
                hash,
                carried: true,
            };
            let tip = tips.entry(p.partition).or_insert((0, link));
            if p.offset + 1 >= tip.0 {
                *tip = (p.offset + 1, link);
            }
        }
        self.wm.commit_sealed(sealed, &tips)?;
        Ok(())
    }

    /// The staged events as records, each chained after its partition's
    /// last record (SPEC §15): encoded and digested in parallel, then the
    /// chain threaded through them in order. With each record, the chain
    /// hash it carries.
    fn seal_staged(&mut self) -> Result<(Vec<Record>, Vec<[u8; 32]>), WriteError> {
        use rayon::prelude::*;
        let encoded: Vec<(Vec<u8>, [u8; 32])> = self
            .staged
            .par_iter()
            .with_min_len(256)
            .map(|e| {
                let canonical = e.encode();
                let digest = chain::digest(&canonical);
                (canonical, digest)
            })
            .collect();
        let mut records = Vec::with_capacity(encoded.len());
        let mut heads = Vec::with_capacity(encoded.len());
        for (e, (canonical, digest)) in self.staged.iter().zip(encoded) {
            let partition = self.log.partition_for(Topic::Events, e.key())?;
            let (payload, head) = chain::seal(&canonical, &digest, &self.wm.head(partition));
            self.wm.set_pending_head(partition, head);
            let mut r = record_with(e, payload);
            r.partition = Some(partition);
            records.push(r);
            heads.push(head);
        }
        Ok((records, heads))
    }

    /// Appends dead letters to the rejected topic.
    pub fn dead_letter(&self, events: &[Event]) -> Result<(), WriteError> {
        self.usable()?;
        dead_letter(&*self.log, events)?;
        Ok(())
    }

    /// Makes the write model's stored state durable.
    pub fn flush(&self) -> Result<(), WriteError> {
        self.wm.flush()?;
        Ok(())
    }

    fn usable(&self) -> Result<(), WriteError> {
        if self.poisoned {
            Err(WriteError::Poisoned)
        } else {
            Ok(())
        }
    }
}
