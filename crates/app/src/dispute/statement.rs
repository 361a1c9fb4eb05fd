//! `merchant statement`: a merchant's settlement of a business date as the
//! ledger knew it at a moment, line by line.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use clearing_core::events::{txn_event_id, RowDelta, RowKey};
use clearing_core::settlement::{add_delta, settlement_report, MerchantRow};
use clearing_core::{Fen, Position, Timestamp, TxnResult, TxnType};
use clearing_projector::{Projector, TxnEntry};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One line of a merchant statement: a record and what it did to the
/// merchant's settlement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatementLine {
    pub position: Position,
    pub recorded_at: Timestamp,
    pub event_id: String,
    pub txn_id: String,
    pub txn_type: TxnType,
    pub result: TxnResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_txn_id: Option<String>,
    pub terminal_id: String,
    pub rrn: String,
    pub amount: Fen,
    pub fee: Fen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_date: Option<NaiveDate>,
    /// The change to the settlement row; absent for records that move no
    /// money (declined ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<RowDelta>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Statement {
    pub merchant_id: String,
    pub business_date: NaiveDate,
    /// The moment the statement is as of; absent = everything recorded.
    pub as_of: Option<Timestamp>,
    /// SPEC §7's rows of this merchant, summed from the lines below.
    pub rows: Vec<MerchantRow>,
    pub lines: Vec<StatementLine>,
}

/// The merchant's settlement of `date` as the ledger knew it at `as_of`
/// (events recorded up to and including it; every event when `None`).
pub fn statement(
    p: &Projector,
    merchant_id: &str,
    date: NaiveDate,
    as_of: Option<&Timestamp>,
) -> Result<Statement, AppError> {
    let mut lines = Vec::new();
    let mut rows: BTreeMap<RowKey, RowDelta> = BTreeMap::new();
    for t in p.merchant_txns_on(date, merchant_id)? {
        if as_of.is_some_and(|limit| t.recorded_at.at() > limit.at()) {
            continue;
        }
        let effect = match t.row_delta() {
            Some((key, delta)) if key.merchant_id == merchant_id && key.business_date == date => {
                add_delta(rows.entry(key.clone()).or_default(), &delta)
                    .map_err(|_| AppError::storage("statement totals overflow"))?;
                Some(delta)
            }
            _ => None,
        };
        // A record of this merchant whose money moves another's row (a
        // void naming another merchant's sale) is not this statement's.
        if effect.is_none() && t.merchant_id != merchant_id {
            continue;
        }
        lines.push(line(t, effect));
    }
    let report = settlement_report(date, rows)
        .map_err(|_| AppError::storage("statement totals overflow"))?;
    Ok(Statement {
        merchant_id: merchant_id.to_string(),
        business_date: date,
        as_of: as_of.cloned(),
        rows: report.merchants,
        lines,
    })
}

fn line(t: TxnEntry, effect: Option<RowDelta>) -> StatementLine {
    StatementLine {
        position: t.position,
        recorded_at: t.recorded_at,
        event_id: txn_event_id(&t.txn_id),
        txn_id: t.txn_id,
        txn_type: t.txn_type,
        result: t.result,
        decline_code: t.decline_code,
        original_txn_id: t.original_txn_id,
        terminal_id: t.terminal_id,
        rrn: t.rrn,
        amount: t.amount,
        fee: t.fee,
        payout_date: t.payout_date,
        effect,
    }
}
