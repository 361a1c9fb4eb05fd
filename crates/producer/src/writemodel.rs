//! The write model: what ingest needs to decide (accepted `txn_id`s with
//! their content digests, sales with their refundable remainder, the
//! registry, the fee schedule, the last event number per key, the ids of
//! recorded multi-event steps, the chain head of each partition). It is a
//! projection of the ledger like any other, caught up from the log before
//! any decision, and stored with the log positions it reflects.
//!
//! It is stored in `DATA_DIR/writer/state.frames`, a frame file (see
//! `clearing_log::frames`): one append per commit — the transactions that
//! batch changed in a frame of their own, then a frame of the rest of its
//! changes with the new positions — synced before the commit returns,
//! durable as a whole or not at all. Opening replays the frames in order,
//! except the transactions' frames: they are read on the first step that
//! decides on transactions (ingest), so a reconciliation, a fee load or a
//! payout does not decode every transaction ever accepted.
//! A crash between publishing and committing is harmless: the next run
//! re-applies the published events from the log first.
//!
//! The write model can always be rebuilt from the log: delete
//! `DATA_DIR/writer`. One written by an earlier build (in sled, or of
//! another format) is rebuilt so, on open.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use clearing_consumer::{catch_up, check_tips, CatchUp, ConsumeError, Handler, Item, Tip};
use clearing_core::chain::{Link, GENESIS};
use clearing_core::ingest::{apply, TxnLookup, TxnState, TxnStore};
use clearing_core::registry::Reference;
use clearing_core::{Event, EventBody};
use clearing_log::frames::{DirLock, FrameError, FrameFile, FrameInfo};
use clearing_log::{EventLog, Positions, Topic};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum WriteModelError {
    #[error("write model: {0}")]
    File(String),
    #[error("write model at {path} is corrupt: {detail} (delete it to rebuild it from the log)")]
    Corrupt { path: String, detail: String },
    #[error("{0}")]
    Tip(#[from] clearing_consumer::TipError),
}

fn frame_err(e: FrameError) -> WriteModelError {
    match e {
        FrameError::Corrupt { path, at, detail } => WriteModelError::Corrupt {
            path,
            detail: format!("at byte {at}: {detail}"),
        },
        other => WriteModelError::File(other.to_string()),
    }
}

/// Events applied per batch while catching up from the log.
const CATCH_UP_BATCH_MAX: usize = 16_384;

/// The layout of the stored state. Raise it when a change means state
/// written by an earlier version must be rebuilt from the log.
/// 1: frame file (earlier builds kept the write model in sled).
/// 2: a commit's transactions in a frame of their own (`TXNS_FRAME`).
const FORMAT: u32 = 2;

/// Frame kinds of `state.frames`.
const FORMAT_FRAME: u8 = 1;
const COMMIT_FRAME: u8 = 2;
/// A commit's changed transactions (LZ4 postcard `Vec<(txn_id, TxnState)>`),
/// in the same append as, and just before, its `COMMIT_FRAME`.
const TXNS_FRAME: u8 = 3;

/// Where the write model stands on a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stand {
    next: u64,
    /// The link of the last record applied.
    link: [u8; 32],
    carried: bool,
    /// The partition's chain hash after it.
    head: [u8; 32],
}

/// One commit's changes but its transactions, as stored (postcard, LZ4).
#[derive(Serialize, Deserialize, Default)]
struct Commit {
    stands: Vec<(u32, Stand)>,
    seqs: Vec<(String, u64)>,
    /// Ids of events recorded by multi-event steps (reconciliation runs…).
    steps: Vec<String>,
    /// The reference data, when it changed (JSON).
    reference: Option<String>,
}

#[derive(Default)]
struct Txns {
    all: HashMap<String, TxnState>,
    /// Transaction frames not read yet, in file order: until they are,
    /// `all` is not to be consulted (see `WriteModel::load_txns`).
    unread: Vec<FrameInfo>,
}

impl TxnLookup for Txns {
    fn txn(&self, id: &str) -> Option<&TxnState> {
        self.all.get(id)
    }
}

/// Records which ids changed, for the next commit.
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
    file: FrameFile,
    _lock: DirLock,
    pub reference: Reference,
    reference_dirty: bool,
    stands: BTreeMap<u32, Stand>,
    txns: Txns,
    seqs: HashMap<String, u64>,
    steps: HashSet<String>,
    changed_txns: Vec<String>,
    changed_seqs: BTreeMap<String, u64>,
    changed_steps: Vec<String>,
    /// Chain heads of the pending (staged) events, per partition.
    pending_heads: BTreeMap<u32, [u8; 32]>,
    /// Whether the stored positions were checked against the log.
    checked: bool,
}

impl WriteModel {
    pub fn open(data_dir: &Path) -> Result<WriteModel, WriteModelError> {
        let dir = data_dir.join("writer");
        let lock = DirLock::acquire(&dir).map_err(frame_err)?;
        rebuild_if_foreign(&dir)?;
        let path = dir.join("state.frames");
        let (file, frames) = FrameFile::open(&path, 0).map_err(frame_err)?;
        let mut wm = WriteModel {
            path: path.clone(),
            file,
            _lock: lock,
            reference: Reference::default(),
            reference_dirty: false,
            stands: BTreeMap::new(),
            txns: Txns::default(),
            seqs: HashMap::new(),
            steps: HashSet::new(),
            changed_txns: Vec::new(),
            changed_seqs: BTreeMap::new(),
            changed_steps: Vec::new(),
            pending_heads: BTreeMap::new(),
            checked: false,
        };
        let infos: Vec<_> = frames.iter().map(|f| f.0).collect();
        let ours = match infos.first() {
            None => false,
            Some(first) => {
                first.kind == FORMAT_FRAME
                    && wm.file.checked(*first).map_err(frame_err)? == FORMAT.to_be_bytes()
            }
        };
        if ours {
            wm.replay(&infos[1..])?;
        } else {
            if !infos.is_empty() {
                // Of another format: start over; the catch-up rebuilds it.
                tracing::warn!(path = %path.display(), "write model of another format; rebuilding it from the log");
                drop(wm.file);
                std::fs::remove_file(&path)
                    .map_err(|e| WriteModelError::File(format!("{}: {e}", path.display())))?;
                wm.file = FrameFile::open(&path, 0).map_err(frame_err)?.0;
            }
            wm.file
                .append(&[(FORMAT_FRAME, &FORMAT.to_be_bytes())])
                .map_err(frame_err)?;
        }
        wm.reference.reindex();
        Ok(wm)
    }

    /// Folds the stored commits in order.
    fn replay(&mut self, infos: &[FrameInfo]) -> Result<(), WriteModelError> {
        let corrupt = |detail: String| WriteModelError::Corrupt {
            path: self.path.display().to_string(),
            detail,
        };
        let mut reference = None;
        for &info in infos {
            match info.kind {
                TXNS_FRAME => {
                    self.txns.unread.push(info);
                    continue;
                }
                COMMIT_FRAME => {}
                other => {
                    return Err(corrupt(format!(
                        "frame of unknown kind {other} at byte {}",
                        info.at
                    )))
                }
            }
            let c: Commit = self.read_frame(info, "commit")?;
            self.stands.extend(c.stands);
            self.seqs.extend(c.seqs);
            self.steps.extend(c.steps);
            if c.reference.is_some() {
                reference = c.reference;
            }
        }
        if let Some(r) = reference {
            self.reference =
                serde_json::from_str(&r).map_err(|e| corrupt(format!("reference: {e}")))?;
        }
        Ok(())
    }

    /// Reads the transactions' frames, if not read yet: every step that
    /// decides on transactions or folds one in calls it first.
    pub fn load_txns(&mut self) -> Result<(), WriteModelError> {
        let unread = std::mem::take(&mut self.txns.unread);
        for info in unread {
            let txns: Vec<(String, TxnState)> = self.read_frame(info, "transactions")?;
            self.txns.all.extend(txns);
        }
        Ok(())
    }

    /// A stored frame's LZ4 postcard payload, checksum verified; `what`
    /// names it in the error.
    fn read_frame<T: serde::de::DeserializeOwned>(
        &self,
        info: FrameInfo,
        what: &str,
    ) -> Result<T, WriteModelError> {
        let corrupt = |e: &dyn std::fmt::Display| WriteModelError::Corrupt {
            path: self.path.display().to_string(),
            detail: format!("{what} at byte {}: {e}", info.at),
        };
        let payload = self.file.checked(info).map_err(frame_err)?;
        let plain = lz4_flex::decompress_size_prepended(&payload).map_err(|e| corrupt(&e))?;
        postcard::from_bytes(&plain).map_err(|e| corrupt(&e))
    }

    /// Whether the transactions' frames are read (`load_txns`).
    pub fn txns_loaded(&self) -> bool {
        self.txns.unread.is_empty()
    }

    /// Applies every event published since the stored position, after
    /// checking (once) that the log holds what the write model last applied.
    pub fn catch_up<L: EventLog + ?Sized>(
        &mut self,
        log: &L,
    ) -> Result<CatchUp, ConsumeError<WriteModelError>> {
        if !self.checked {
            let tips: BTreeMap<u32, Tip> = self
                .stands
                .iter()
                .map(|(p, s)| {
                    let link = Link {
                        hash: s.link,
                        carried: s.carried,
                    };
                    (*p, Tip { next: s.next, link })
                })
                .collect();
            let what = self
                .path
                .parent()
                .unwrap_or(&self.path)
                .display()
                .to_string();
            check_tips(log, Topic::Events, &tips, &what)
                .map_err(|e| ConsumeError::Handler(e.into()))?;
            self.checked = true;
        }
        catch_up(log, Topic::Events, self, CATCH_UP_BATCH_MAX, |_| {})
    }

    /// Numbers a new event within its key: one past the last of that key.
    pub fn assign_seq(&self, event: &mut Event) {
        event.seq = self.seqs.get(event.key()).copied().unwrap_or(0) + 1;
    }

    /// Whether an event with this id was recorded by a multi-event step
    /// (or is staged).
    pub fn recorded_step(&self, event_id: &str) -> bool {
        self.steps.contains(event_id)
    }

    /// The chain hash of a partition's last record, staged ones included.
    pub fn head(&self, partition: u32) -> [u8; 32] {
        self.pending_heads
            .get(&partition)
            .or_else(|| self.stands.get(&partition).map(|s| &s.head))
            .copied()
            .unwrap_or(GENESIS)
    }

    /// Notes the chain hash of a staged event on its partition.
    pub fn set_pending_head(&mut self, partition: u32, head: [u8; 32]) {
        self.pending_heads.insert(partition, head);
    }

    /// Folds an accepted event into the (not yet stored) state.
    pub fn apply_pending(&mut self, event: &Event) {
        let txn = folds_txn(event);
        if !txn {
            self.reference_dirty |= !matches!(
                event.body,
                EventBody::ReconciliationBreak(_) | EventBody::ReconciliationRun(_)
            );
            if is_step(event) && self.steps.insert(event.event_id.clone()) {
                self.changed_steps.push(event.event_id.clone());
            }
        }
        let seq = self.seqs.entry(event.key().to_string()).or_insert(0);
        if event.seq > *seq {
            *seq = event.seq;
            self.changed_seqs.insert(event.key().to_string(), event.seq);
        }
        // Folded in before the stored ones are read, a transaction would be
        // decided against a partial set, and reading them later would put
        // older states over it: never.
        assert!(
            !txn || self.txns_loaded(),
            "a transaction is folded in only after load_txns"
        );
        let mut store = Tracking {
            txns: &mut self.txns,
            changed: &mut self.changed_txns,
        };
        apply(&mut self.reference, &mut store, event);
    }

    /// Stores the pending state with the log positions it reflects (per
    /// partition: the next offset and the link of the last record), as one
    /// synced frame.
    pub fn commit(&mut self, tips: &BTreeMap<u32, (u64, Link)>) -> Result<(), WriteModelError> {
        let sealed = self.seal();
        self.commit_sealed(sealed, tips)
    }

    /// Takes the pending changes as they stand, for `commit_sealed` once
    /// the log has the events that made them. Events staged afterwards
    /// build on them in memory but are not part of them: while one batch
    /// is appended the next can be decided, and the stored state never
    /// holds what the log does not.
    pub fn seal(&mut self) -> Sealed {
        let mut ids = std::mem::take(&mut self.changed_txns);
        ids.sort_unstable();
        ids.dedup();
        let txns = (!ids.is_empty()).then(|| {
            let txns: Vec<(&str, &TxnState)> = ids
                .iter()
                .map(|id| {
                    (
                        id.as_str(),
                        self.txns.all.get(id).expect("changed txn is present"),
                    )
                })
                .collect();
            lz4_flex::compress_prepend_size(
                &postcard::to_stdvec(&txns).expect("transactions serialise"),
            )
        });
        let reference = std::mem::take(&mut self.reference_dirty)
            .then(|| serde_json::to_string(&self.reference).expect("reference serialises"));
        Sealed {
            txns,
            seqs: std::mem::take(&mut self.changed_seqs).into_iter().collect(),
            steps: std::mem::take(&mut self.changed_steps),
            reference,
            heads: self.pending_heads.clone(),
        }
    }

    /// Stores sealed changes with the log positions they reflect, as one
    /// synced append.
    pub fn commit_sealed(
        &mut self,
        sealed: Sealed,
        tips: &BTreeMap<u32, (u64, Link)>,
    ) -> Result<(), WriteModelError> {
        let mut stands = Vec::new();
        for (&p, &(next, link)) in tips {
            let head = match sealed.heads.get(&p) {
                Some(h) => *h,
                None => self.stands.get(&p).map_or(GENESIS, |s| s.head),
            };
            stands.push((
                p,
                Stand {
                    next,
                    link: link.hash,
                    carried: link.carried,
                    head,
                },
            ));
        }
        let commit = CommitOut {
            stands: &stands,
            seqs: sealed.seqs.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
            steps: &sealed.steps,
            reference: sealed.reference,
        };
        let bytes = postcard::to_stdvec(&commit).expect("commits serialise");
        let frame = lz4_flex::compress_prepend_size(&bytes);
        let mut frames: Vec<(u8, &[u8])> = Vec::with_capacity(2);
        if let Some(txns) = &sealed.txns {
            frames.push((TXNS_FRAME, txns));
        }
        frames.push((COMMIT_FRAME, &frame));
        self.file.append(&frames).map_err(frame_err)?;
        // A head staged since the seal stays pending; one the seal took is
        // now stored.
        for (p, head) in &sealed.heads {
            if self.pending_heads.get(p) == Some(head) {
                self.pending_heads.remove(p);
            }
        }
        self.stands.extend(stands);
        Ok(())
    }

    /// Lookup of accepted records, pending ones included (after
    /// `load_txns`: a lookup in transactions not read would take a
    /// duplicate for a new record).
    pub fn view(&self) -> &impl TxnLookup {
        assert!(
            self.txns_loaded(),
            "transactions are looked up only after load_txns"
        );
        &self.txns
    }

    /// Every commit is synced before it returns.
    pub fn flush(&self) -> Result<(), WriteModelError> {
        Ok(())
    }
}

/// The changes of the events staged up to a point (`WriteModel::seal`),
/// encoded as they stood then.
pub struct Sealed {
    /// The `TXNS_FRAME` payload, when transactions changed.
    txns: Option<Vec<u8>>,
    seqs: Vec<(String, u64)>,
    steps: Vec<String>,
    reference: Option<String>,
    /// Per partition, the chain hash after the last event sealed.
    heads: BTreeMap<u32, [u8; 32]>,
}

/// The same shape as `Commit`, borrowing the state to write it.
#[derive(Serialize)]
struct CommitOut<'a> {
    stands: &'a [(u32, Stand)],
    seqs: Vec<(&'a str, u64)>,
    steps: &'a [String],
    reference: Option<String>,
}

/// Whether folding `event` in changes the accepted transactions.
pub(crate) fn folds_txn(event: &Event) -> bool {
    matches!(event.body, EventBody::TransactionRecorded(_))
}

/// Events of multi-event steps, recorded once by id.
fn is_step(event: &Event) -> bool {
    matches!(
        event.body,
        EventBody::ReconciliationBreak(_) | EventBody::ReconciliationRun(_)
    )
}

/// A write model written by an earlier build (sled files, or no frame
/// file of this format) is moved aside, and the next catch-up rebuilds it
/// from the log.
fn rebuild_if_foreign(dir: &Path) -> Result<(), WriteModelError> {
    let sled = dir.join("conf").exists() || dir.join("db").exists();
    if !sled {
        return Ok(());
    }
    tracing::warn!(dir = %dir.display(), "write model of an earlier build; rebuilding it from the log");
    let io = |e: std::io::Error| WriteModelError::File(format!("{}: {e}", dir.display()));
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name() == "LOCK" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(io)?;
        } else {
            std::fs::remove_file(&path).map_err(io)?;
        }
    }
    Ok(())
}

impl Handler for WriteModel {
    type Error = WriteModelError;

    fn positions(&self) -> Positions {
        self.stands.iter().map(|(p, s)| (*p, s.next)).collect()
    }

    fn apply(
        &mut self,
        partition: u32,
        items: Vec<Item>,
        next_offset: u64,
    ) -> Result<(), WriteModelError> {
        if items.iter().any(|i| i.event.as_ref().is_ok_and(folds_txn)) {
            self.load_txns()?;
        }
        let mut head = self.head(partition);
        let mut last = None;
        for item in items {
            head = item.link.head_after(&head);
            last = Some(item.link);
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
        let Some(link) = last else {
            return Ok(());
        };
        self.set_pending_head(partition, head);
        self.commit(&BTreeMap::from([(partition, (next_offset, link))]))
    }
}
