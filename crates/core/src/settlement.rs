//! Settlement and risk reports (SPEC §7, §11), built from projected rows.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::events::{RowDelta, RowKey};
use crate::money::{Fen, Overflow};
use crate::registry::Clearing;
use crate::risk::RiskFlag;

/// Adds a delta into an accumulated row.
pub fn add_delta(acc: &mut RowDelta, d: &RowDelta) -> Result<(), Overflow> {
    acc.sales_count = acc.sales_count.checked_add(d.sales_count).ok_or(Overflow)?;
    acc.sales_amount = acc.sales_amount.checked_add(d.sales_amount)?;
    acc.refund_count = acc
        .refund_count
        .checked_add(d.refund_count)
        .ok_or(Overflow)?;
    acc.refund_amount = acc.refund_amount.checked_add(d.refund_amount)?;
    acc.fee = acc.fee.checked_add(d.fee)?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MerchantRow {
    pub merchant_id: String,
    pub clearing: Clearing,
    pub intermediary_id: Option<String>,
    pub payout_date: NaiveDate,
    pub sales_count: i64,
    pub sales_amount: Fen,
    pub refund_count: i64,
    pub refund_amount: Fen,
    pub fee: Fen,
    pub net: Fen,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    pub sales_amount: Fen,
    pub refund_amount: Fen,
    pub fee: Fen,
    pub net: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementReport {
    pub business_date: NaiveDate,
    pub merchants: Vec<MerchantRow>,
    pub totals: Totals,
}

/// Builds the report of one business date from its accumulated rows.
/// A merchant appears only with activity (`sales_count + refund_count > 0`);
/// rows are sorted by merchant id (then payout date, when a registry change
/// during the day split a merchant's money over two routes).
pub fn settlement_report(
    business_date: NaiveDate,
    rows: impl IntoIterator<Item = (RowKey, RowDelta)>,
) -> Result<SettlementReport, Overflow> {
    let mut merchants = Vec::new();
    let mut totals = Totals::default();
    for (key, d) in rows {
        if key.business_date != business_date || d.sales_count + d.refund_count <= 0 {
            continue;
        }
        let net = d
            .sales_amount
            .checked_sub(d.refund_amount)?
            .checked_sub(d.fee)?;
        totals.sales_amount = totals.sales_amount.checked_add(d.sales_amount)?;
        totals.refund_amount = totals.refund_amount.checked_add(d.refund_amount)?;
        totals.fee = totals.fee.checked_add(d.fee)?;
        totals.net = totals.net.checked_add(net)?;
        merchants.push(MerchantRow {
            merchant_id: key.merchant_id,
            clearing: key.clearing,
            intermediary_id: key.intermediary_id,
            payout_date: key.payout_date,
            sales_count: d.sales_count,
            sales_amount: d.sales_amount,
            refund_count: d.refund_count,
            refund_amount: d.refund_amount,
            fee: d.fee,
            net,
        });
    }
    merchants.sort_by(|a, b| {
        (&a.merchant_id, a.payout_date, &a.intermediary_id).cmp(&(
            &b.merchant_id,
            b.payout_date,
            &b.intermediary_id,
        ))
    });
    Ok(SettlementReport {
        business_date,
        merchants,
        totals,
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlaggedTxn {
    pub txn_id: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub flags: Vec<RiskFlag>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exposure {
    pub intermediary_id: String,
    pub payout_date: NaiveDate,
    pub net: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskReport {
    pub business_date: NaiveDate,
    pub flagged: Vec<FlaggedTxn>,
    pub exposure: Vec<Exposure>,
}

/// The risk report of a business date: flagged records (sorted by txn id)
/// and, per intermediary and payout date, the net of its second-party
/// merchants' settlement rows.
pub fn risk_report(
    settlement: &SettlementReport,
    mut flagged: Vec<FlaggedTxn>,
) -> Result<RiskReport, Overflow> {
    flagged.sort_by(|a, b| a.txn_id.cmp(&b.txn_id));
    let mut exposure: BTreeMap<(String, NaiveDate), Fen> = BTreeMap::new();
    for row in &settlement.merchants {
        if let (Clearing::SecondParty, Some(i)) = (row.clearing, &row.intermediary_id) {
            let e = exposure.entry((i.clone(), row.payout_date)).or_default();
            *e = e.checked_add(row.net)?;
        }
    }
    Ok(RiskReport {
        business_date: settlement.business_date,
        flagged,
        exposure: exposure
            .into_iter()
            .map(|((intermediary_id, payout_date), net)| Exposure {
                intermediary_id,
                payout_date,
                net,
            })
            .collect(),
    })
}
