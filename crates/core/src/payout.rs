//! Payouts (SPEC §13): who a record's money is paid to, what a batch pays,
//! and the bank's answer. Pure: the application layer reads the
//! contributions from the projections and records what these rules decide.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::events::RowKey;
use crate::money::{Fen, Overflow};
use crate::position::{Positions, Recorded};
use crate::registry::Clearing;

crate::wire_enum! {
    /// Who a payout line pays: a first-party merchant itself, or the
    /// intermediary of second-party merchants. Declared in the order of
    /// their names: lines sort by `payee_type, payee_id`.
    pub enum PayeeType {
        Intermediary = "intermediary",
        Merchant = "merchant",
    }
}

crate::wire_enum! {
    /// Where a payout line stands.
    pub enum LineStatus {
        Pending = "pending",
        Paid = "paid",
        Failed = "failed",
    }
}

crate::wire_enum! {
    /// What the bank's return file says of a line.
    pub enum BankStatus {
        Paid = "paid",
        Failed = "failed",
    }
}

crate::wire_enum! {
    /// Where a batch stands (SPEC §13).
    pub enum BatchStatus {
        Prepared = "prepared",
        Approved = "approved",
        Exported = "exported",
    }
}

/// The party a payout line pays.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payee {
    pub payee_type: PayeeType,
    pub payee_id: String,
}

impl Payee {
    /// The payee of money routed `clearing` (via `intermediary_id`) for
    /// `merchant_id`.
    pub fn of_route(merchant_id: &str, clearing: Clearing, intermediary_id: Option<&str>) -> Payee {
        match (clearing, intermediary_id) {
            (Clearing::SecondParty, Some(i)) => Payee {
                payee_type: PayeeType::Intermediary,
                payee_id: i.to_string(),
            },
            _ => Payee {
                payee_type: PayeeType::Merchant,
                payee_id: merchant_id.to_string(),
            },
        }
    }

    /// The payee of a settlement row: route and cycle are the row's.
    pub fn of_row(row: &RowKey) -> Payee {
        Payee::of_route(
            &row.merchant_id,
            row.clearing,
            row.intermediary_id.as_deref(),
        )
    }
}

impl std::fmt::Display for Payee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.payee_type.as_str(), self.payee_id)
    }
}

/// A payee and an amount (what a batch took, or carried).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayeeAmount {
    #[serde(flatten)]
    pub payee: Payee,
    pub amount: Fen,
}

/// One line of a batch: a positive amount to pay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutLine {
    #[serde(flatten)]
    pub payee: Payee,
    pub name: String,
    pub account: String,
    pub amount: Fen,
}

/// `PayoutBatchPrepared`: the batch of a payout date as its preparer
/// recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutBatchPrepared {
    #[serde(with = "crate::dates")]
    pub payout_date: NaiveDate,
    pub prepared_by: String,
    /// The log position the contributions were read at: every record
    /// before it with payout date ≤ the batch's is taken by now.
    pub log_position: Positions,
    /// Per payee, the sum of every contribution taken by this batch and
    /// all before it.
    pub taken: Vec<PayeeAmount>,
    /// Sorted by payee.
    pub lines: Vec<PayoutLine>,
    /// The deficits this batch passes on to the next (negative), by payee.
    pub carried: Vec<PayeeAmount>,
}

/// `PayoutBatchApproved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutBatchApproved {
    #[serde(with = "crate::dates")]
    pub payout_date: NaiveDate,
    pub approved_by: String,
}

/// `PayoutBatchExported`: the first export of an approved batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutBatchExported {
    #[serde(with = "crate::dates")]
    pub payout_date: NaiveDate,
    pub exported_by: Option<String>,
    /// SHA-256 of the file as written.
    pub file_sha256: String,
}

/// One accepted line of a bank return file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BankLine {
    #[serde(flatten)]
    pub payee: Payee,
    pub amount: Fen,
    pub status: BankStatus,
    pub reason: String,
}

/// A line of a bank return file that changed nothing, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BadBankLine {
    pub line: u64,
    pub payee_id: String,
    pub reason: String,
}

/// `PayoutResultRecorded`: a bank return file, once per content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutResultRecorded {
    #[serde(with = "crate::dates")]
    pub payout_date: NaiveDate,
    pub recorded_by: Option<String>,
    pub file: String,
    pub file_sha256: String,
    /// The lines that settled a pending line.
    pub lines: Vec<BankLine>,
    /// Lines naming a line the bank had already settled: changed nothing.
    pub already_settled: Vec<BankLine>,
    pub bad_lines: Vec<BadBankLine>,
}

/// What a batch pays and carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub lines: BTreeMap<Payee, Fen>,
    pub carried: BTreeMap<Payee, Fen>,
}

/// The rule of SPEC §13, in one sum: a payee's batch amount is everything
/// it has been owed up to this batch (`taken`: every contribution with
/// payout date ≤ the batch's, recorded before it) less every earlier line
/// that was not failed. That is the new contributions, plus failed lines
/// not yet paid again, plus the deficit carried from its previous batch.
/// A positive amount is a line; a negative one is carried.
pub fn plan_batch<'a>(
    taken: &BTreeMap<Payee, Fen>,
    earlier: impl IntoIterator<Item = (&'a Payee, Fen, LineStatus)>,
) -> Result<Plan, Overflow> {
    let mut balance = taken.clone();
    for (payee, amount, status) in earlier {
        if status != LineStatus::Failed {
            let b = balance.entry(payee.clone()).or_default();
            *b = b.checked_sub(amount)?;
        }
    }
    let mut plan = Plan::default();
    for (payee, amount) in balance {
        if amount > Fen::ZERO {
            plan.lines.insert(payee, amount);
        } else if amount < Fen::ZERO {
            plan.carried.insert(payee, amount);
        }
    }
    Ok(plan)
}

/// The status of each line of `batch` after the bank files recorded for
/// it, oldest first: the first answer for a line stands.
pub fn line_statuses<'a>(
    batch: &PayoutBatchPrepared,
    results: impl IntoIterator<Item = &'a PayoutResultRecorded>,
) -> BTreeMap<Payee, LineStatus> {
    let mut out: BTreeMap<Payee, LineStatus> = batch
        .lines
        .iter()
        .map(|l| (l.payee.clone(), LineStatus::Pending))
        .collect();
    for r in results {
        for l in &r.lines {
            if let Some(s) = out.get_mut(&l.payee) {
                if *s == LineStatus::Pending {
                    *s = match l.status {
                        BankStatus::Paid => LineStatus::Paid,
                        BankStatus::Failed => LineStatus::Failed,
                    };
                }
            }
        }
    }
    out
}

/// The header row of a payout export.
pub const EXPORT_HEADER: &str = "payout_date,payee_type,payee_id,name,account,amount";
/// The header row of a bank return file.
pub const BANK_HEADER: &str = "payee_type,payee_id,amount,status,reason";

/// What a bank file does to its batch: the lines that settle a pending
/// line, those naming an already settled one, and the bad lines.
pub type CheckedBankFile = (Vec<BankLine>, Vec<BankLine>, Vec<BadBankLine>);

/// A bank return file checked against its batch's lines as they stand:
/// the lines that settle a pending line, those naming an already settled
/// one, and the bad lines with their reasons. `Err` is a file that is not
/// a bank return file at all (its header).
pub fn check_bank_file(
    text: &str,
    batch: &PayoutBatchPrepared,
    statuses: &BTreeMap<Payee, LineStatus>,
) -> Result<CheckedBankFile, String> {
    let mut rows = text.lines().enumerate();
    let header = rows.next().map(|(_, h)| h.trim_end_matches('\r'));
    if header != Some(BANK_HEADER) {
        return Err(format!(
            "line 1: the header must be {BANK_HEADER:?}, found {:?}",
            header.unwrap_or("")
        ));
    }
    let amounts: BTreeMap<&Payee, Fen> = batch.lines.iter().map(|l| (&l.payee, l.amount)).collect();
    let mut seen = BTreeMap::new();
    let (mut settle, mut settled, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for (i, row) in rows {
        let row = row.trim_end_matches('\r');
        if row.trim().is_empty() {
            continue;
        }
        let line_no = i as u64 + 1;
        let fields: Vec<&str> = row.splitn(5, ',').collect();
        let payee_id = fields.get(1).copied().unwrap_or("").to_string();
        match bank_line(&fields, &amounts) {
            Err(reason) => bad.push(BadBankLine {
                line: line_no,
                payee_id,
                reason,
            }),
            Ok(l) if seen.insert(l.payee.clone(), line_no).is_some() => bad.push(BadBankLine {
                line: line_no,
                payee_id,
                reason: format!("{} is named twice in this file", l.payee),
            }),
            Ok(l) if statuses.get(&l.payee) == Some(&LineStatus::Pending) => settle.push(l),
            Ok(l) => settled.push(l),
        }
    }
    Ok((settle, settled, bad))
}

fn bank_line(fields: &[&str], amounts: &BTreeMap<&Payee, Fen>) -> Result<BankLine, String> {
    if fields.len() < 4 {
        return Err(format!(
            "expected 5 fields ({BANK_HEADER}), found {}",
            fields.len()
        ));
    }
    let payee_type = PayeeType::parse(fields[0])
        .ok_or_else(|| format!("payee_type {:?} is not merchant or intermediary", fields[0]))?;
    let payee = Payee {
        payee_type,
        payee_id: fields[1].to_string(),
    };
    let Some(&owed) = amounts.get(&payee) else {
        return Err(format!("{payee} has no line in this batch"));
    };
    let amount =
        Fen::parse_unsigned(fields[2]).map_err(|e| format!("amount {:?}: {e}", fields[2]))?;
    if amount != owed {
        return Err(format!(
            "amount {amount} is not the line's amount {owed} for {payee}"
        ));
    }
    let status = BankStatus::parse(fields[3])
        .ok_or_else(|| format!("status {:?} is not paid or failed", fields[3]))?;
    Ok(BankLine {
        payee,
        amount,
        status,
        reason: fields.get(4).copied().unwrap_or("").to_string(),
    })
}

/// The payout export of a batch: the header, then one row per line, sorted
/// by payee (the batch's order).
pub fn export_csv(batch: &PayoutBatchPrepared) -> String {
    let mut out = format!("{EXPORT_HEADER}\n");
    for l in &batch.lines {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            batch.payout_date,
            l.payee.payee_type.as_str(),
            l.payee.payee_id,
            csv_field(&l.name),
            csv_field(&l.account),
            l.amount
        ));
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A batch as the log has it: its events, each with where and when it was
/// recorded; the bank files oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Batch {
    pub prepared: Recorded<PayoutBatchPrepared>,
    pub approved: Option<Recorded<PayoutBatchApproved>>,
    pub exported: Option<Recorded<PayoutBatchExported>>,
    pub results: Vec<Recorded<PayoutResultRecorded>>,
}

impl Batch {
    pub fn status(&self) -> BatchStatus {
        match (&self.approved, &self.exported) {
            (_, Some(_)) => BatchStatus::Exported,
            (Some(_), None) => BatchStatus::Approved,
            (None, None) => BatchStatus::Prepared,
        }
    }

    pub fn payout_date(&self) -> NaiveDate {
        self.prepared.value.payout_date
    }

    /// Each line's status after the bank files recorded so far.
    pub fn line_statuses(&self) -> BTreeMap<Payee, LineStatus> {
        line_statuses(&self.prepared.value, self.results.iter().map(|r| &r.value))
    }
}

#[cfg(test)]
mod tests;
