//! Resolving reconciliation breaks (SPEC §14): the decision, and the
//! adjustment a `channel` decision records. Pure.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::money::{Fen, Overflow};
use crate::payout::Payee;
use crate::postings::{assert_balanced, payable_account, sub_ledger, Entry, Posting, Route};
use crate::recon::{Category, Finding, MatchKey, ReconType};
use crate::registry::Clearing;

crate::wire_enum! {
    /// 以平台为准 (`ledger`) or 以渠道为准 (`channel`).
    pub enum Decision {
        Ledger = "ledger",
        Channel = "channel",
    }
}

/// The account an adjustment is booked against.
pub const ADJUSTMENTS_ACCOUNT: &str = "expenses:reconciliation_adjustments";

/// Money the ledger adds to (or takes from) a merchant's payout because
/// the channel's figures stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Adjustment {
    pub merchant_id: String,
    pub clearing: Clearing,
    pub intermediary_id: Option<String>,
    /// The merchant's payout date for the break's business date under its
    /// route when the break was resolved.
    #[serde(with = "crate::dates")]
    pub payout_date: NaiveDate,
    pub amount: Fen,
    pub entry: Entry,
}

impl Adjustment {
    pub fn payee(&self) -> Payee {
        Payee::of_route(
            &self.merchant_id,
            self.clearing,
            self.intermediary_id.as_deref(),
        )
    }
}

/// `BreakResolved`: one break of a date's latest run, decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakResolved {
    #[serde(with = "crate::dates")]
    pub business_date: NaiveDate,
    /// The run whose break this is.
    pub file_sha256: String,
    pub index: u64,
    #[serde(flatten)]
    pub key: MatchKey,
    pub category: Category,
    pub decision: Decision,
    pub operator: String,
    pub remark: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustment: Option<Adjustment>,
}

/// Why a decision cannot be taken on a break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedDecision {
    #[error("a duplicate_in_channel break can only be resolved with --decision ledger: the channel's second line pays nothing")]
    ChannelOnDuplicate,
    #[error("the break lacks the {0} its category needs")]
    Missing(&'static str),
    #[error(transparent)]
    Overflow(#[from] Overflow),
}

/// What a `channel` decision moves to the merchant (SPEC §14): signed by
/// the line's type (a sale's money is the merchant's, a refund's goes
/// back).
pub fn adjustment_amount(f: &Finding) -> Result<Fen, RefusedDecision> {
    let channel = || -> Result<Fen, RefusedDecision> {
        let a = f
            .channel_amount
            .ok_or(RefusedDecision::Missing("channel amount"))?;
        let fee = f
            .channel_fee
            .ok_or(RefusedDecision::Missing("channel fee"))?;
        Ok(a.checked_sub(fee)?)
    };
    let ledger = || -> Result<Fen, RefusedDecision> {
        let a = f
            .ledger_amount
            .ok_or(RefusedDecision::Missing("ledger amount"))?;
        let fee = f.ledger_fee.ok_or(RefusedDecision::Missing("ledger fee"))?;
        Ok(a.checked_sub(fee)?)
    };
    let signed = |v: Fen| -> Result<Fen, RefusedDecision> {
        Ok(match f.key.txn_type {
            ReconType::Sale => v,
            ReconType::Refund => v.checked_neg()?,
        })
    };
    match f.category {
        Category::MissingInLedger | Category::StatusMismatch => signed(channel()?),
        Category::MissingInChannel => Ok(signed(ledger()?)?.checked_neg()?),
        Category::AmountMismatch | Category::FeeMismatch => {
            signed(channel()?.checked_sub(ledger()?)?)
        }
        Category::DuplicateInChannel => Err(RefusedDecision::ChannelOnDuplicate),
        Category::Matched | Category::Held => Err(RefusedDecision::Missing("break")),
    }
}

/// The balanced entry of an adjustment of `amount` to `route`'s payee:
/// the acquirer books it as an expense against the payable; for 二清 the
/// intermediary's sub-ledger records that it owes the merchant as much.
pub fn adjustment_entry(route: &Route, amount: Fen) -> Result<Entry, Overflow> {
    let postings = vec![
        Posting {
            account: ADJUSTMENTS_ACCOUNT.to_string(),
            amount,
        },
        Posting {
            account: payable_account(route),
            amount: amount.checked_neg()?,
        },
    ];
    let entry = Entry {
        postings,
        sub_ledger: sub_ledger(route, amount)?,
    };
    assert_balanced(&entry);
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(category: Category, txn_type: ReconType) -> Finding {
        Finding {
            category,
            key: MatchKey {
                terminal_id: "T1".into(),
                rrn: "R1".into(),
                txn_type,
            },
            merchant_id: Some("M1".into()),
            txn_id: None,
            line: Some(2),
            channel_amount: Some(Fen(10_000)),
            channel_fee: Some(Fen(60)),
            ledger_amount: Some(Fen(9_000)),
            ledger_fee: Some(Fen(50)),
            ledger_status: None,
        }
    }

    #[test]
    fn given_each_category_when_the_channel_stands_then_the_amount_follows_section_14() {
        use Category::*;
        use ReconType::*;
        let cases = [
            (MissingInLedger, Sale, 9_940),
            (MissingInLedger, Refund, -9_940),
            (StatusMismatch, Sale, 9_940),
            (MissingInChannel, Sale, -8_950),
            (MissingInChannel, Refund, 8_950),
            (AmountMismatch, Sale, 990),
            (FeeMismatch, Refund, -990),
        ];
        for (c, t, want) in cases {
            assert_eq!(adjustment_amount(&finding(c, t)), Ok(Fen(want)), "{c} {t}");
        }
        assert_eq!(
            adjustment_amount(&finding(DuplicateInChannel, Sale)),
            Err(RefusedDecision::ChannelOnDuplicate)
        );
    }

    #[test]
    fn an_adjustment_of_a_second_party_merchant_balances_and_credits_the_intermediary() {
        let route = Route {
            merchant_id: "M1".into(),
            clearing: Clearing::SecondParty,
            intermediary_id: Some("AGG1".into()),
        };
        let e = adjustment_entry(&route, Fen(-120)).unwrap();
        assert_eq!(
            e.postings[1].account,
            "liabilities:intermediary_payable:AGG1"
        );
        assert_eq!(e.postings[1].amount, Fen(120));
        assert_eq!(e.sub_ledger.len(), 2);
    }
}
