//! Payouts (SPEC §13): preparing a payout date's batch, approving it (by
//! someone else), exporting it for the bank, and recording the bank's
//! return file; and the payout report. Every step is an event.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use clearing_core::money::Fen;
use clearing_core::payout::{
    check_bank_file, export_csv, plan_batch, Batch, BatchStatus, LineStatus, Payee, PayeeAmount,
    PayeeType, PayoutBatchApproved, PayoutBatchExported, PayoutBatchPrepared, PayoutLine,
    PayoutResultRecorded,
};
use clearing_core::registry::Reference;
use clearing_core::Event;
use clearing_projector::Projector;
use serde::Serialize;

use crate::error::{AppError, Context};
use crate::read::ReadLedger;
use crate::record::{Named, Recorder};

/// One line of `report payout`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutLineView {
    pub payee_type: PayeeType,
    pub payee_id: String,
    pub amount: Fen,
    pub status: LineStatus,
}

/// A deficit passed on to the next batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CarriedView {
    pub payee_type: PayeeType,
    pub payee_id: String,
    pub amount: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutTotals {
    pub lines: u64,
    pub amount: Fen,
}

/// `clearing report payout --format json` (SPEC §13), exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutView {
    pub payout_date: NaiveDate,
    pub status: BatchStatus,
    pub prepared_by: String,
    pub approved_by: Option<String>,
    pub lines: Vec<PayoutLineView>,
    pub carried: Vec<CarriedView>,
    pub totals: PayoutTotals,
}

impl PayoutView {
    pub fn of(b: &Batch) -> Result<PayoutView, AppError> {
        let statuses = b.line_statuses();
        let p = &b.prepared.value;
        let mut amount = Fen::ZERO;
        for l in &p.lines {
            amount = amount.checked_add(l.amount)?;
        }
        Ok(PayoutView {
            payout_date: p.payout_date,
            status: b.status(),
            prepared_by: p.prepared_by.clone(),
            approved_by: b.approved.as_ref().map(|a| a.value.approved_by.clone()),
            lines: p
                .lines
                .iter()
                .map(|l| PayoutLineView {
                    payee_type: l.payee.payee_type,
                    payee_id: l.payee.payee_id.clone(),
                    amount: l.amount,
                    status: statuses[&l.payee],
                })
                .collect(),
            carried: p
                .carried
                .iter()
                .map(|c| CarriedView {
                    payee_type: c.payee.payee_type,
                    payee_id: c.payee.payee_id.clone(),
                    amount: c.amount,
                })
                .collect(),
            totals: PayoutTotals {
                lines: p.lines.len() as u64,
                amount,
            },
        })
    }
}

/// A bad line of a bank file, as `payout result` names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BadBankLineView {
    pub line: u64,
    pub payee_id: String,
    pub reason: String,
}

/// `clearing payout result --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BankResultView {
    pub payout_date: NaiveDate,
    pub file_sha256: String,
    /// False when this file was already recorded: nothing changed.
    pub recorded: bool,
    pub paid: u64,
    pub failed: u64,
    pub already_settled: u64,
    pub bad_lines: Vec<BadBankLineView>,
    /// The batch after the file.
    pub batch: PayoutView,
}

fn operator(name: &str, option: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::input(format!("{option} must not be empty")));
    }
    Ok(name.to_string())
}

fn batch_of(p: &Projector, date: NaiveDate) -> Result<Batch, AppError> {
    p.payout_batches()?
        .into_iter()
        .find(|b| b.payout_date() == date)
        .ok_or_else(|| AppError::not_found(format!("no payout batch is prepared for {date}")))
}

/// Per payee, every contribution with payout date ≤ `date` the
/// projections hold: settlement rows' nets and adjustments.
fn taken(p: &Projector, date: NaiveDate) -> Result<BTreeMap<Payee, Fen>, AppError> {
    let mut out: BTreeMap<Payee, Fen> = BTreeMap::new();
    let mut add = |payee: Payee, amount: Fen| -> Result<(), AppError> {
        let t = out.entry(payee).or_default();
        *t = t.checked_add(amount).context("payout sums overflow")?;
        Ok(())
    };
    for (row, d) in p.all_settlement_rows()? {
        if row.payout_date <= date {
            let net = d
                .sales_amount
                .checked_sub(d.refund_amount)?
                .checked_sub(d.fee)?;
            add(Payee::of_row(&row), net)?;
        }
    }
    for r in p.all_resolutions()? {
        if let Some(a) = &r.value.adjustment {
            if a.payout_date <= date {
                add(a.payee(), a.amount)?;
            }
        }
    }
    Ok(out)
}

/// The name and account a payee is paid under, as the registry has them.
fn account_of(reference: &Reference, payee: &Payee) -> (String, String) {
    match payee.payee_type {
        PayeeType::Merchant => reference
            .merchants
            .get(&payee.payee_id)
            .map(|m| (m.value.name.clone(), m.value.settlement_account.clone())),
        PayeeType::Intermediary => reference
            .intermediaries
            .get(&payee.payee_id)
            .map(|i| (i.value.name.clone(), i.value.settlement_account.clone())),
    }
    .unwrap_or_default()
}

impl Recorder {
    /// `payout prepare`: records the batch of payout date `date`; the last
    /// batch's own date returns that batch and records nothing.
    pub fn prepare_payout(&mut self, date: NaiveDate, by: &str) -> Result<PayoutView, AppError> {
        let by = operator(by, "--operator")?;
        let mut p = self.caught_up_projector()?;
        let batches = p.payout_batches()?;
        if let Some(last) = batches.last() {
            if date < last.payout_date() {
                return Err(AppError::conflict(format!(
                    "payout batches are prepared in date order: the last batch is for {}, and {date} is before it",
                    last.payout_date()
                )));
            }
            if date == last.payout_date() {
                return PayoutView::of(last);
            }
        }
        let taken = taken(&p, date)?;
        let earlier: Vec<(Payee, Fen, LineStatus)> = batches
            .iter()
            .flat_map(|b| {
                let st = b.line_statuses();
                b.prepared
                    .value
                    .lines
                    .iter()
                    .map(move |l| (l.payee.clone(), l.amount, st[&l.payee]))
                    .collect::<Vec<_>>()
            })
            .collect();
        let plan = plan_batch(&taken, earlier.iter().map(|(p, a, s)| (p, *a, *s)))?;
        let reference = self.reference();
        let batch = PayoutBatchPrepared {
            payout_date: date,
            prepared_by: by,
            log_position: p.stored_positions().clone(),
            taken: amounts(taken),
            lines: plan
                .lines
                .into_iter()
                .map(|(payee, amount)| {
                    let (name, account) = account_of(reference, &payee);
                    PayoutLine {
                        payee,
                        name,
                        account,
                        amount,
                    }
                })
                .collect(),
            carried: amounts(plan.carried),
        };
        let at = self.now();
        self.record(&mut p, vec![Event::payout_prepared(batch, &at)])?;
        PayoutView::of(&batch_of(&p, date)?)
    }

    /// `payout approve`: maker-checker; the approver is not the preparer.
    pub fn approve_payout(&mut self, date: NaiveDate, by: &str) -> Result<PayoutView, AppError> {
        let by = operator(by, "--operator")?;
        let mut p = self.caught_up_projector()?;
        let batch = batch_of(&p, date)?;
        if let Some(a) = &batch.approved {
            if a.value.approved_by == by {
                return PayoutView::of(&batch);
            }
            return Err(AppError::conflict(format!(
                "the batch of {date} is already approved by {}",
                a.value.approved_by
            )));
        }
        if batch.prepared.value.prepared_by == by {
            return Err(AppError::conflict(format!(
                "{by} prepared the batch of {date}: another operator must approve it"
            )));
        }
        let at = self.now();
        let approval = PayoutBatchApproved {
            payout_date: date,
            approved_by: by,
        };
        self.record(&mut p, vec![Event::payout_approved(approval, &at)])?;
        PayoutView::of(&batch_of(&p, date)?)
    }

    /// `payout export`: hands the CSV of an approved batch to `write` (the
    /// file), then records the first export.
    pub fn export_payout(
        &mut self,
        date: NaiveDate,
        by: Option<&str>,
        write: impl FnOnce(&str) -> std::io::Result<()>,
    ) -> Result<PayoutView, AppError> {
        let by = by.map(|b| operator(b, "--operator")).transpose()?;
        let mut p = self.caught_up_projector()?;
        let batch = batch_of(&p, date)?;
        if batch.status() == BatchStatus::Prepared {
            return Err(AppError::conflict(format!(
                "the batch of {date} is not approved yet: `clearing payout approve --date {date} --operator NAME` first"
            )));
        }
        let csv = export_csv(&batch.prepared.value);
        write(&csv).context("writing the payout file")?;
        if batch.exported.is_none() {
            let at = self.now();
            let export = PayoutBatchExported {
                payout_date: date,
                exported_by: by,
                file_sha256: clearing_core::hex::sha256(csv.as_bytes()),
            };
            self.record(&mut p, vec![Event::payout_exported(export, &at)])?;
        }
        PayoutView::of(&batch_of(&p, date)?)
    }

    /// `payout result`: records the bank's return file of an exported
    /// batch, once per content; bad lines change nothing and are named.
    pub fn record_bank_result(
        &mut self,
        date: NaiveDate,
        file: Named<'_>,
        by: Option<&str>,
    ) -> Result<BankResultView, AppError> {
        let by = by.map(|b| operator(b, "--operator")).transpose()?;
        let mut p = self.caught_up_projector()?;
        let batch = batch_of(&p, date)?;
        if batch.status() != BatchStatus::Exported {
            return Err(AppError::conflict(format!(
                "the batch of {date} has not been exported: the bank cannot have answered it"
            )));
        }
        let sha = clearing_core::hex::sha256(file.text.as_bytes());
        if let Some(r) = batch.results.iter().find(|r| r.value.file_sha256 == sha) {
            return bank_view(&r.value, false, &batch);
        }
        let (lines, already_settled, bad_lines) =
            check_bank_file(file.text, &batch.prepared.value, &batch.line_statuses())
                .map_err(|e| AppError::input(format!("{}: {e}", file.name)))?;
        let result = PayoutResultRecorded {
            payout_date: date,
            recorded_by: by,
            file: file.name.to_string(),
            file_sha256: sha,
            lines,
            already_settled,
            bad_lines,
        };
        let at = self.now();
        self.record(&mut p, vec![Event::payout_result(result.clone(), &at)])?;
        bank_view(&result, true, &batch_of(&p, date)?)
    }
}

fn bank_view(
    r: &PayoutResultRecorded,
    recorded: bool,
    batch: &Batch,
) -> Result<BankResultView, AppError> {
    use clearing_core::payout::BankStatus;
    let count = |s| r.lines.iter().filter(|l| l.status == s).count() as u64;
    Ok(BankResultView {
        payout_date: r.payout_date,
        file_sha256: r.file_sha256.clone(),
        recorded,
        paid: count(BankStatus::Paid),
        failed: count(BankStatus::Failed),
        already_settled: r.already_settled.len() as u64,
        bad_lines: r
            .bad_lines
            .iter()
            .map(|b| BadBankLineView {
                line: b.line,
                payee_id: b.payee_id.clone(),
                reason: b.reason.clone(),
            })
            .collect(),
        batch: PayoutView::of(batch)?,
    })
}

fn amounts(m: BTreeMap<Payee, Fen>) -> Vec<PayeeAmount> {
    m.into_iter()
        .map(|(payee, amount)| PayeeAmount { payee, amount })
        .collect()
}

impl ReadLedger {
    /// `report payout --date P`.
    pub fn payout(&self, date: NaiveDate) -> Result<PayoutView, AppError> {
        PayoutView::of(&batch_of(self.projector(), date)?)
    }

    /// Every batch as the log has it, by payout date.
    pub fn payout_batches(&self) -> Result<Vec<Batch>, AppError> {
        Ok(self.projector().payout_batches()?)
    }
}
