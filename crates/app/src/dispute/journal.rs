//! `export hledger`: the day's postings as a plain-text accounting journal.

use std::io::Write;

use chrono::NaiveDate;
use clearing_core::postings::Posting;
use clearing_core::{EventBody, Position};
use clearing_log::EventLog;
use clearing_projector::{Projector, TxnEntry};

use super::{decode_at, events_at, take_record};
use crate::error::AppError;

/// Records read from the log at a time: a day can hold millions.
const JOURNAL_WINDOW_RECORDS: usize = 16_384;

/// Writes the journal of business date `date`: one transaction per record
/// that moves money, in log order; the intermediary's sub-ledger (二清) as
/// balanced virtual postings. Returns the transactions written.
pub fn hledger_journal(
    p: &Projector,
    log: &dyn EventLog,
    date: NaiveDate,
    out: &mut dyn Write,
) -> Result<u64, AppError> {
    writeln!(
        out,
        "; clearing ledger postings of business date {date}, from {}",
        log.describe()
    )?;
    writeln!(out, "commodity 1,000.00 CNY\n")?;
    let positions: Vec<Position> = p
        .txns_on(date)?
        .into_iter()
        .filter(|t: &TxnEntry| t.settlement.is_some())
        .map(|t| t.position)
        .collect();
    let mut written = 0;
    for window in positions.chunks(JOURNAL_WINDOW_RECORDS) {
        let mut records = events_at(log, window)?;
        for &pos in window {
            let record = take_record(&mut records, pos, log)?;
            let EventBody::TransactionRecorded(txn) = decode_at(&record, pos)?.body else {
                return Err(AppError::storage(format!(
                    "the event at {pos} is not a transaction"
                )));
            };
            if txn.entry.is_empty() {
                continue;
            }
            writeln!(
                out,
                "{date} * {} {} {}  ; position:{pos}, merchant:{}, rrn:{}",
                txn.txn_type.as_str(),
                txn.txn_id,
                txn.merchant_id,
                txn.merchant_id,
                txn.rrn
            )?;
            postings(out, &txn.entry.postings, false)?;
            postings(out, &txn.entry.sub_ledger, true)?;
            writeln!(out)?;
            written += 1;
        }
    }
    Ok(written)
}

/// One journal line per posting; virtual (bracketed) for a sub-ledger.
fn postings(out: &mut dyn Write, ps: &[Posting], virtual_: bool) -> std::io::Result<()> {
    for posting in ps {
        let account = if virtual_ {
            format!("[{}]", posting.account)
        } else {
            posting.account.clone()
        };
        writeln!(out, "    {account:<60}  {} CNY", posting.amount)?;
    }
    Ok(())
}
