//! `export hledger`: the day's postings as a plain-text accounting journal:
//! the records of the business date, the adjustments of its breaks, and
//! the paid lines of the payout batch of that date.

use std::io::Write;

use chrono::NaiveDate;
use clearing_core::payout::{LineStatus, PayeeType};
use clearing_core::postings::{intermediary_payable, merchant_payable, Posting};
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
    written += adjustments(p, date, out)?;
    written += payouts(p, date, out)?;
    Ok(written)
}

/// The adjustments `channel` decisions recorded for breaks of `date`.
fn adjustments(p: &Projector, date: NaiveDate, out: &mut dyn Write) -> Result<u64, AppError> {
    let mut written = 0;
    for r in p.resolutions(date)? {
        let v = &r.value;
        let Some(a) = &v.adjustment else { continue };
        writeln!(
            out,
            "{date} * adjustment {} {} {} {}  ; position:{}, merchant:{}, operator:{}, payout:{}",
            v.category,
            v.key.terminal_id,
            v.key.rrn,
            v.key.txn_type,
            r.position,
            a.merchant_id,
            v.operator,
            a.payout_date
        )?;
        postings(out, &a.entry.postings, false)?;
        postings(out, &a.entry.sub_ledger, true)?;
        writeln!(out)?;
        written += 1;
    }
    Ok(written)
}

/// The lines of the payout batch of `date` the bank has paid: each debits
/// the payee's payable and credits the bank.
fn payouts(p: &Projector, date: NaiveDate, out: &mut dyn Write) -> Result<u64, AppError> {
    let mut written = 0;
    for b in p.payout_batches()? {
        if b.payout_date() != date {
            continue;
        }
        let statuses = b.line_statuses();
        for l in &b.prepared.value.lines {
            if statuses[&l.payee] != LineStatus::Paid {
                continue;
            }
            let payable = match l.payee.payee_type {
                PayeeType::Merchant => merchant_payable(&l.payee.payee_id),
                PayeeType::Intermediary => intermediary_payable(&l.payee.payee_id),
            };
            let amount = l.amount;
            let entry = [
                Posting {
                    account: payable,
                    amount,
                },
                Posting {
                    account: BANK_ACCOUNT.to_string(),
                    amount: amount.checked_neg()?,
                },
            ];
            writeln!(
                out,
                "{date} * payout {} {}  ; batch:{date}, position:{}",
                l.payee.payee_type, l.payee.payee_id, b.prepared.position
            )?;
            postings(out, &entry, false)?;
            writeln!(out)?;
            written += 1;
        }
    }
    Ok(written)
}

/// The account payouts leave from.
pub const BANK_ACCOUNT: &str = "assets:bank:settlement";

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
