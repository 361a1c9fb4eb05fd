//! Double-entry postings (SPEC §5). Amounts are signed: a debit is
//! positive, a credit negative, so a balanced entry sums to zero.

use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::money::{Fen, Overflow};
use crate::registry::Clearing;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Posting {
    pub account: String,
    /// Debit positive, credit negative, in CNY.
    pub amount: Fen,
}

/// Where a merchant's money goes: straight to the merchant (一清), or to an
/// intermediary that owes it to the merchant (二清).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Route {
    pub merchant_id: String,
    pub clearing: Clearing,
    pub intermediary_id: Option<String>,
}

/// The postings of one money movement: the acquirer's own ledger, and, for
/// second-party clearing, the memorandum entry in the intermediary's
/// sub-ledger recording what it owes the merchant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    pub postings: Vec<Posting>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_ledger: Vec<Posting>,
}

impl Entry {
    pub fn is_empty(&self) -> bool {
        self.postings.is_empty() && self.sub_ledger.is_empty()
    }
}

pub fn channel_receivable(channel: Channel) -> String {
    format!("assets:channel_receivable:{}", channel.as_str())
}

pub const FEE_INCOME: &str = "income:fees";

pub fn payable_account(route: &Route) -> String {
    match (&route.clearing, &route.intermediary_id) {
        (Clearing::SecondParty, Some(i)) => intermediary_payable(i),
        _ => merchant_payable(&route.merchant_id),
    }
}

/// What the acquirer owes a first-party merchant.
pub fn merchant_payable(merchant_id: &str) -> String {
    format!("liabilities:merchant_payable:{merchant_id}")
}

/// What the acquirer owes an intermediary for its second-party merchants.
pub fn intermediary_payable(intermediary_id: &str) -> String {
    format!("liabilities:intermediary_payable:{intermediary_id}")
}

/// The intermediary's memorandum of a movement of `net` for a 二清
/// merchant: its receivable against what it owes the merchant. Empty for
/// 一清.
pub fn sub_ledger(route: &Route, net: Fen) -> Result<Vec<Posting>, Overflow> {
    Ok(match (&route.clearing, &route.intermediary_id) {
        (Clearing::SecondParty, Some(i)) => vec![
            Posting {
                account: format!("intermediary:{i}:clearing_receivable"),
                amount: net,
            },
            Posting {
                account: format!("intermediary:{i}:merchant_payable:{}", route.merchant_id),
                amount: net.checked_neg()?,
            },
        ],
        _ => Vec::new(),
    })
}

/// The entry of a sale of `amount` with `fee`: debit the channel receivable
/// by the amount, credit the payable by the net and fee income by the fee.
pub fn sale_entry(
    route: &Route,
    channel: Channel,
    amount: Fen,
    fee: Fen,
) -> Result<Entry, Overflow> {
    let net = amount.checked_sub(fee)?;
    let postings = vec![
        Posting {
            account: channel_receivable(channel),
            amount,
        },
        Posting {
            account: payable_account(route),
            amount: net.checked_neg()?,
        },
        Posting {
            account: FEE_INCOME.to_string(),
            amount: fee.checked_neg()?,
        },
    ];
    let entry = Entry {
        postings,
        sub_ledger: sub_ledger(route, net)?,
    };
    assert_balanced(&entry);
    Ok(entry)
}

/// The exact opposite of an entry (a void, a reversal, or — built from a
/// refund's amount and fee — a refund).
pub fn reverse(entry: &Entry) -> Result<Entry, Overflow> {
    let neg = |ps: &[Posting]| -> Result<Vec<Posting>, Overflow> {
        ps.iter()
            .map(|p| {
                Ok(Posting {
                    account: p.account.clone(),
                    amount: p.amount.checked_neg()?,
                })
            })
            .collect()
    };
    let out = Entry {
        postings: neg(&entry.postings)?,
        sub_ledger: neg(&entry.sub_ledger)?,
    };
    assert_balanced(&out);
    Ok(out)
}

/// Sum of a list of postings.
pub fn sum(postings: &[Posting]) -> Result<Fen, Overflow> {
    postings
        .iter()
        .try_fold(Fen::ZERO, |acc, p| acc.checked_add(p.amount))
}

/// Postings that do not sum to zero mean the ledger would create or destroy
/// money: a programming error, so this panics in release builds too.
pub fn assert_balanced(entry: &Entry) {
    for (name, ps) in [
        ("postings", &entry.postings),
        ("sub_ledger", &entry.sub_ledger),
    ] {
        let total = sum(ps).expect("postings overflow");
        assert_eq!(total, Fen::ZERO, "{name} do not balance: {ps:?}");
    }
}
