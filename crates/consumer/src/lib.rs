//! Reading the ledger from stored positions.
//!
//! Layout: `Handler` is what a projection implements: it says where it
//! stands (its stored next offset per partition) and applies a batch,
//! storing the new positions in the same atomic write as the state it
//! derived. `catch_up` drives a handler to the end of the log. Offsets are
//! data owned by the handler; this crate keeps none of its own.

use std::collections::BTreeMap;

use clearing_core::chain::Link;
use clearing_core::events::DecodeError;
use clearing_core::{Cut, Event};
use clearing_log::{EventLog, LogError, Position, Positions, Topic};

/// Events read per batch. Large enough that per-batch costs (one atomic
/// sled write, one log read) vanish; small enough to bound memory (a few
/// MiB of events) and the work lost to a crash.
pub const BATCH_EVENTS_MAX: usize = 4096;

/// One record read from the log: its position and the decoded event, or
/// why it could not be decoded (the handler must record that, not skip it).
#[derive(Debug)]
pub struct Item {
    pub position: Position,
    /// The record's link in its partition's hash chain.
    pub link: Link,
    pub event: Result<Event, DecodeError>,
    /// The raw payload, kept only when it could not be decoded, so that it
    /// can be dead-lettered as received.
    pub raw: Option<Vec<u8>>,
}

/// A message on the events topic that is not an event this build can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undecodable {
    pub position: Position,
    pub reason: String,
    pub raw: Vec<u8>,
}

/// A projection, as the consumer sees it.
pub trait Handler {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The next offset to read per partition (absent = 0).
    fn positions(&self) -> Positions;

    /// Applies a batch of one partition's consecutive records, and stores
    /// `next_offset` for that partition atomically with the derived state.
    fn apply(
        &mut self,
        partition: u32,
        items: Vec<Item>,
        next_offset: u64,
    ) -> Result<(), Self::Error>;
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError<E: std::error::Error + 'static> {
    #[error("reading the log: {0}")]
    Log(LogError),
    #[error("applying events: {0}")]
    Handler(E),
}

/// What a catch-up did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub events: u64,
    pub batches: u64,
    /// The end of the log (or the cut) was reached.
    pub complete: bool,
}

/// Decodes a batch of raw records, in parallel: decoding JSON is most of
/// what reading the ledger costs, and every record decodes on its own.
pub fn decode_all(records: Vec<clearing_log::Delivered>) -> Vec<Item> {
    use rayon::prelude::*;
    records
        .into_par_iter()
        .with_min_len(256)
        .map(|d| {
            let link = Link::of(&d.payload);
            match Event::decode(&d.payload) {
                Ok(e) => Item {
                    position: d.position,
                    link,
                    event: Ok(e),
                    raw: None,
                },
                Err(e) => Item {
                    position: d.position,
                    link,
                    event: Err(e),
                    raw: Some(d.payload),
                },
            }
        })
        .collect()
}

/// Applies decoded records of any partitions, one `Handler::apply` per
/// partition (records of a partition must be consecutive and in order).
pub fn apply_batch<H: Handler>(handler: &mut H, items: Vec<Item>) -> Result<CatchUp, H::Error> {
    let mut by_partition: BTreeMap<u32, Vec<Item>> = BTreeMap::new();
    for item in items {
        by_partition
            .entry(item.position.partition)
            .or_default()
            .push(item);
    }
    let mut stats = CatchUp::default();
    for (p, items) in by_partition {
        let next = items.last().expect("non-empty").position.offset + 1;
        stats.events += items.len() as u64;
        stats.batches += 1;
        handler.apply(p, items, next)?;
    }
    Ok(stats)
}

/// Whether `item` lies beyond the cut (it and everything after it on its
/// partition are left out).
fn beyond(cut: &Cut, item: &Item) -> bool {
    match cut {
        Cut::End => false,
        Cut::Before(offsets) => item.position.offset >= offsets.next(item.position.partition),
        Cut::RecordedBy(t) => match &item.event {
            Ok(e) => e.recorded_at.at() > t.at(),
            // A message that is not an event has no time: it belongs to
            // the prefix it sits in.
            Err(_) => false,
        },
    }
}

/// Where a store stands on one partition: the next offset it will read,
/// and the link of the record before it (the last it applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    pub next: u64,
    pub link: Link,
}

/// A store that stands where the log does not: the log was cut back or
/// restored from an older copy, or the store came from another ledger.
#[derive(Debug, thiserror::Error)]
pub enum TipError {
    #[error("{what} stand at {partition}:{next}, but the log ends before it: was the log restored from an older copy? (delete {what} to rebuild them from the log as it is)")]
    Ahead {
        what: String,
        partition: u32,
        next: u64,
    },
    #[error("{what} applied a record at {partition}:{offset} that the log no longer holds (another record is there): was the log restored from an older copy? (delete {what} to rebuild them from the log as it is)")]
    Diverged {
        what: String,
        partition: u32,
        offset: u64,
    },
    #[error("checking {what} against the log: {0}", what = .1)]
    Log(LogError, String),
}

/// Checks that `log` holds, on each partition, the record a store last
/// applied, where the store says it is. `what` names the store.
pub fn check_tips(
    log: &(impl EventLog + ?Sized),
    topic: Topic,
    tips: &BTreeMap<u32, Tip>,
    what: &str,
) -> Result<(), TipError> {
    for (&partition, tip) in tips {
        let Some(last) = tip.next.checked_sub(1) else {
            continue;
        };
        let found = log
            .read(topic, partition, last, 1)
            .map_err(|e| TipError::Log(e, what.to_string()))?;
        match found.first() {
            None => {
                return Err(TipError::Ahead {
                    what: what.to_string(),
                    partition,
                    next: tip.next,
                })
            }
            Some(d) if d.position.offset == last && Link::of(&d.payload) == tip.link => {}
            Some(_) => {
                return Err(TipError::Diverged {
                    what: what.to_string(),
                    partition,
                    offset: last,
                })
            }
        }
    }
    Ok(())
}

/// Brings `handler` to the end of `topic`: see `catch_up_until`.
pub fn catch_up<L: EventLog + ?Sized, H: Handler>(
    log: &L,
    topic: Topic,
    handler: &mut H,
    batch_max: usize,
    progress: impl FnMut(u64),
) -> Result<CatchUp, ConsumeError<H::Error>> {
    catch_up_until(
        log,
        topic,
        handler,
        batch_max,
        &Cut::End,
        u64::MAX,
        progress,
    )
}

/// Brings `handler` to `until` on `topic`: reads all partitions from the
/// handler's stored positions until a read comes back empty (every
/// partition at its end) or every partition has reached its cut, in
/// batches of at most `batch_max` events, and applies each batch partition
/// by partition; `progress` hears the running count of events after each
/// batch. It stops early once `events_max` events are applied (the stored
/// positions say where to go on from); `CatchUp::complete` says whether it
/// reached the end or the cut.
///
/// Reading and decoding run on their own thread, one batch ahead of
/// applying, so that waiting for the log, decoding and applying overlap.
pub fn catch_up_until<L: EventLog + ?Sized, H: Handler>(
    log: &L,
    topic: Topic,
    handler: &mut H,
    batch_max: usize,
    until: &Cut,
    events_max: u64,
    mut progress: impl FnMut(u64),
) -> Result<CatchUp, ConsumeError<H::Error>> {
    let partitions = log.partitions(topic).map_err(ConsumeError::Log)?;
    let start = handler.positions();
    // Partitions whose cut has been reached: nothing more of them applies.
    let mut cut: std::collections::BTreeSet<u32> = match until {
        Cut::Before(offsets) => (0..partitions)
            .filter(|p| start.next(*p) >= offsets.next(*p))
            .collect(),
        _ => Default::default(),
    };
    let mut stats = CatchUp::default();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Item>, LogError>>(1);
        scope.spawn(move || {
            let mut next = start;
            loop {
                let read = log.read_all(topic, partitions, &next, batch_max);
                let (batch, done) = match read {
                    Ok(records) => {
                        for r in &records {
                            next.advance_past(r.position);
                        }
                        let done = records.is_empty();
                        (Ok(decode_all(records)), done)
                    }
                    Err(e) => (Err(e), true),
                };
                // The receiver is gone when applying failed or the cut is
                // reached: stop reading.
                if tx.send(batch).is_err() || done {
                    return;
                }
            }
        });
        for batch in rx {
            if cut.len() as u32 >= partitions {
                stats.complete = true;
                break;
            }
            if stats.events >= events_max {
                break;
            }
            let mut items = batch.map_err(ConsumeError::Log)?;
            if items.is_empty() {
                stats.complete = true;
                break;
            }
            if *until != Cut::End {
                items.retain(|item| {
                    if cut.contains(&item.position.partition) {
                        return false;
                    }
                    if beyond(until, item) {
                        cut.insert(item.position.partition);
                        return false;
                    }
                    true
                });
            }
            let applied = apply_batch(handler, items).map_err(ConsumeError::Handler)?;
            stats.events += applied.events;
            stats.batches += applied.batches;
            progress(stats.events);
        }
        Ok(())
    })?;
    tracing::debug!(events = stats.events, batches = stats.batches, "caught up");
    Ok(stats)
}
