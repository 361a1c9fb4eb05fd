//! Resolving reconciliation breaks (SPEC §14) and the adjustments report.

use chrono::NaiveDate;
use clearing_core::money::Fen;
use clearing_core::postings::Route;
use clearing_core::recon::{Category, MatchKey, ReconType};
use clearing_core::resolution::{
    adjustment_amount, adjustment_entry, Adjustment, BreakResolved, Decision, RefusedDecision,
};
use clearing_core::{Event, Recorded, Timestamp};
use serde::Serialize;

use crate::error::AppError;
use crate::read::ReadLedger;
use crate::record::Recorder;

/// What `recon resolve` is asked to decide.
#[derive(Clone, Debug)]
pub struct Resolve<'a> {
    pub date: NaiveDate,
    pub key: MatchKey,
    pub decision: Decision,
    pub operator: &'a str,
    pub remark: &'a str,
}

/// How a break was resolved: what `recon` and `txn show` say of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolutionNote {
    pub decision: Decision,
    pub operator: String,
    pub remark: String,
    pub resolved_at: Timestamp,
    /// The adjustment a `channel` decision recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustment: Option<Fen>,
}

impl ResolutionNote {
    pub fn of(r: &Recorded<BreakResolved>) -> ResolutionNote {
        ResolutionNote {
            decision: r.value.decision,
            operator: r.value.operator.clone(),
            remark: r.value.remark.clone(),
            resolved_at: r.recorded_at.clone(),
            adjustment: r.value.adjustment.as_ref().map(|a| a.amount),
        }
    }
}

/// `clearing recon resolve --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolutionView {
    pub business_date: NaiveDate,
    pub terminal_id: String,
    pub rrn: String,
    pub txn_type: ReconType,
    pub category: Category,
    pub merchant_id: Option<String>,
    #[serde(flatten)]
    pub resolution: ResolutionNote,
    pub payout_date: Option<NaiveDate>,
}

impl ResolutionView {
    fn of(r: &Recorded<BreakResolved>, merchant_id: Option<String>) -> ResolutionView {
        let v = &r.value;
        ResolutionView {
            business_date: v.business_date,
            terminal_id: v.key.terminal_id.to_string(),
            rrn: v.key.rrn.to_string(),
            txn_type: v.key.txn_type,
            category: v.category,
            merchant_id,
            resolution: ResolutionNote::of(r),
            payout_date: v.adjustment.as_ref().map(|a| a.payout_date),
        }
    }
}

/// One line of `report adjustments` (SPEC §14), exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdjustmentView {
    pub merchant_id: String,
    pub terminal_id: String,
    pub rrn: String,
    pub txn_type: ReconType,
    pub category: Category,
    pub amount: Fen,
    pub operator: String,
    pub remark: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdjustmentTotals {
    pub amount: Fen,
}

/// `clearing report adjustments --format json` (SPEC §14), exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdjustmentsView {
    pub business_date: NaiveDate,
    pub adjustments: Vec<AdjustmentView>,
    pub totals: AdjustmentTotals,
}

impl Recorder {
    /// `recon resolve`: closes one break of the date's latest run.
    pub fn resolve_break(&mut self, req: &Resolve<'_>) -> Result<ResolutionView, AppError> {
        let operator = req.operator.trim();
        if operator.is_empty() {
            return Err(AppError::input("--operator must not be empty"));
        }
        let remark = req.remark.trim();
        if remark.is_empty() {
            return Err(AppError::input(
                "--remark must not be empty: say why the break is resolved this way",
            ));
        }
        let mut p = self.caught_up_projector()?;
        let (date, key) = (req.date, &req.key);
        let run = p.recon_latest(date)?.ok_or_else(|| {
            AppError::not_found(format!("no reconciliation run is recorded for {date}"))
        })?;
        let sha = run.value.file_sha256;
        let brk = p
            .recon_breaks(date, &sha)?
            .into_iter()
            .find(|b| b.value.finding.key == *key)
            .ok_or_else(|| {
                AppError::not_found(format!(
                    "no break terminal {} rrn {} {} in the latest reconciliation run of {date}",
                    key.terminal_id, key.rrn, key.txn_type
                ))
            })?;
        if let Some(done) = p.resolution(date, key)? {
            return Err(AppError::conflict(format!(
                "this break is already resolved: {} by {} at {}",
                done.value.decision, done.value.operator, done.recorded_at
            )));
        }
        let finding = &brk.value.finding;
        let adjustment = match req.decision {
            Decision::Ledger => None,
            Decision::Channel => Some(self.adjustment(date, finding)?),
        };
        let resolved = BreakResolved {
            business_date: date,
            file_sha256: sha,
            index: brk.value.index,
            key: key.clone(),
            category: finding.category,
            decision: req.decision,
            operator: operator.to_string(),
            remark: remark.to_string(),
            adjustment,
        };
        let at = self.now();
        self.record(&mut p, vec![Event::break_resolved(resolved, &at)])?;
        let r = p
            .resolution(date, key)?
            .ok_or_else(|| AppError::storage("the resolution just recorded is not projected"))?;
        Ok(ResolutionView::of(
            &r,
            finding.merchant_id.as_deref().map(str::to_string),
        ))
    }

    /// The adjustment a `channel` decision on `finding` records.
    fn adjustment(
        &self,
        date: NaiveDate,
        finding: &clearing_core::recon::Finding,
    ) -> Result<Adjustment, AppError> {
        let amount = adjustment_amount(finding).map_err(|e| match e {
            RefusedDecision::Overflow(o) => AppError::from(o),
            e => AppError::conflict(e.to_string()),
        })?;
        let merchant_id = finding
            .merchant_id
            .as_deref()
            .map(str::to_string)
            .ok_or_else(|| {
                AppError::conflict("the break names no merchant: a channel decision needs one")
            })?;
        let reference = self.reference();
        let merchant = reference.merchant(&merchant_id).ok_or_else(|| {
            AppError::conflict(format!(
                "merchant {merchant_id} is not in the registry: a channel decision needs its route; register it first"
            ))
        })?;
        let calendar = reference
            .fees
            .as_ref()
            .map(|f| f.calendar.clone())
            .unwrap_or_default();
        let payout_date = calendar
            .payout_date(date, merchant.settlement_cycle)
            .ok_or_else(|| AppError::conflict(format!("no working day follows {date}")))?;
        let route = Route {
            merchant_id: merchant_id.clone(),
            clearing: merchant.clearing,
            intermediary_id: merchant.intermediary_id.clone(),
        };
        Ok(Adjustment {
            merchant_id,
            clearing: merchant.clearing,
            intermediary_id: merchant.intermediary_id.clone(),
            payout_date,
            amount,
            entry: adjustment_entry(&route, amount)?,
        })
    }
}

impl ReadLedger {
    /// The latest reconciliation run of `date` as recorded, with its breaks
    /// and how they were resolved (what a rerun of its file prints).
    pub fn recon(&self, date: NaiveDate) -> Result<crate::ReconReport, AppError> {
        let p = self.projector();
        let run = p.recon_latest(date)?.ok_or_else(|| {
            AppError::not_found(format!("no reconciliation run is recorded for {date}"))
        })?;
        let run = run.value;
        let breaks = p
            .recon_breaks(date, &run.file_sha256)?
            .into_iter()
            .map(|b| b.value.finding)
            .collect();
        let resolutions = p
            .resolutions(date)?
            .iter()
            .map(|r| (r.value.key.clone(), ResolutionNote::of(r)))
            .collect();
        Ok(crate::ReconReport {
            run: clearing_recon::Report {
                business_date: run.business_date,
                file: run.file,
                file_sha256: run.file_sha256,
                layout: run.layout,
                lines: run.lines,
                bad_lines: run.bad_lines,
                bad: Vec::new(),
                counts: run.counts,
                breaks,
                held: run.held,
                carried_in: 0,
                already_recorded: true,
            },
            resolutions,
        })
    }

    /// `report adjustments --date D`: the adjustments `channel` decisions
    /// recorded for breaks of D, by merchant, terminal and rrn.
    pub fn adjustments(&self, date: NaiveDate) -> Result<AdjustmentsView, AppError> {
        let mut adjustments = Vec::new();
        let mut total = Fen::ZERO;
        for r in self.projector().resolutions(date)? {
            let v = r.value;
            let Some(a) = v.adjustment else { continue };
            total = total.checked_add(a.amount)?;
            adjustments.push(AdjustmentView {
                merchant_id: a.merchant_id,
                terminal_id: v.key.terminal_id.into(),
                rrn: v.key.rrn.into(),
                txn_type: v.key.txn_type,
                category: v.category,
                amount: a.amount,
                operator: v.operator,
                remark: v.remark,
            });
        }
        adjustments.sort_by(|a, b| {
            (&a.merchant_id, &a.terminal_id, &a.rrn, a.txn_type).cmp(&(
                &b.merchant_id,
                &b.terminal_id,
                &b.rrn,
                b.txn_type,
            ))
        });
        Ok(AdjustmentsView {
            business_date: date,
            adjustments,
            totals: AdjustmentTotals { amount: total },
        })
    }
}
