//! What the projections keep per record: the transaction index entry, the
//! reconciliation index entry, and a settlement row's stored value.

use chrono::NaiveDate;
use clearing_core::events::{OriginalSale, RowDelta, RowKey};
use clearing_core::{Channel, Fen, Position, Timestamp, TxnResult, TxnType};
use compact_str::CompactString;
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
    pub txn_id: CompactString,
    pub merchant_id: CompactString,
    pub terminal_id: CompactString,
    pub rrn: CompactString,
    pub txn_type: TxnType,
    pub result: TxnResult,
    pub original_txn_id: Option<String>,
    pub amount_fen: i64,
    pub fee_fen: i64,
    /// Local (UTC+08:00) time of day it occurred, in seconds.
    pub local_seconds: u32,
}

/// Where the postcard encoding of a record ends, read without decoding
/// it: the same fields in the same order, every text borrowed and left
/// unparsed (timestamps, dates, amounts and positions are texts in
/// postcard; enum variants and integers are varints). The digest hashes
/// each segment record's bytes and needs only their bounds; decoding in
/// full (allocating the strings, parsing the times) was most of its
/// cost. A test holds each shadow to its record, every option set and
/// unset: a field added to one and not the other fails it.
pub(crate) mod bounds {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Txn<'a> {
        position: &'a str,
        recorded_at: &'a str,
        occurred_at: &'a str,
        txn_id: &'a str,
        txn_type: u32,
        result: u32,
        merchant_id: &'a str,
        terminal_id: &'a str,
        rrn: &'a str,
        channel: u32,
        amount: &'a str,
        fee: &'a str,
        business_date: &'a str,
        payout_date: Option<&'a str>,
        original_txn_id: Option<&'a str>,
        decline_code: Option<&'a str>,
        #[serde(borrow)]
        settlement: Option<Row<'a>>,
        #[serde(borrow)]
        original: Option<Original<'a>>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Row<'a> {
        business_date: &'a str,
        merchant_id: &'a str,
        clearing: u32,
        intermediary_id: Option<&'a str>,
        payout_date: &'a str,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Original<'a> {
        business_date: &'a str,
        amount: &'a str,
        fee: &'a str,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Recon<'a> {
        txn_id: &'a str,
        merchant_id: &'a str,
        terminal_id: &'a str,
        rrn: &'a str,
        txn_type: u32,
        result: u32,
        original_txn_id: Option<&'a str>,
        amount_fen: i64,
        fee_fen: i64,
        local_seconds: u32,
    }

    /// The rest of `bytes` after the `TxnEntry` they start with.
    pub(crate) fn after_txn(bytes: &[u8]) -> postcard::Result<&[u8]> {
        postcard::take_from_bytes::<Txn<'_>>(bytes).map(|(_, rest)| rest)
    }

    /// The rest of `bytes` after the `ReconEntry` they start with.
    pub(crate) fn after_recon(bytes: &[u8]) -> postcard::Result<&[u8]> {
        postcard::take_from_bytes::<Recon<'_>>(bytes).map(|(_, rest)| rest)
    }
}

/// A settlement row as stored: its key and totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RowValue {
    pub key: RowKey,
    pub totals: RowDelta,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clearing_core::registry::Clearing;

    fn txn(all_options: bool, text: &str) -> TxnEntry {
        let date = |d: &str| d.parse::<NaiveDate>().unwrap();
        TxnEntry {
            position: Position::new(3, 1_234_567_890_123),
            recorded_at: Timestamp::parse("2026-11-20T23:59:59.123456+08:00").unwrap(),
            occurred_at: Timestamp::parse("2026-11-20T15:59:59Z").unwrap(),
            txn_id: format!("T{text}"),
            txn_type: TxnType::Refund,
            result: TxnResult::Declined,
            merchant_id: format!("M{text}"),
            terminal_id: format!("{text}9"),
            rrn: "432100000007".into(),
            channel: Channel::UnionpayQr,
            amount: Fen(123_456_789),
            fee: Fen(-42),
            business_date: date("2026-11-20"),
            payout_date: all_options.then(|| date("2026-11-23")),
            original_txn_id: all_options.then(|| format!("O{text}")),
            decline_code: all_options.then(|| "51".to_string()),
            settlement: all_options.then(|| RowKey {
                business_date: date("2026-11-20"),
                merchant_id: format!("M{text}"),
                clearing: Clearing::SecondParty,
                intermediary_id: Some(format!("I{text}")),
                payout_date: date("2026-11-23"),
            }),
            original: all_options.then(|| OriginalSale {
                business_date: date("2026-11-19"),
                amount: Fen(1),
                fee: Fen(0),
            }),
        }
    }

    fn recon(all_options: bool, text: &str) -> ReconEntry {
        ReconEntry {
            txn_id: format!("T{text}").into(),
            merchant_id: format!("M{text}").into(),
            terminal_id: format!("{text}9").into(),
            rrn: "432100000007".into(),
            txn_type: TxnType::Reversal,
            result: TxnResult::Approved,
            original_txn_id: all_options.then(|| format!("O{text}")),
            amount_fen: i64::MAX,
            fee_fen: -1,
            local_seconds: 86_399,
        }
    }

    /// Two records back to back: the shadow must end the first exactly
    /// where the second begins, and the second at the end.
    fn check<T: Serialize>(a: &T, b: &T, after: fn(&[u8]) -> postcard::Result<&[u8]>) {
        let (a, b) = (
            postcard::to_stdvec(a).unwrap(),
            postcard::to_stdvec(b).unwrap(),
        );
        let both = [a.as_slice(), b.as_slice()].concat();
        let rest = after(&both).unwrap();
        assert_eq!(rest, b.as_slice(), "the first record's bounds are wrong");
        assert!(
            after(rest).unwrap().is_empty(),
            "the second record's bounds are wrong"
        );
    }

    #[test]
    fn the_bounds_shadows_end_each_record_where_its_decoding_ends() {
        let long = "x".repeat(300); // a length that takes two varint bytes
        for (a, b) in [(true, false), (false, true), (true, true), (false, false)] {
            check(&txn(a, "1"), &txn(b, &long), bounds::after_txn);
            check(&recon(a, &long), &recon(b, "2"), bounds::after_recon);
        }
    }
}
