//! Ingest: turn input files into immutable events.
//!
//! Layout: `fees` reads the fee schedule and calendar files; `writemodel`
//! is the persisted projection ingest decides against; this module holds
//! the three loads — `load_fees`, `load_registry` and `ingest` — that
//! decide with `clearing_core`, publish to the log, and only then store the
//! write model. Every input line ends as events, as a counted duplicate, or
//! as a dead letter on the rejected topic with its reason.

use std::collections::BTreeMap;
use std::io::BufRead;

use clearing_core::events::RecordRejected;
use clearing_core::ingest::{decide_prepared, prepare, sha256_hex, Outcome, Reason, Rejection};
use clearing_core::mask::{mask_raw_line, mask_raw_with};
use clearing_core::registry::{plan_registry_load, RegistryChange, VersionedFees};
use clearing_core::{Event, EventBody};
use clearing_log::{EventLog, LogError, Record, Topic};
use serde::Serialize;

pub mod fees;
pub mod writemodel;

pub use writemodel::{WriteModel, WriteModelError};

/// Input lines decided per batch: one log append and one write-model commit
/// each. Bounds memory (a few MiB of events) and the work a crash repeats.
pub const INGEST_BATCH_LINES_MAX: usize = 16_384;

/// Longest input line accepted. Transaction records are a few hundred
/// bytes; a longer line is not a record and is dead-lettered (truncated).
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// A reference-data file that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {field}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct InputError {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("{0}")]
    Input(#[from] InputError),
    #[error("no fee schedule is recorded yet: run `clearing fees load FILE` first")]
    NoFeeSchedule,
    #[error("reading {source_name} after line {line}: {error}")]
    Read {
        source_name: String,
        line: u64,
        error: std::io::Error,
    },
    #[error("publishing: {error} (lines up to {committed_line} of {source_name} are recorded; run the same file again to complete it)")]
    Publish {
        log: String,
        error: LogError,
        source_name: String,
        committed_line: u64,
    },
    #[error("{0}")]
    Log(#[from] LogError),
    #[error("{0}")]
    WriteModel(#[from] WriteModelError),
    #[error("catching up the write model: {0}")]
    CatchUp(#[from] clearing_consumer::ConsumeError<WriteModelError>),
}

/// An event as a log record: its encoding under `key`, with its type,
/// schema version and id also as headers, so that consumers can route or
/// skip messages without decoding them.
fn to_record(e: &Event, key: String) -> Record {
    Record {
        key,
        payload: e.encode(),
        headers: vec![
            ("type", e.type_name().to_string()),
            ("schema_version", e.schema_version().to_string()),
            ("event_id", e.event_id.clone()),
        ],
    }
}

/// Publishes decided events (already applied to the write model as
/// pending) and then commits the write model at the new log end.
fn publish<L: EventLog + ?Sized>(
    log: &L,
    wm: &mut WriteModel,
    events: &[Event],
) -> Result<(), LogError> {
    if events.is_empty() {
        return Ok(());
    }
    use rayon::prelude::*;
    let records: Vec<Record> = events
        .par_iter()
        .with_min_len(256)
        .map(|e| to_record(e, e.key().to_string()))
        .collect();
    let positions = log.append(Topic::Events, &records)?;
    let mut ends: BTreeMap<u32, u64> = BTreeMap::new();
    for p in positions {
        let e = ends.entry(p.partition).or_insert(0);
        *e = (*e).max(p.offset + 1);
    }
    wm.commit(&ends)
        .map_err(|e| LogError::Broker(e.to_string()))?;
    Ok(())
}

/// Records events decided elsewhere (a reconciliation run's breaks and
/// summary): numbers them within their key after catching the write model
/// up, publishes them in order, and commits the write model.
pub fn record_events<L: EventLog + ?Sized>(
    log: &L,
    wm: &mut WriteModel,
    mut events: Vec<Event>,
) -> Result<(), ProducerError> {
    wm.catch_up(log)?;
    for chunk in events.chunks_mut(INGEST_BATCH_LINES_MAX) {
        for e in chunk.iter_mut() {
            wm.assign_seq(e);
            wm.apply_pending(e);
        }
        publish(log, wm, chunk)?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeesLoaded {
    pub version: u32,
    pub changed: bool,
}

/// Records a fee schedule (and calendar) as a `FeeScheduleLoaded` event,
/// unless it equals the one in force.
pub fn load_fees<L: EventLog + ?Sized>(
    log: &L,
    wm: &mut WriteModel,
    schedule: clearing_core::fees::FeeSchedule,
    calendar: clearing_core::calendar::Calendar,
    recorded_at: &str,
) -> Result<FeesLoaded, ProducerError> {
    wm.catch_up(log)?;
    let current = wm.reference.fees.as_ref();
    if let Some(c) = current {
        if c.schedule == schedule && c.calendar == calendar {
            return Ok(FeesLoaded {
                version: c.version,
                changed: false,
            });
        }
    }
    let version = current.map_or(1, |c| c.version + 1);
    let mut event = Event {
        event_id: format!("fees:v{version}"),
        seq: 0,
        merchant_id: None,
        occurred_at: recorded_at.to_string(),
        recorded_at: recorded_at.to_string(),
        body: EventBody::FeeScheduleLoaded(VersionedFees {
            version,
            schedule,
            calendar,
        }),
    };
    wm.assign_seq(&mut event);
    wm.apply_pending(&event);
    publish(log, wm, std::slice::from_ref(&event))?;
    Ok(FeesLoaded {
        version,
        changed: true,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistryLoaded {
    pub merchants_registered: u64,
    pub merchants_updated: u64,
    pub intermediaries_registered: u64,
    pub intermediaries_updated: u64,
    pub unchanged: u64,
}

/// Numbers the non-blank lines of a JSON-lines text.
pub fn numbered_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// Records registrations and changes of merchants and intermediaries. All
/// or nothing: a bad line refuses the whole load.
pub fn load_registry<L: EventLog + ?Sized>(
    log: &L,
    wm: &mut WriteModel,
    merchants: (&str, &str),
    intermediaries: Option<(&str, &str)>,
    recorded_at: &str,
) -> Result<RegistryLoaded, ProducerError> {
    wm.catch_up(log)?;
    let m_lines = numbered_lines(merchants.1);
    let i_lines = intermediaries
        .map(|(_, t)| numbered_lines(t))
        .unwrap_or_default();
    let changes =
        plan_registry_load(&wm.reference, &m_lines, &i_lines).map_err(|e| InputError {
            file: match e.file {
                "merchants" => merchants.0.to_string(),
                _ => intermediaries.map_or("intermediaries", |i| i.0).to_string(),
            },
            line: Some(e.error.line),
            field: e.error.field,
            reason: e.error.reason,
        })?;
    let mut summary = RegistryLoaded {
        unchanged: (m_lines.len() + i_lines.len() - changes.len()) as u64,
        ..RegistryLoaded::default()
    };
    let mut events: Vec<Event> = changes
        .into_iter()
        .map(|c| {
            let (event_id, merchant_id, body) = match c {
                RegistryChange::IntermediaryRegistered(v) => {
                    summary.intermediaries_registered += 1;
                    (
                        format!("intermediary:{}:v{}", v.value.intermediary_id, v.version),
                        None,
                        EventBody::IntermediaryRegistered(v),
                    )
                }
                RegistryChange::IntermediaryUpdated(v) => {
                    summary.intermediaries_updated += 1;
                    (
                        format!("intermediary:{}:v{}", v.value.intermediary_id, v.version),
                        None,
                        EventBody::IntermediaryUpdated(v),
                    )
                }
                RegistryChange::MerchantRegistered(v) => {
                    summary.merchants_registered += 1;
                    let id = v.value.merchant_id.clone();
                    (
                        format!("merchant:{id}:v{}", v.version),
                        Some(id),
                        EventBody::MerchantRegistered(v),
                    )
                }
                RegistryChange::MerchantUpdated(v) => {
                    summary.merchants_updated += 1;
                    let id = v.value.merchant_id.clone();
                    (
                        format!("merchant:{id}:v{}", v.version),
                        Some(id),
                        EventBody::MerchantUpdated(v),
                    )
                }
            };
            Event {
                event_id,
                seq: 0,
                merchant_id,
                occurred_at: recorded_at.to_string(),
                recorded_at: recorded_at.to_string(),
                body,
            }
        })
        .collect();
    for e in &mut events {
        wm.assign_seq(e);
        wm.apply_pending(e);
    }
    publish(log, wm, &events)?;
    Ok(summary)
}

/// Rejected lines kept in the summary for the operator to read. All of
/// them are on the rejected topic; a file with thousands of bad lines needs
/// a fix at its source, not a longer screen.
pub const REJECTS_LISTED_MAX: usize = 50;

/// One rejected line, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLine {
    pub line: u64,
    pub reason: Reason,
    pub field: Option<&'static str>,
    pub detail: String,
}

/// Dead-letters messages found on the events topic that are not events,
/// each with its position and why it could not be read. The event id is
/// derived from the position, so a second reader finding the same message
/// publishes a copy with the same id.
pub fn reject_undecodable<L: EventLog + ?Sized>(
    log: &L,
    topic: &str,
    found: &[clearing_consumer::Undecodable],
    recorded_at: &str,
) -> Result<(), LogError> {
    let records: Vec<Record> = found
        .iter()
        .map(|u| {
            let raw = String::from_utf8_lossy(&u.raw[..u.raw.len().min(4096)]).into_owned();
            let event = Event {
                event_id: format!("foreign:{topic}:{}", u.position),
                seq: 0,
                merchant_id: None,
                occurred_at: recorded_at.to_string(),
                recorded_at: recorded_at.to_string(),
                body: EventBody::RecordRejected(RecordRejected {
                    source: topic.to_string(),
                    line: u.position.offset,
                    position: Some(u.position.to_string()),
                    raw: mask_raw_line(&raw),
                    reason: Reason::InvalidEvent,
                    field: None,
                    detail: u.reason.clone(),
                }),
            };
            to_record(&event, topic.to_string())
        })
        .collect();
    log.append(Topic::Rejected, &records).map(|_| ())
}

/// The summary `clearing ingest --format json` prints (SPEC §10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    /// The first `REJECTS_LISTED_MAX` rejected lines, in file order.
    #[serde(skip)]
    pub first_rejects: Vec<RejectedLine>,
}

impl IngestSummary {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Reads one line (without its end) into `buf`; false at end of input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    if input.read_until(b'\n', buf)? == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(true)
}

/// Validates and publishes a transactions file. Returns when every event
/// and dead letter is acknowledged by the log.
///
/// `clock` gives the recording time (RFC 3339) for each batch. After an
/// error, drop `wm` and reopen it: its unpublished pending state is void.
pub fn ingest<L: EventLog + ?Sized>(
    log: &L,
    wm: &mut WriteModel,
    source_name: &str,
    mut input: impl BufRead,
    clock: &dyn Fn() -> String,
    mut progress: impl FnMut(&IngestSummary),
) -> Result<IngestSummary, ProducerError> {
    wm.catch_up(log)?;
    let fees = wm
        .reference
        .fees
        .clone()
        .ok_or(ProducerError::NoFeeSchedule)?;
    let mut summary = IngestSummary::default();
    let mut line_no: u64 = 0;
    let mut committed_line: u64 = 0;
    let mut events: Vec<Event> = Vec::with_capacity(INGEST_BATCH_LINES_MAX);
    let mut dead: Vec<Record> = Vec::new();
    let mut lines: Vec<(u64, Vec<u8>)> = Vec::with_capacity(INGEST_BATCH_LINES_MAX);
    loop {
        let recorded_at = clock();
        let mut more = true;
        lines.clear();
        while lines.len() < INGEST_BATCH_LINES_MAX {
            let mut buf = Vec::with_capacity(512);
            more = read_line(&mut input, &mut buf).map_err(|error| ProducerError::Read {
                source_name: source_name.to_string(),
                line: line_no,
                error,
            })?;
            if !more {
                break;
            }
            line_no += 1;
            if !buf.iter().all(u8::is_ascii_whitespace) {
                lines.push((line_no, buf));
            }
        }
        // The stateless checks (JSON, masking, digest, field types) run in
        // parallel; the decisions that read the ledger run in input order.
        let prepared: Vec<(u64, Prepared)> = {
            use rayon::prelude::*;
            lines
                .par_iter()
                .with_min_len(64)
                .map(|(n, bytes)| (*n, prepare_line(bytes)))
                .collect()
        };
        for (n, p) in prepared {
            decide_line(
                &fees,
                wm,
                source_name,
                n,
                p,
                &recorded_at,
                &mut summary,
                &mut events,
                &mut dead,
            );
        }
        let publish_err = |error| ProducerError::Publish {
            log: log.describe(),
            error,
            source_name: source_name.to_string(),
            committed_line,
        };
        publish(log, wm, &events).map_err(publish_err)?;
        if !dead.is_empty() {
            log.append(Topic::Rejected, &dead).map_err(publish_err)?;
        }
        events.clear();
        dead.clear();
        committed_line = line_no;
        progress(&summary);
        if !more {
            break;
        }
    }
    Ok(summary)
}

/// A line after the stateless checks, with the text its dead letter needs.
struct Prepared {
    text: String,
    outcome: Result<clearing_core::ingest::Prepared, Rejection>,
}

fn prepare_line(bytes: &[u8]) -> Prepared {
    let early = |detail: String| Rejection {
        reason: Reason::InvalidJson,
        field: None,
        detail,
        card: None,
    };
    match std::str::from_utf8(bytes) {
        Err(_) => Prepared {
            text: String::from_utf8_lossy(bytes).into_owned(),
            outcome: Err(early("line is not valid UTF-8".to_string())),
        },
        Ok(_) if bytes.len() > LINE_BYTES_MAX => Prepared {
            text: String::from_utf8_lossy(&bytes[..4096]).into_owned(),
            outcome: Err(early(format!("line is longer than {LINE_BYTES_MAX} bytes"))),
        },
        Ok(text) => Prepared {
            outcome: prepare(text),
            text: text.to_string(),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn decide_line(
    fees: &VersionedFees,
    wm: &mut WriteModel,
    source_name: &str,
    line_no: u64,
    p: Prepared,
    recorded_at: &str,
    summary: &mut IngestSummary,
    events: &mut Vec<Event>,
    dead: &mut Vec<Record>,
) {
    let outcome = match p.outcome {
        Ok(prepared) => decide_prepared(&wm.reference, fees, wm.view(), recorded_at, prepared),
        Err(r) => Outcome::Rejected(r),
    };
    let text = p.text;
    match outcome {
        Outcome::Accepted(mut event) => {
            wm.assign_seq(&mut event);
            wm.apply_pending(&event);
            summary.accepted += 1;
            events.push(*event);
        }
        Outcome::Duplicate => summary.duplicates += 1,
        Outcome::Rejected(r) => {
            *summary.rejected.entry(r.reason.as_str()).or_insert(0) += 1;
            if summary.first_rejects.len() < REJECTS_LISTED_MAX {
                summary.first_rejects.push(RejectedLine {
                    line: line_no,
                    reason: r.reason,
                    field: r.field,
                    detail: r.detail.clone(),
                });
            }
            let raw = match &r.card {
                Some(card) => mask_raw_with(&text, card),
                None => mask_raw_line(&text),
            };
            tracing::debug!(
                line = line_no,
                reason = r.reason.as_str(),
                field = r.field,
                "record rejected"
            );
            let event = Event {
                seq: 0,
                event_id: format!(
                    "rejected:{}",
                    &sha256_hex(
                        format!("{source_name}\n{line_no}\n{recorded_at}\n{raw}").as_bytes()
                    )[..32]
                ),
                merchant_id: None,
                occurred_at: recorded_at.to_string(),
                recorded_at: recorded_at.to_string(),
                body: EventBody::RecordRejected(RecordRejected {
                    source: source_name.to_string(),
                    line: line_no,
                    position: None,
                    raw,
                    reason: r.reason,
                    field: r.field.map(str::to_string),
                    detail: r.detail,
                }),
            };
            dead.push(to_record(&event, source_name.to_string()));
        }
    }
}
