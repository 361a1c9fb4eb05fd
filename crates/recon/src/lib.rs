//! Reconciliation runs (SPEC §8, §11): the channel's clearing file for a
//! business date, streamed line by line, against the ledger's side of that
//! date and the items the previous date's run held.
//!
//! Layout: `reader` streams and validates the file (CSV or the
//! UnionPay-style fixed-width layout); `ledger_side` turns the projection's
//! transaction index into what the channel should report; `reconcile` runs
//! the core matcher and decides the events that record the result (one per
//! break, then the run's summary with its held pool), once per (date, file
//! content). Recording them is the caller's (the application's writer).

pub mod reader;

use std::io::Read;

use chrono::{Days, NaiveDate, NaiveTime};
use clearing_core::calendar::is_near_cutoff_local;
use clearing_core::hashing::Hashing;
use clearing_core::recon::{
    Counts, Finding, HeldItem, LedgerItem, LedgerStatus, MatchKey, Matcher, ReconType,
    ReconciliationBreak, ReconciliationRun,
};
use clearing_core::{Event, Fen, Timestamp, TxnResult, TxnType};
use clearing_projector::{Projector, ReconEntry};
use compact_str::CompactString;

pub use reader::{BadLine, FileError, Layout};

/// Bad lines kept for the report; all are counted.
pub const BAD_LINES_LISTED_MAX: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{file}: {other} of {dated} dated lines name another business date than --date {date} (e.g. {example}); is this the file for {date}?")]
    WrongDate {
        file: String,
        date: NaiveDate,
        other: u64,
        dated: u64,
        example: NaiveDate,
    },
    #[error("no fee schedule is recorded yet, so the cutoff is unknown: run `clearing fees load FILE` first")]
    NoSchedule,
    #[error("reading the projections: {0}")]
    Projector(#[from] clearing_projector::ProjectorError),
}

/// What a run found, as reported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub business_date: NaiveDate,
    pub file: String,
    pub file_sha256: String,
    pub layout: String,
    /// Non-blank lines after the header.
    pub lines: u64,
    pub bad_lines: u64,
    /// The first `BAD_LINES_LISTED_MAX` bad lines.
    pub bad: Vec<BadLine>,
    pub counts: Counts,
    pub breaks: Vec<Finding>,
    pub held: Vec<HeldItem>,
    /// Items the previous date's run held, taken over by this run.
    pub carried_in: u64,
    /// This file was already reconciled for this date: the result is the
    /// one recorded then, and nothing new was recorded.
    pub already_recorded: bool,
}

/// How the ledger holds each sale and refund of a date's index.
pub fn ledger_side(segments: Vec<Vec<ReconEntry>>, cutoff: NaiveTime) -> Vec<LedgerItem> {
    let items = ledger_items(segments, cutoff);
    let mut out = Vec::with_capacity(items.size_hint().1.unwrap_or(0));
    out.extend(items);
    out
}

/// `ledger_side` one item at a time, for a matcher to take in without a
/// list of them all beside its own.
pub fn ledger_items(
    segments: Vec<Vec<ReconEntry>>,
    cutoff: NaiveTime,
) -> impl Iterator<Item = LedgerItem> {
    // Voids and reversals are few: their originals' ids are copied.
    let mut cancelled: std::collections::HashMap<String, LedgerStatus> = Default::default();
    for e in segments.iter().flatten() {
        if e.result == TxnResult::Approved {
            let status = match e.txn_type {
                TxnType::Void => LedgerStatus::Voided,
                TxnType::Reversal => LedgerStatus::Reversed,
                _ => continue,
            };
            if let Some(o) = &e.original_txn_id {
                cancelled.insert(o.clone(), status);
            }
        }
    }
    let entries = segments.iter().map(Vec::len).sum();
    let items = segments.into_iter().flatten().filter_map(move |e| {
        let txn_type = ReconType::of(e.txn_type)?;
        let status = match (e.result, cancelled.get(e.txn_id.as_str())) {
            (TxnResult::Declined, _) => LedgerStatus::Declined,
            (TxnResult::Approved, Some(s)) => *s,
            (TxnResult::Approved, None) => LedgerStatus::Approved,
        };
        let near_cutoff = NaiveTime::from_num_seconds_from_midnight_opt(e.local_seconds, 0)
            .is_some_and(|t| is_near_cutoff_local(t, cutoff));
        Some(LedgerItem {
            txn_id: e.txn_id,
            merchant_id: e.merchant_id,
            key: MatchKey {
                terminal_id: e.terminal_id,
                rrn: e.rrn,
                txn_type,
            },
            amount: Fen(e.amount_fen),
            fee: Fen(e.fee_fen),
            status,
            near_cutoff,
        })
    });
    AtMost {
        inner: items,
        left: entries,
    }
}

/// An iterator that knows how many items it yields at most, so that what
/// collects them (a million items of ~150 bytes) makes room once instead
/// of growing and copying.
struct AtMost<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for AtMost<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// What the latest run of the previous date held, each with its status on
/// the ledger now.
pub fn held_in(
    projector: &Projector,
    date: NaiveDate,
    cutoff: NaiveTime,
) -> Result<Vec<(HeldItem, LedgerStatus)>, ReconError> {
    let Some(previous) = date.checked_sub_days(Days::new(1)) else {
        return Ok(Vec::new());
    };
    let Some(run) = projector.recon_latest(previous)? else {
        return Ok(Vec::new());
    };
    let held = run.value.held;
    if held.is_empty() {
        return Ok(held
            .into_iter()
            .map(|h| (h, LedgerStatus::Approved))
            .collect());
    }
    let now: std::collections::HashMap<CompactString, LedgerStatus> =
        ledger_side(projector.recon_entries(previous)?, cutoff)
            .into_iter()
            .map(|i| (i.txn_id, i.status))
            .collect();
    Ok(held
        .into_iter()
        .map(|h| {
            let status = now
                .get(&h.txn_id)
                .copied()
                .unwrap_or(LedgerStatus::Approved);
            (h, status)
        })
        .collect())
}

/// What streaming one file through the matcher gives.
pub struct Matched {
    pub outcome: clearing_core::recon::Outcome,
    pub file_sha256: String,
    pub lines: u64,
    pub bad_lines: u64,
    pub bad: Vec<BadLine>,
}

/// Parsed lines handed from the reading thread to the matching one at a
/// time, and how many such chunks may wait: the file is read ahead while
/// the matcher is built, by up to about 260,000 lines (~45 MB).
const CHUNK_LINES: usize = 4096;
const CHUNKS_AHEAD: usize = 64;

/// Streams `input` through the matcher `build` gives. Lines dated another
/// day than `date` are bad lines (`business_date`); when they are most of
/// the dated lines, the file is refused.
///
/// The file is read and parsed on this thread while another builds the
/// matcher and then classifies the lines in file order, so a run costs
/// about the longer of the two, not their sum. An error building the
/// matcher comes before any error of the file's, as when done in turn.
pub fn match_file<R: Read>(
    file: &str,
    input: R,
    layout: Layout,
    date: NaiveDate,
    build: impl FnOnce() -> Result<Matcher, ReconError> + Send,
) -> Result<Matched, ReconError> {
    let mut hashing = Hashing::new(input);
    let (matched, read) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<reader::Parsed>>(CHUNKS_AHEAD);
        // Emptied chunks go back to the reader to be filled again: fresh
        // ones would each be memory the kernel must zero first.
        let (give_back, reuse) = std::sync::mpsc::sync_channel::<Vec<reader::Parsed>>(CHUNKS_AHEAD);
        let matching = s.spawn(move || -> Result<Classified, ReconError> {
            let mut c = Classified::new(build()?);
            for mut chunk in rx {
                for parsed in chunk.drain(..) {
                    c.take(parsed, date);
                }
                // The reader may be done and gone: the chunk is then freed.
                let _ = give_back.try_send(chunk);
            }
            Ok(c)
        });
        let read = (|| -> Result<(), ReconError> {
            let mut reader = reader::ChannelReader::new(file, &mut hashing, layout, date)?;
            loop {
                let mut chunk = reuse
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(CHUNK_LINES));
                while chunk.len() < CHUNK_LINES {
                    match reader.next_line()? {
                        Some(parsed) => chunk.push(parsed),
                        None => break,
                    }
                }
                let last = chunk.len() < CHUNK_LINES;
                // A send fails only when the matcher could not be built:
                // its error is the one reported.
                if tx.send(chunk).is_err() || last {
                    return Ok(());
                }
            }
        })();
        drop(tx);
        let matched = matching
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (matched, read)
    });
    let Classified {
        matcher,
        lines,
        bad_lines,
        bad,
        other,
        dated,
        example,
    } = matched?;
    read?;
    if other * 2 > dated {
        return Err(ReconError::WrongDate {
            file: file.to_string(),
            date,
            other,
            dated,
            example: example.expect("some line names another date"),
        });
    }
    // Whatever the reader left unread still belongs to the file's digest.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|source| FileError::Io {
        file: file.to_string(),
        source,
    })?;
    let file_sha256 = clearing_core::hex::encode(&hashing.take_sum());
    Ok(Matched {
        outcome: matcher.finish(),
        file_sha256,
        lines,
        bad_lines,
        bad,
    })
}

/// The matcher with what the lines fed to it so far counted.
struct Classified {
    matcher: Matcher,
    lines: u64,
    bad_lines: u64,
    bad: Vec<BadLine>,
    /// Lines dated another day than the run's, of `dated` lines dated.
    other: u64,
    dated: u64,
    example: Option<NaiveDate>,
}

impl Classified {
    fn new(matcher: Matcher) -> Classified {
        Classified {
            matcher,
            lines: 0,
            bad_lines: 0,
            bad: Vec::new(),
            other: 0,
            dated: 0,
            example: None,
        }
    }

    fn note_bad(&mut self, b: BadLine) {
        self.bad_lines += 1;
        if self.bad.len() < BAD_LINES_LISTED_MAX {
            self.bad.push(b);
        }
    }

    /// One line, in file order.
    fn take(&mut self, parsed: reader::Parsed, date: NaiveDate) {
        self.lines += 1;
        match parsed {
            reader::Parsed::Bad(b) => self.note_bad(b),
            reader::Parsed::Line(l) => {
                if let Some(d) = l.business_date {
                    self.dated += 1;
                    if d != date {
                        self.other += 1;
                        self.example.get_or_insert(d);
                        return self.note_bad(BadLine {
                            line: l.line,
                            field: "business_date".to_string(),
                            detail: format!("{d} is not the file's date {date}"),
                        });
                    }
                }
                self.matcher.line(&l);
            }
        }
    }
}

/// A run's result, and the events that record it (none when this file was
/// already reconciled for this date).
pub struct Reconciled {
    pub report: Report,
    pub events: Vec<Event>,
}

/// Reconciles one clearing file for `date` against the projections, which
/// must be caught up. A file already reconciled for this date gives the
/// result recorded then, and nothing to record; otherwise the events to
/// record, the breaks first and the run last. `cutoff` is the fee
/// schedule's.
#[allow(clippy::too_many_arguments)]
pub fn reconcile<R: Read>(
    projector: &Projector,
    cutoff: NaiveTime,
    file: &str,
    input: R,
    layout: Layout,
    date: NaiveDate,
    recorded_at: &Timestamp,
) -> Result<Reconciled, ReconError> {
    let mut carried_in = 0u64;
    let m = match_file(file, input, layout, date, || {
        let ledger = ledger_items(projector.recon_entries(date)?, cutoff);
        let carried = held_in(projector, date, cutoff)?;
        carried_in = carried.len() as u64;
        Ok(Matcher::new(date, ledger, carried))
    })?;

    if let Some(run) = projector.recon_run(date, &m.file_sha256)? {
        let breaks = projector.recon_breaks(date, &m.file_sha256)?;
        let run = run.value;
        let report = Report {
            business_date: date,
            file: file.to_string(),
            file_sha256: m.file_sha256,
            layout: run.layout,
            lines: run.lines,
            bad_lines: run.bad_lines,
            bad: m.bad,
            counts: run.counts,
            breaks: breaks.into_iter().map(|b| b.value.finding).collect(),
            held: run.held,
            carried_in,
            already_recorded: true,
        };
        return Ok(Reconciled {
            report,
            events: Vec::new(),
        });
    }

    let mut events: Vec<Event> = m
        .outcome
        .breaks
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let b = ReconciliationBreak {
                business_date: date,
                file_sha256: m.file_sha256.clone(),
                index: i as u64,
                finding: f.clone(),
            };
            Event::reconciliation_break(b, recorded_at)
        })
        .collect();
    let run = ReconciliationRun {
        business_date: date,
        file: file.to_string(),
        file_sha256: m.file_sha256.clone(),
        layout: layout.as_str().to_string(),
        lines: m.lines,
        bad_lines: m.bad_lines,
        counts: m.outcome.counts.clone(),
        breaks: m.outcome.breaks.len() as u64,
        held: m.outcome.held.clone(),
    };
    events.push(Event::reconciliation_run(run, recorded_at));
    let report = Report {
        business_date: date,
        file: file.to_string(),
        file_sha256: m.file_sha256,
        layout: layout.as_str().to_string(),
        lines: m.lines,
        bad_lines: m.bad_lines,
        bad: m.bad,
        counts: m.outcome.counts,
        breaks: m.outcome.breaks,
        held: m.outcome.held,
        carried_in,
        already_recorded: false,
    };
    Ok(Reconciled { report, events })
}
