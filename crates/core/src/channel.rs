//! Payment channels and transaction vocabulary.

use serde::{Deserialize, Serialize};

/// The channel a transaction came through; every fee plan prices each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    DebitCard,
    CreditCard,
    Wechat,
    Alipay,
    UnionpayQr,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::DebitCard,
        Channel::CreditCard,
        Channel::Wechat,
        Channel::Alipay,
        Channel::UnionpayQr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::DebitCard => "debit_card",
            Channel::CreditCard => "credit_card",
            Channel::Wechat => "wechat",
            Channel::Alipay => "alipay",
            Channel::UnionpayQr => "unionpay_qr",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What an input record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnType {
    Sale,
    /// 撤销: cancels a whole sale on its own business date.
    Void,
    /// 冲正: cancels a whole sale on its own business date (system-initiated).
    Reversal,
    /// 退货: returns part or all of a sale, on any later date.
    Refund,
}

impl TxnType {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnType::Sale => "sale",
            TxnType::Void => "void",
            TxnType::Reversal => "reversal",
            TxnType::Refund => "refund",
        }
    }

    pub fn parse(s: &str) -> Option<TxnType> {
        [
            TxnType::Sale,
            TxnType::Void,
            TxnType::Reversal,
            TxnType::Refund,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// Void, reversal and refund name the sale they act on.
    pub fn needs_original(self) -> bool {
        !matches!(self, TxnType::Sale)
    }

    pub fn cancels_sale(self) -> bool {
        matches!(self, TxnType::Void | TxnType::Reversal)
    }
}

/// The issuer's or wallet's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnResult {
    Approved,
    Declined,
}

impl TxnResult {
    pub fn parse(s: &str) -> Option<TxnResult> {
        match s {
            "approved" => Some(TxnResult::Approved),
            "declined" => Some(TxnResult::Declined),
            _ => None,
        }
    }
}
