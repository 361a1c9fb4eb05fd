//! Ingest: turn input files into immutable events.
//!
//! Layout: `fees` reads the fee schedule and calendar files; `writemodel`
//! is the persisted projection ingest decides against; `writer` is the one
//! write path (stage, append, commit the write model); this module holds
//! the three loads — `load_fees`, `load_registry` and `ingest` — that
//! decide with `clearing_core` and record through the writer. Every input
//! line ends as events, as a counted duplicate, or as a dead letter on the
//! rejected topic with its reason.

use std::collections::BTreeMap;
use std::io::BufRead;

use clearing_core::events::RecordRejected;
use clearing_core::ingest::{decide_prepared, prepare, Outcome, Reason, Rejection};
use clearing_core::mask::mask_unparsed;
use clearing_core::registry::{plan_registry_load, RegistryChange, VersionedFees};
use clearing_core::{Event, Timestamp};
use clearing_log::{EventLog, LogError};
use serde::Serialize;

pub mod fees;
pub mod writemodel;
pub mod writer;

pub use writemodel::{WriteModel, WriteModelError};
pub use writer::{WriteError, Writer};

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
        error: Box<WriteError>,
        source_name: String,
        committed_line: u64,
    },
    #[error("{0}")]
    Write(Box<WriteError>),
}

impl From<WriteError> for ProducerError {
    fn from(e: WriteError) -> ProducerError {
        ProducerError::Write(Box::new(e))
    }
}

/// Records events decided elsewhere (a reconciliation run's breaks and
/// summary) through the writer, in order, a batch at a time.
pub fn record_events(writer: &mut Writer, events: Vec<Event>) -> Result<(), WriteError> {
    writer.catch_up()?;
    if events.iter().any(writemodel::folds_txn) {
        writer.load_txns()?;
    }
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        for e in events.by_ref().take(INGEST_BATCH_LINES_MAX) {
            writer.stage(e);
        }
        writer.commit()?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeesLoaded {
    pub version: u32,
    pub changed: bool,
}

/// Records a fee schedule (and calendar) as a `FeeScheduleLoaded` event,
/// unless it equals the one in force.
pub fn load_fees(
    writer: &mut Writer,
    schedule: clearing_core::fees::FeeSchedule,
    calendar: clearing_core::calendar::Calendar,
    recorded_at: &Timestamp,
) -> Result<FeesLoaded, ProducerError> {
    writer.catch_up()?;
    let current = writer.reference().fees.as_ref();
    if let Some(c) = current {
        if c.schedule == schedule && c.calendar == calendar {
            return Ok(FeesLoaded {
                version: c.version,
                changed: false,
            });
        }
    }
    let version = current.map_or(1, |c| c.version + 1);
    let fees = VersionedFees {
        version,
        schedule,
        calendar,
    };
    writer.stage(Event::fee_schedule_loaded(fees, recorded_at));
    writer.commit()?;
    Ok(FeesLoaded {
        version,
        changed: true,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
pub fn load_registry(
    writer: &mut Writer,
    merchants: (&str, &str),
    intermediaries: Option<(&str, &str)>,
    recorded_at: &Timestamp,
) -> Result<RegistryLoaded, ProducerError> {
    writer.catch_up()?;
    let m_lines = numbered_lines(merchants.1);
    let i_lines = intermediaries
        .map(|(_, t)| numbered_lines(t))
        .unwrap_or_default();
    let changes =
        plan_registry_load(writer.reference(), &m_lines, &i_lines).map_err(|e| InputError {
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
    for change in changes {
        match &change {
            RegistryChange::IntermediaryRegistered(_) => summary.intermediaries_registered += 1,
            RegistryChange::IntermediaryUpdated(_) => summary.intermediaries_updated += 1,
            RegistryChange::MerchantRegistered(_) => summary.merchants_registered += 1,
            RegistryChange::MerchantUpdated(_) => summary.merchants_updated += 1,
        }
        writer.stage(Event::registry_change(change, recorded_at));
    }
    writer.commit()?;
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
pub fn reject_undecodable(
    log: &dyn EventLog,
    topic: &str,
    found: &[clearing_consumer::Undecodable],
    recorded_at: &Timestamp,
) -> Result<(), LogError> {
    let events: Vec<Event> = found
        .iter()
        .map(|u| {
            let raw = String::from_utf8_lossy(&u.raw[..u.raw.len().min(4096)]).into_owned();
            Event::foreign_rejected(
                topic,
                u.position,
                mask_unparsed(&raw),
                u.reason.clone(),
                recorded_at,
            )
        })
        .collect();
    writer::dead_letter(log, &events)
}

/// The summary `clearing ingest --format json` prints (SPEC §10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestSummary {
    pub accepted: u64,
    pub duplicates: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
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
/// `clock` gives the recording time for each batch. After an error the
/// writer refuses more work: reopen it (its pending state is void).
///
/// A file (`Input::File`) flows through three stages at once: while the
/// log appends batch n (on its own thread, or the broker), batch n+1 is
/// decided against the write model and batch n+2 is read and parsed. A
/// batch's dead letters are recorded once its events are durable. A live
/// feed (`Input::Live`, e.g. stdin) may pause between lines, so each batch
/// is acknowledged before the next is read: what came in is durable while
/// the feed is quiet.
pub fn ingest(
    writer: &mut Writer,
    source_name: &str,
    input: Input<impl BufRead>,
    clock: &dyn Fn() -> Timestamp,
    mut progress: impl FnMut(&IngestSummary),
) -> Result<IngestSummary, ProducerError> {
    let (mut input, live) = match input {
        Input::File(r) => (r, false),
        Input::Live(r) => (r, true),
    };
    writer.catch_up()?;
    writer.load_txns()?;
    let fees = writer
        .reference()
        .fees
        .clone()
        .ok_or(ProducerError::NoFeeSchedule)?;
    let mut flow = Flow {
        summary: IngestSummary::default(),
        committed_line: 0,
        in_flight: None,
        live,
        log: writer.log().describe(),
        source_name,
    };
    let mut reader = Lines {
        input: &mut input,
        source_name,
        line_no: 0,
    };
    let mut lines: Vec<(u64, Vec<u8>)> = Vec::with_capacity(INGEST_BATCH_LINES_MAX);
    let mut more = reader.batch(&mut lines)?;
    let mut prepared = prepare_batch(&lines);
    let mut batch_end = reader.line_no;
    loop {
        let recorded_at = clock();
        // A file's next batch is read here and prepared on the pool while
        // this one is decided and appended. A live feed is never read
        // ahead: the batch it has given is recorded before the next line
        // is waited for.
        let read_ahead = (more && !live).then(|| reader.batch(&mut lines));
        let (next, committed) = std::thread::scope(|s| {
            let next = matches!(read_ahead, Some(Ok(_))).then(|| s.spawn(|| prepare_batch(&lines)));
            let committed = flow.commit_batch(
                writer,
                &fees,
                prepared,
                batch_end,
                &recorded_at,
                &mut progress,
            );
            let next = next.map(|h| h.join().expect("preparing a batch does not panic"));
            (next, committed)
        });
        committed?;
        if !more {
            break;
        }
        match read_ahead {
            Some(read) => {
                more = read?;
                prepared = next.expect("a batch read is prepared");
            }
            None => {
                more = reader.batch(&mut lines)?;
                prepared = prepare_batch(&lines);
            }
        }
        batch_end = reader.line_no;
    }
    // The last batch is reported as it settles (or already was, live).
    flow.settle(writer, &mut progress)?;
    Ok(flow.summary)
}

/// Where an ingest stands between batches.
struct Flow<'a> {
    summary: IngestSummary,
    /// Lines up to here are durable.
    committed_line: u64,
    /// The batch the log is appending while the next one is decided: its
    /// last line, and its dead letters, recorded once it is durable.
    in_flight: Option<(u64, Vec<Event>)>,
    live: bool,
    log: String,
    source_name: &'a str,
}

impl Flow<'_> {
    fn publish_err(&self, committed_line: u64, error: WriteError) -> ProducerError {
        ProducerError::Publish {
            log: self.log.clone(),
            error: Box::new(error),
            source_name: self.source_name.to_string(),
            committed_line,
        }
    }

    /// Decides this batch against the write model (which holds every
    /// batch before, the one in flight included), settles the batch in
    /// flight and starts this one's append; a live feed waits for it to be
    /// durable.
    fn commit_batch(
        &mut self,
        writer: &mut Writer,
        fees: &VersionedFees,
        prepared: Vec<(u64, Prepared)>,
        batch_end: u64,
        recorded_at: &Timestamp,
        progress: &mut impl FnMut(&IngestSummary),
    ) -> Result<(), ProducerError> {
        let dead = decide_batch(
            fees,
            writer,
            self.source_name,
            prepared,
            recorded_at,
            &mut self.summary,
        );
        self.settle(writer, progress)?;
        writer
            .start_commit()
            .map_err(|e| self.publish_err(self.committed_line, e))?;
        self.in_flight = Some((batch_end, dead));
        if self.live {
            self.settle(writer, progress)?;
        }
        Ok(())
    }

    /// Waits for the batch in flight to be durable, then records its dead
    /// letters.
    fn settle(
        &mut self,
        writer: &mut Writer,
        progress: &mut impl FnMut(&IngestSummary),
    ) -> Result<(), ProducerError> {
        writer
            .settle()
            .map_err(|e| self.publish_err(self.committed_line, e))?;
        let Some((line, dead)) = self.in_flight.take() else {
            return Ok(());
        };
        writer
            .dead_letter(&dead)
            .map_err(|e| self.publish_err(self.committed_line, e))?;
        self.committed_line = line;
        progress(&self.summary);
        Ok(())
    }
}

/// What `ingest` reads.
pub enum Input<R> {
    /// A file, or anything else that never waits long for its next line.
    File(R),
    /// A feed that may pause between lines (stdin).
    Live(R),
}

/// The input, read a batch of numbered non-blank lines at a time.
struct Lines<'a, R> {
    input: &'a mut R,
    source_name: &'a str,
    line_no: u64,
}

impl<R: BufRead> Lines<'_, R> {
    /// Fills `lines` with up to `INGEST_BATCH_LINES_MAX` lines; false at
    /// the end of the input.
    fn batch(&mut self, lines: &mut Vec<(u64, Vec<u8>)>) -> Result<bool, ProducerError> {
        lines.clear();
        while lines.len() < INGEST_BATCH_LINES_MAX {
            let mut buf = Vec::with_capacity(512);
            let more = read_line(self.input, &mut buf).map_err(|error| ProducerError::Read {
                source_name: self.source_name.to_string(),
                line: self.line_no,
                error,
            })?;
            if !more {
                return Ok(false);
            }
            self.line_no += 1;
            if !buf.iter().all(u8::is_ascii_whitespace) {
                lines.push((self.line_no, buf));
            }
        }
        Ok(true)
    }
}

/// Decides a batch of lines: the stateless checks (JSON, masking, digest,
/// field types) in parallel, then the decisions that read the ledger in
/// input order, staging accepted events. Returns the batch's dead letters.
/// The stateless half of deciding a batch, on every core: each line
/// parsed and checked on its own.
fn prepare_batch(lines: &[(u64, Vec<u8>)]) -> Vec<(u64, Prepared)> {
    use rayon::prelude::*;
    lines
        .par_iter()
        .with_min_len(64)
        .map(|(n, bytes)| (*n, prepare_line(bytes)))
        .collect()
}

/// The stateful half: each prepared line decided against the write model
/// in file order, its events staged. Returns the dead letters.
fn decide_batch(
    fees: &VersionedFees,
    writer: &mut Writer,
    source_name: &str,
    prepared: Vec<(u64, Prepared)>,
    recorded_at: &Timestamp,
    summary: &mut IngestSummary,
) -> Vec<Event> {
    let mut dead = Vec::new();
    for (n, p) in prepared {
        let line = Line {
            source_name,
            line_no: n,
            recorded_at,
        };
        if let Some(d) = decide_line(fees, writer, &line, p, summary) {
            dead.push(d);
        }
    }
    dead
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
        mask_all: false,
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

/// Where a line came from and when it is recorded.
struct Line<'a> {
    source_name: &'a str,
    line_no: u64,
    recorded_at: &'a Timestamp,
}

/// Decides one prepared line: stages its event, counts a duplicate, or
/// returns its dead letter.
fn decide_line(
    fees: &VersionedFees,
    writer: &mut Writer,
    line: &Line<'_>,
    p: Prepared,
    summary: &mut IngestSummary,
) -> Option<Event> {
    let outcome = match p.outcome {
        Ok(prepared) => decide_prepared(
            writer.reference(),
            fees,
            writer.txns(),
            line.recorded_at,
            prepared,
        ),
        Err(r) => Outcome::Rejected(r),
    };
    match outcome {
        Outcome::Accepted(event) => {
            writer.stage(*event);
            summary.accepted += 1;
            None
        }
        Outcome::Duplicate => {
            summary.duplicates += 1;
            None
        }
        Outcome::Rejected(r) => Some(rejected(line, &p.text, r, summary)),
    }
}

/// Counts a rejected line and builds its dead letter, card numbers masked.
fn rejected(line: &Line<'_>, text: &str, r: Rejection, summary: &mut IngestSummary) -> Event {
    *summary.rejected.entry(r.reason.as_str()).or_insert(0) += 1;
    if summary.first_rejects.len() < REJECTS_LISTED_MAX {
        summary.first_rejects.push(RejectedLine {
            line: line.line_no,
            reason: r.reason,
            field: r.field,
            detail: r.detail.clone(),
        });
    }
    let raw = r.masked_raw(text);
    tracing::debug!(
        line = line.line_no,
        reason = r.reason.as_str(),
        field = r.field,
        "record rejected"
    );
    Event::record_rejected(
        RecordRejected {
            source: line.source_name.to_string(),
            line: line.line_no,
            position: None,
            raw,
            reason: r.reason,
            field: r.field.map(str::to_string),
            detail: r.detail,
        },
        line.recorded_at,
    )
}
