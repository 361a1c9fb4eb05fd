//! What the projections keep per record: the transaction index entry, the
//! reconciliation index entry, and a settlement row's stored value.

use chrono::NaiveDate;
use clearing_core::events::{OriginalSale, RowDelta, RowKey};
use clearing_core::{Channel, Fen, Position, Timestamp, TxnResult, TxnType};
use serde::{Deserialize, Serialize};

/// What the transaction index keeps of one accepted record (postcard:
/// every field is written, in order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnEntry {
    /// Where the event is on the log.
    pub position: Position,
    pub recorded_at: Timestamp,
    pub occurred_at: Timestamp,
    pub txn_id: String,
    pub txn_type: TxnType,
    pub result: TxnResult,
    pub merchant_id: String,
    pub terminal_id: String,
    pub rrn: String,
    pub channel: Channel,
    pub amount: Fen,
    pub fee: Fen,
    pub business_date: NaiveDate,
    #[serde(default)]
    pub payout_date: Option<NaiveDate>,
    #[serde(default)]
    pub original_txn_id: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    /// The settlement row it changes, when it moves money.
    #[serde(default)]
    pub settlement: Option<RowKey>,
    /// What an approved void or reversal cancelled of its sale.
    #[serde(default)]
    pub original: Option<OriginalSale>,
}

impl TxnEntry {
    /// The settlement row this record changes and by how much (the same
    /// rule as the event's).
    pub fn row_delta(&self) -> Option<(&RowKey, RowDelta)> {
        let row = self.settlement.as_ref()?;
        let delta = RowDelta::of(self.txn_type, self.amount, self.fee, self.original.as_ref())?;
        Some((row, delta))
    }
}

/// What reconciliation needs of one accepted record, kept per business
/// date in its own compact index (postcard, not JSON): a run loads a whole
/// date's worth, up to millions, before reading the channel's file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconEntry {
    pub txn_id: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub rrn: String,
    pub txn_type: TxnType,
    pub result: TxnResult,
    pub original_txn_id: Option<String>,
    pub amount_fen: i64,
    pub fee_fen: i64,
    /// Local (UTC+08:00) time of day it occurred, in seconds.
    pub local_seconds: u32,
}

/// A settlement row as stored: its key and totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RowValue {
    pub key: RowKey,
    pub totals: RowDelta,
}
