//! What a dispute handler asks (SPEC §9): a transaction's whole story
//! (`story`), a merchant's settlement as the ledger knew it at a moment
//! (`statement`), a self-contained bundle for the other party (`bundle`)
//! and the day's postings as an accounting journal (`journal`).
//!
//! The projections find the records (transaction index, registry versions,
//! reconciliation runs); the events themselves are read from the log at
//! the positions the index gives, and shown exactly as recorded.

pub mod bundle;
pub mod journal;
pub mod statement;
pub mod story;

use std::collections::{BTreeMap, HashMap};

use clearing_core::registry::{Intermediary, Merchant};
use clearing_core::{Event, EventBody, Position, Recorded, Timestamp};
use clearing_log::{Delivered, EventLog, Topic};
use clearing_projector::Projector;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::AppError;

/// An event as recorded on the log, with where and when.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoggedEvent {
    pub position: Position,
    pub recorded_at: Timestamp,
    pub event_id: String,
    #[serde(rename = "type")]
    pub type_name: String,
    /// The merchant's registry entry in force when the event was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<Snapshot<Merchant>>,
    /// The merchant's intermediary (二清) as it stood then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediary: Option<Snapshot<Intermediary>>,
    /// The whole event, byte for byte as the log holds it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub event: Box<RawValue>,
    /// `event`, decoded when it was read.
    #[serde(skip)]
    decoded: Option<Event>,
}

impl LoggedEvent {
    /// The transaction the event records, when it records one.
    pub fn txn(&self) -> Option<&clearing_core::events::TxnRecorded> {
        match &self.decoded.as_ref()?.body {
            EventBody::TransactionRecorded(t) => Some(t),
            _ => None,
        }
    }
}

/// A registry entry version, with the event that recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot<T> {
    pub version: u32,
    #[serde(flatten)]
    pub recorded: Recorded<T>,
}

/// Records read per stretch of nearby offsets.
const EVENTS_RUN_MAX: usize = 4096;

/// Reads the records at `positions` from the log, in runs: one read per
/// stretch of nearby offsets rather than one per record.
pub(crate) fn events_at(
    log: &dyn EventLog,
    positions: &[Position],
) -> Result<HashMap<Position, Delivered>, AppError> {
    let mut by_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for p in positions {
        by_partition.entry(p.partition).or_default().push(p.offset);
    }
    let mut out = HashMap::new();
    for (partition, mut offsets) in by_partition {
        offsets.sort_unstable();
        offsets.dedup();
        let mut i = 0;
        while i < offsets.len() {
            let read = log
                .read(Topic::Events, partition, offsets[i], EVENTS_RUN_MAX)
                .map_err(|e| {
                    AppError::from(e).context(format!("reading from {partition}:{}", offsets[i]))
                })?;
            let Some(last) = read.last().map(|r| r.position.offset) else {
                break;
            };
            for r in read {
                if offsets[i..].binary_search(&r.position.offset).is_ok() {
                    out.insert(r.position, r);
                }
            }
            while i < offsets.len() && offsets[i] <= last {
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The record read at `pos`, out of what `events_at` read.
pub(crate) fn take_record(
    records: &mut HashMap<Position, Delivered>,
    pos: Position,
    log: &dyn EventLog,
) -> Result<Delivered, AppError> {
    records
        .remove(&pos)
        .ok_or_else(|| AppError::storage(format!("{} holds no event at {pos}", log.describe())))
}

/// Decodes the event read at `pos`.
pub(crate) fn decode_at(record: &Delivered, pos: Position) -> Result<Event, AppError> {
    Event::decode(&record.payload)
        .map_err(|e| AppError::storage(format!("the event at {pos}: {e}")))
}

/// Reads the event at `pos` from the log, with the registry as it stood
/// when it was recorded.
pub fn logged(p: &Projector, log: &dyn EventLog, pos: Position) -> Result<LoggedEvent, AppError> {
    let record = take_record(&mut events_at(log, &[pos])?, pos, log)?;
    let event = decode_at(&record, pos)?;
    let text = String::from_utf8(record.payload)
        .map_err(|_| AppError::storage(format!("the event at {pos} is not UTF-8")))?;
    let (registry, intermediary) = match &event.merchant_id {
        Some(m) if matches!(event.body, EventBody::TransactionRecorded(_)) => {
            let registry = merchant_as_of(p, m, pos, &event.recorded_at)?;
            let intermediary = match registry
                .as_ref()
                .and_then(|r| r.recorded.value.intermediary_id.clone())
            {
                Some(i) => intermediary_as_of(p, &i, &event.recorded_at)?,
                None => None,
            };
            (registry, intermediary)
        }
        _ => (None, None),
    };
    Ok(LoggedEvent {
        position: pos,
        recorded_at: event.recorded_at.clone(),
        event_id: event.event_id.clone(),
        type_name: event.type_name().to_string(),
        registry,
        intermediary,
        event: RawValue::from_string(text)
            .map_err(|_| AppError::storage(format!("the event at {pos} is not JSON")))?,
        decoded: Some(event),
    })
}

/// The merchant's registry version in force at an event: the last one
/// before it on the merchant's partition (its events share one key), or,
/// on another partition, the last one recorded no later.
fn merchant_as_of(
    p: &Projector,
    merchant_id: &str,
    at: Position,
    recorded_at: &Timestamp,
) -> Result<Option<Snapshot<Merchant>>, AppError> {
    let mut best = None;
    for (version, r) in p.merchant_versions(merchant_id)? {
        let before = if r.position.partition == at.partition {
            r.position.offset < at.offset
        } else {
            r.recorded_at.at() <= recorded_at.at()
        };
        if before {
            best = Some(Snapshot {
                version,
                recorded: r,
            });
        }
    }
    Ok(best)
}

fn intermediary_as_of(
    p: &Projector,
    id: &str,
    recorded_at: &Timestamp,
) -> Result<Option<Snapshot<Intermediary>>, AppError> {
    Ok(p.intermediary_versions(id)?
        .into_iter()
        .rev()
        .find(|(_, r)| r.recorded_at.at() <= recorded_at.at())
        .map(|(version, recorded)| Snapshot { version, recorded }))
}
