//! `txn show`: a transaction's whole story (SPEC §9).

use chrono::NaiveDate;
use clearing_core::events::FeeRuleApplied;
use clearing_core::recon::{Category, Finding, ReconType};
use clearing_core::{Fen, TxnResult, TxnType};
use clearing_log::EventLog;
use clearing_projector::{Projector, TxnEntry};
use serde::{Deserialize, Serialize};

use super::{logged, LoggedEvent};
use crate::error::AppError;

clearing_core::wire_enum! {
    /// Where a sale stands in settlement.
    pub enum SaleStatus {
        /// Counts in its business date's row, paid out on `payout_date`.
        InSettlement = "in_settlement",
        Declined = "declined",
        Voided = "voided",
        Reversed = "reversed",
    }
}

/// How reconciliation saw a sale or refund: one of SPEC §8's eight
/// categories, or one of two states outside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconVerdict {
    Category(Category),
    /// A declined, voided or reversed record no file should carry, and
    /// none did.
    NotExpected,
    /// No run for its business date yet.
    NotReconciled,
}

impl ReconVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ReconVerdict::Category(c) => c.as_str(),
            ReconVerdict::NotExpected => "not_expected",
            ReconVerdict::NotReconciled => "not_reconciled",
        }
    }

    pub fn parse(s: &str) -> Option<ReconVerdict> {
        match s {
            "not_expected" => Some(ReconVerdict::NotExpected),
            "not_reconciled" => Some(ReconVerdict::NotReconciled),
            other => Category::parse(other).map(ReconVerdict::Category),
        }
    }
}

impl std::fmt::Display for ReconVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ReconVerdict {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        names.extend(["not_expected", "not_reconciled"]);
        clearing_core::schema::names(&names)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ReconVerdict {}

impl Serialize for ReconVerdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReconVerdict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ReconVerdict, D::Error> {
        let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
        ReconVerdict::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not a reconciliation category"))
        })
    }
}

/// Where the money of a sale stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementStatus {
    pub status: SaleStatus,
    pub business_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing: Option<clearing_core::registry::Clearing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediary_id: Option<String>,
    pub amount: Fen,
    pub fee: Fen,
    /// Refunds recorded against the sale, and the fee they gave back.
    pub refunded_amount: Fen,
    pub refunded_fee: Fen,
    /// What the merchant gets for this sale, refunds included.
    pub net: Fen,
}

/// How reconciliation saw one sale or refund.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconStatus {
    pub txn_id: String,
    pub txn_type: TxnType,
    pub category: ReconVerdict,
    /// The business date of the run that decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
    /// How the break naming it was resolved (SPEC §14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<crate::resolve::ResolutionNote>,
}

/// A transaction's whole story.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Story {
    pub txn_id: String,
    pub txn_type: TxnType,
    pub merchant_id: String,
    pub terminal_id: String,
    pub rrn: String,
    pub result: TxnResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    pub amount: Fen,
    pub fee: Fen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rule: Option<FeeRuleApplied>,
    pub business_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_date: Option<NaiveDate>,
    pub settlement: SettlementStatus,
    pub reconciliation: Vec<ReconStatus>,
    /// Every event touching the transaction, in log order.
    pub events: Vec<LoggedEvent>,
}

/// `txn show --format json`: `{"query","transactions":[…]}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoriesView {
    pub query: String,
    pub transactions: Vec<Story>,
}

/// Every story whose sale, void, reversal or refund has this `txn_id` or
/// `rrn` (none is not an error here).
pub fn stories(p: &Projector, log: &dyn EventLog, id: &str) -> Result<Vec<Story>, AppError> {
    let found = p.find_txns(id)?;
    // The sale each matching record belongs to.
    let mut roots: Vec<String> = Vec::new();
    for t in found.iter().filter(|t| t.txn_id == id || t.rrn == id) {
        let root = match t.txn_type {
            TxnType::Sale => t.txn_id.clone(),
            _ => t
                .original_txn_id
                .clone()
                .unwrap_or_else(|| t.txn_id.clone()),
        };
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    let mut out = Vec::new();
    for root in roots {
        let records: Vec<TxnEntry> = if root == id {
            found.clone()
        } else {
            p.find_txns(&root)?
        }
        .into_iter()
        .filter(|t| t.txn_id == root || t.original_txn_id.as_deref() == Some(root.as_str()))
        .collect();
        out.push(story(p, log, &root, records)?);
    }
    Ok(out)
}

fn story(
    p: &Projector,
    log: &dyn EventLog,
    root: &str,
    records: Vec<TxnEntry>,
) -> Result<Story, AppError> {
    let sale = records
        .iter()
        .find(|t| t.txn_id == root)
        .or_else(|| records.first())
        .ok_or_else(|| AppError::storage("a story with no record"))?
        .clone();
    let mut events = Vec::new();
    let mut fee_rule = None;
    for t in &records {
        let e = logged(p, log, t.position)?;
        if t.txn_id == sale.txn_id {
            fee_rule = e.txn().and_then(|t| t.fee_rule.clone());
        }
        events.push(e);
    }
    let cancelled = records.iter().find(|t| {
        matches!(t.txn_type, TxnType::Void | TxnType::Reversal) && t.result == TxnResult::Approved
    });
    let settlement = settlement_status(&sale, &records, cancelled)?;
    let mut reconciliation = Vec::new();
    for t in records
        .iter()
        .filter(|t| matches!(t.txn_type, TxnType::Sale | TxnType::Refund))
    {
        let expected = t.result == TxnResult::Approved
            && (t.txn_type == TxnType::Refund || cancelled.is_none());
        let (status, recon_events) = recon_status(p, log, t, expected)?;
        reconciliation.push(status);
        for e in recon_events {
            if !events.iter().any(|x| x.position == e.position) {
                events.push(e);
            }
        }
    }
    events.sort_by(|a, b| {
        (a.recorded_at.as_str(), a.position).cmp(&(b.recorded_at.as_str(), b.position))
    });
    Ok(Story {
        txn_id: sale.txn_id.clone(),
        txn_type: sale.txn_type,
        merchant_id: sale.merchant_id.clone(),
        terminal_id: sale.terminal_id.clone(),
        rrn: sale.rrn.clone(),
        result: sale.result,
        decline_code: sale.decline_code.clone(),
        amount: sale.amount,
        fee: sale.fee,
        fee_rule,
        business_date: sale.business_date,
        payout_date: sale.payout_date,
        settlement,
        reconciliation,
        events,
    })
}

/// The sale's status and what the merchant gets for it, refunds included.
fn settlement_status(
    sale: &TxnEntry,
    records: &[TxnEntry],
    cancelled: Option<&TxnEntry>,
) -> Result<SettlementStatus, AppError> {
    let refunds: Vec<&TxnEntry> = records
        .iter()
        .filter(|t| t.txn_type == TxnType::Refund && t.result == TxnResult::Approved)
        .collect();
    let refunded_amount = sum(refunds.iter().map(|t| t.amount))?;
    let refunded_fee = sum(refunds.iter().map(|t| t.fee))?;
    let status = match (sale.result, cancelled) {
        (TxnResult::Declined, _) => SaleStatus::Declined,
        (_, Some(c)) if c.txn_type == TxnType::Void => SaleStatus::Voided,
        (_, Some(_)) => SaleStatus::Reversed,
        _ => SaleStatus::InSettlement,
    };
    let net = if status == SaleStatus::InSettlement {
        sale.amount
            .checked_sub(sale.fee)
            .and_then(|n| n.checked_sub(refunded_amount))
            .and_then(|n| n.checked_add(refunded_fee))?
    } else {
        Fen(0)
    };
    Ok(SettlementStatus {
        status,
        business_date: sale.business_date,
        payout_date: sale.payout_date,
        clearing: sale.settlement.as_ref().map(|r| r.clearing),
        intermediary_id: sale
            .settlement
            .as_ref()
            .and_then(|r| r.intermediary_id.clone()),
        amount: sale.amount,
        fee: sale.fee,
        refunded_amount,
        refunded_fee,
        net,
    })
}

fn sum(mut fens: impl Iterator<Item = Fen>) -> Result<Fen, AppError> {
    Ok(fens.try_fold(Fen(0), |a, b| a.checked_add(b))?)
}

/// The category reconciliation gave a sale or refund, and the events
/// that say so (the break naming it, or the run that matched or held it).
fn recon_status(
    p: &Projector,
    log: &dyn EventLog,
    t: &TxnEntry,
    expected: bool,
) -> Result<(ReconStatus, Vec<LoggedEvent>), AppError> {
    // (called for sales and refunds only)
    let recon_type = ReconType::of(t.txn_type);
    let names = |f: &Finding| {
        f.txn_id.as_deref() == Some(t.txn_id.as_str())
            || (f.key.terminal_id == t.terminal_id
                && f.key.rrn == t.rrn
                && Some(f.key.txn_type) == recon_type)
    };
    let status = |category: ReconVerdict, run: Option<(NaiveDate, &str)>| ReconStatus {
        txn_id: t.txn_id.clone(),
        txn_type: t.txn_type,
        category,
        run_date: run.map(|r| r.0),
        file_sha256: run.map(|r| r.1.to_string()),
        resolution: None,
    };
    let mut date = t.business_date;
    // The day's run, then, for an item it held, the next day's.
    for _ in 0..2 {
        let Some(run) = p.recon_latest(date)? else {
            let category = if date == t.business_date {
                ReconVerdict::NotReconciled
            } else {
                ReconVerdict::Category(Category::Held)
            };
            return Ok((status(category, None), Vec::new()));
        };
        let sha = run.value.file_sha256.clone();
        for b in p.recon_breaks(date, &sha)? {
            if names(&b.value.finding) {
                let mut events = vec![logged(p, log, b.position)?];
                let mut s = status(
                    ReconVerdict::Category(b.value.finding.category),
                    Some((date, &sha)),
                );
                if let Some(r) = p.resolution(date, &b.value.finding.key)? {
                    events.push(logged(p, log, r.position)?);
                    s.resolution = Some(crate::resolve::ResolutionNote::of(&r));
                }
                return Ok((s, events));
            }
        }
        let run_event = logged(p, log, run.position)?;
        if run.value.held.iter().any(|h| h.txn_id == t.txn_id) {
            match date.succ_opt() {
                Some(next) => {
                    date = next;
                    continue;
                }
                None => {
                    return Ok((
                        status(ReconVerdict::Category(Category::Held), Some((date, &sha))),
                        vec![run_event],
                    ))
                }
            }
        }
        let category = if expected {
            ReconVerdict::Category(Category::Matched)
        } else {
            ReconVerdict::NotExpected
        };
        return Ok((status(category, Some((date, &sha))), vec![run_event]));
    }
    Ok((
        status(ReconVerdict::Category(Category::Held), None),
        Vec::new(),
    ))
}
