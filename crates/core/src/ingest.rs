//! Deciding one input record (SPEC §4, §11): `decide` turns a raw line into
//! an event, a duplicate, or a rejection; `apply` folds accepted events into
//! the write model that later decisions read. No I/O, no clock: the
//! recording time is handed in.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::calendar::{business_date, parse_timestamp};
use crate::channel::{Channel, TxnResult, TxnType};
use crate::events::{
    Event, EventBody, FeeRuleApplied, OriginalSale, RowDelta, RowKey, SettlementEffect, TxnRecorded,
};
use crate::fees::{refund_fee, sale_fee, RefundState};
use crate::mask::mask_card;
use crate::money::{Fen, Overflow};
use crate::postings::{reverse, sale_entry, Entry, Route};
use crate::registry::{Reference, VersionedFees};
use crate::risk;

/// Every reason a record can be rejected, in SPEC §11's check order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    InvalidJson,
    MissingField,
    ConflictingDuplicate,
    InvalidField,
    InvalidAmount,
    UnsupportedCurrency,
    InvalidTimestamp,
    UnknownMerchant,
    UnknownOriginal,
    OriginalNotCancellable,
    RefundExceedsOriginal,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::MissingField => "missing_field",
            Reason::ConflictingDuplicate => "conflicting_duplicate",
            Reason::InvalidField => "invalid_field",
            Reason::InvalidAmount => "invalid_amount",
            Reason::UnsupportedCurrency => "unsupported_currency",
            Reason::InvalidTimestamp => "invalid_timestamp",
            Reason::UnknownMerchant => "unknown_merchant",
            Reason::UnknownOriginal => "unknown_original",
            Reason::OriginalNotCancellable => "original_not_cancellable",
            Reason::RefundExceedsOriginal => "refund_exceeds_original",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub field: Option<&'static str>,
    pub detail: String,
    /// The parsed card value, so the caller can mask the raw line exactly.
    pub card: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted(Box<Event>),
    /// The same `txn_id` with identical content was accepted before.
    Duplicate,
    Rejected(Rejection),
}

/// What the write model keeps of a sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleState {
    pub business_date: NaiveDate,
    pub amount: Fen,
    pub fee: Fen,
    pub channel: Channel,
    pub refunded_amount: Fen,
    pub refunded_fee: Fen,
    pub cancelled: bool,
    /// Set for approved sales: where the money went and when it pays out.
    pub route: Option<Route>,
    pub payout_date: Option<NaiveDate>,
}

/// What the write model keeps of every accepted record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnState {
    pub digest: String,
    pub txn_type: TxnType,
    pub result: TxnResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale: Option<SaleState>,
}

/// Read access to the accepted records, by `txn_id`.
pub trait TxnLookup {
    fn txn(&self, txn_id: &str) -> Option<TxnState>;
}

/// Read-write access, for the fold.
pub trait TxnStore: TxnLookup {
    fn put_txn(&mut self, txn_id: &str, state: TxnState);
}

impl TxnLookup for std::collections::HashMap<String, TxnState> {
    fn txn(&self, txn_id: &str) -> Option<TxnState> {
        self.get(txn_id).cloned()
    }
}

impl TxnStore for std::collections::HashMap<String, TxnState> {
    fn put_txn(&mut self, txn_id: &str, state: TxnState) {
        self.insert(txn_id.to_string(), state);
    }
}

/// Required keys of every record; `original_txn_id` too for void,
/// reversal and refund. A key present as `null` is missing.
pub const REQUIRED_FIELDS: [&str; 10] = [
    "txn_id",
    "type",
    "merchant_id",
    "terminal_id",
    "channel",
    "amount",
    "currency",
    "result",
    "rrn",
    "occurred_at",
];

const OPTIONAL_STRING_FIELDS: [&str; 4] = ["mcc", "stan", "card", "decline_code"];

fn reject(reason: Reason, field: Option<&'static str>, detail: impl Into<String>) -> Outcome {
    Outcome::Rejected(Rejection { reason, field, detail: detail.into(), card: None })
}

fn str_field<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    obj.get(field).and_then(Value::as_str)
}

fn is_missing(obj: &Map<String, Value>, field: &str) -> bool {
    matches!(obj.get(field), None | Some(Value::Null))
}

/// The canonical digest of a record: SHA-256 of its JSON with sorted keys
/// (serde_json's map is ordered) after the card is masked.
pub fn content_digest(obj: &Map<String, Value>) -> String {
    sha256_hex(&serde_json::to_vec(obj).expect("JSON values serialise"))
}

/// Lower-case hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in hash {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Decides one input line. `fees` is the fee schedule in force.
pub fn decide(
    reference: &Reference,
    fees: &VersionedFees,
    txns: &impl TxnLookup,
    recorded_at: &str,
    line: &str,
) -> Outcome {
    let mut obj = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => return reject(Reason::InvalidJson, None, "not a JSON object"),
        Err(e) => return reject(Reason::InvalidJson, None, format!("invalid JSON: {e}")),
    };
    let mut original_card = None;
    if let Some(Value::String(card)) = obj.get_mut("card") {
        let masked = mask_card(card).into_owned();
        if masked != *card {
            original_card = Some(std::mem::replace(card, masked));
        }
    }
    let outcome = decide_object(reference, fees, txns, recorded_at, &obj);
    match outcome {
        Outcome::Rejected(mut r) => {
            r.card = original_card;
            Outcome::Rejected(r)
        }
        other => other,
    }
}

fn decide_object(
    reference: &Reference,
    fees: &VersionedFees,
    txns: &impl TxnLookup,
    recorded_at: &str,
    obj: &Map<String, Value>,
) -> Outcome {
    // 1. missing_field
    if let Some(field) = REQUIRED_FIELDS.iter().find(|f| is_missing(obj, f)) {
        return reject(Reason::MissingField, Some(field), format!("{field} is required"));
    }
    let declared_type = str_field(obj, "type").and_then(TxnType::parse);
    if declared_type.is_some_and(TxnType::needs_original) && is_missing(obj, "original_txn_id") {
        return reject(
            Reason::MissingField,
            Some("original_txn_id"),
            "original_txn_id is required for void, reversal and refund",
        );
    }

    // 2. duplicate / conflicting_duplicate
    let digest = content_digest(obj);
    if let Some(id) = str_field(obj, "txn_id") {
        if let Some(previous) = txns.txn(id) {
            return if previous.digest == digest {
                Outcome::Duplicate
            } else {
                reject(
                    Reason::ConflictingDuplicate,
                    Some("txn_id"),
                    format!("txn_id {id} was already accepted with different content"),
                )
            };
        }
    }

    // 3. invalid_field: JSON types and vocabularies
    let checked = match check_fields(obj, declared_type) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    if let Some(m) = reference.merchant(checked.merchant_id) {
        if fees.schedule.rule(&m.fee_plan, checked.channel).is_none() {
            return reject(
                Reason::InvalidField,
                Some("channel"),
                format!("fee plan {:?} of merchant {} has no entry for channel {}", m.fee_plan, m.merchant_id, checked.channel.as_str()),
            );
        }
    }

    // 4. invalid_amount
    let amount = match obj.get("amount") {
        Some(Value::String(s)) => match Fen::parse_amount(s) {
            Ok(a) => a,
            Err(e) => return reject(Reason::InvalidAmount, Some("amount"), format!("{s:?}: {e}")),
        },
        Some(other) => {
            return reject(Reason::InvalidAmount, Some("amount"), format!("amount must be a decimal string, got {other}"))
        }
        None => unreachable!("missing amount was rejected above"),
    };

    // 5. unsupported_currency
    let currency = str_field(obj, "currency").unwrap_or_default();
    if currency != "CNY" {
        return reject(Reason::UnsupportedCurrency, Some("currency"), format!("{currency:?} is not CNY"));
    }

    // 6. invalid_timestamp
    let occurred_at_text = str_field(obj, "occurred_at").unwrap_or_default();
    let Some(occurred_at) = parse_timestamp(occurred_at_text) else {
        return reject(
            Reason::InvalidTimestamp,
            Some("occurred_at"),
            format!("{occurred_at_text:?} is not an RFC 3339 time with an offset"),
        );
    };
    let bd = business_date(occurred_at, fees.schedule.cutoff);

    // 7. unknown_merchant
    let Some(merchant) = reference.merchant(checked.merchant_id) else {
        return reject(
            Reason::UnknownMerchant,
            Some("merchant_id"),
            format!("merchant {} is not registered", checked.merchant_id),
        );
    };

    let mut t = TxnRecorded {
        txn_id: checked.txn_id.to_string(),
        txn_type: checked.txn_type,
        original_txn_id: checked.original_txn_id.map(str::to_string),
        merchant_id: checked.merchant_id.to_string(),
        terminal_id: checked.terminal_id.to_string(),
        mcc: str_field(obj, "mcc").map(str::to_string),
        channel: checked.channel,
        amount,
        currency: currency.to_string(),
        result: checked.result,
        decline_code: str_field(obj, "decline_code").map(str::to_string),
        rrn: checked.rrn.to_string(),
        stan: str_field(obj, "stan").map(str::to_string),
        card: str_field(obj, "card").map(str::to_string),
        business_date: bd,
        payout_date: None,
        content_digest: digest,
        flags: risk::flags(reference, checked.merchant_id, checked.terminal_id, str_field(obj, "mcc")),
        fee: Fen::ZERO,
        fee_rule: None,
        original: None,
        settlement: None,
        route: None,
        entry: Entry::default(),
    };
    let route = Route {
        merchant_id: merchant.merchant_id.clone(),
        clearing: merchant.clearing,
        intermediary_id: merchant.intermediary_id.clone(),
    };
    let payout_for = |date: NaiveDate| {
        fees.calendar.payout_date(date, merchant.settlement_cycle).ok_or_else(|| {
            reject(
                Reason::InvalidField,
                Some("occurred_at"),
                format!("the calendar has no working day within 60 days after {date}"),
            )
        })
    };

    let decided: Result<(), Outcome> = (|| {
        match checked.txn_type {
            TxnType::Sale => {
                if checked.result == TxnResult::Declined {
                    return Ok(());
                }
                let rule = fees
                    .schedule
                    .rule(&merchant.fee_plan, checked.channel)
                    .expect("plan entry checked above");
                let fee = sale_fee(amount, rule).map_err(overflow)?;
                let payout = payout_for(bd)?;
                t.fee = fee;
                t.fee_rule = Some(FeeRuleApplied {
                    plan: merchant.fee_plan.clone(),
                    channel: checked.channel,
                    rate: rule.rate,
                    cap: rule.cap,
                    schedule_version: fees.version,
                });
                t.entry = sale_entry(&route, checked.channel, amount, fee).map_err(overflow)?;
                t.settlement = Some(SettlementEffect {
                    row: row_key(bd, &route, payout),
                    delta: RowDelta { sales_count: 1, sales_amount: amount, fee, ..RowDelta::default() },
                });
                t.payout_date = Some(payout);
                t.route = Some(route.clone());
            }
            TxnType::Void | TxnType::Reversal | TxnType::Refund => {
                let original_id = checked.original_txn_id.expect("checked above");
                let sale = match txns.txn(original_id) {
                    Some(TxnState { txn_type: TxnType::Sale, result, sale: Some(s), .. }) => (result, s),
                    _ => {
                        return Err(reject(
                            Reason::UnknownOriginal,
                            Some("original_txn_id"),
                            format!("no accepted sale {original_id} precedes this record"),
                        ))
                    }
                };
                let (sale_result, sale) = sale;
                if checked.result == TxnResult::Declined {
                    // A declined void or refund is recorded and moves nothing.
                    return Ok(());
                }
                let (route_s, payout_s) = match (&sale.route, sale.payout_date) {
                    (Some(r), Some(p)) if sale_result == TxnResult::Approved => (r.clone(), p),
                    _ => {
                        return Err(reject(
                            Reason::OriginalNotCancellable,
                            Some("original_txn_id"),
                            format!("sale {original_id} was declined"),
                        ))
                    }
                };
                if sale.cancelled {
                    return Err(reject(
                        Reason::OriginalNotCancellable,
                        Some("original_txn_id"),
                        format!("sale {original_id} is already voided or reversed"),
                    ));
                }
                t.original = Some(OriginalSale {
                    txn_id: original_id.to_string(),
                    business_date: sale.business_date,
                    amount: sale.amount,
                    fee: sale.fee,
                    route: route_s.clone(),
                    channel: sale.channel,
                    payout_date: payout_s,
                });
                if checked.txn_type.cancels_sale() {
                    if sale.refunded_amount > Fen::ZERO {
                        return Err(reject(
                            Reason::OriginalNotCancellable,
                            Some("original_txn_id"),
                            format!("sale {original_id} is partly refunded"),
                        ));
                    }
                    if sale.business_date != bd {
                        return Err(reject(
                            Reason::OriginalNotCancellable,
                            Some("occurred_at"),
                            format!("sale {original_id} belongs to business date {}, this record to {bd}", sale.business_date),
                        ));
                    }
                    let sale_entry_ = sale_entry(&route_s, sale.channel, sale.amount, sale.fee).map_err(overflow)?;
                    t.fee = sale.fee;
                    t.entry = reverse(&sale_entry_).map_err(overflow)?;
                    t.settlement = Some(SettlementEffect {
                        row: row_key(sale.business_date, &route_s, payout_s),
                        delta: RowDelta {
                            sales_count: -1,
                            sales_amount: sale.amount.checked_neg().map_err(overflow)?,
                            fee: sale.fee.checked_neg().map_err(overflow)?,
                            ..RowDelta::default()
                        },
                    });
                    t.payout_date = Some(payout_s);
                    t.route = Some(route_s);
                } else {
                    let refunded_after = sale.refunded_amount.checked_add(amount).map_err(overflow)?;
                    if refunded_after > sale.amount {
                        return Err(reject(
                            Reason::RefundExceedsOriginal,
                            Some("amount"),
                            format!(
                                "refund {amount} would bring refunds of sale {original_id} to {refunded_after}, above its {}",
                                sale.amount
                            ),
                        ));
                    }
                    let state = RefundState {
                        sale_amount: sale.amount,
                        sale_fee: sale.fee,
                        refunded_amount: sale.refunded_amount,
                        refunded_fee: sale.refunded_fee,
                    };
                    let fee = refund_fee(state, amount).map_err(overflow)?;
                    let payout = payout_for(bd)?;
                    // The refund is taken from the merchant named on the
                    // record (as a 跳商户 sale settles to its own merchant),
                    // back through the sale's channel.
                    let as_sale = sale_entry(&route, sale.channel, amount, fee).map_err(overflow)?;
                    t.fee = fee;
                    t.entry = reverse(&as_sale).map_err(overflow)?;
                    t.settlement = Some(SettlementEffect {
                        row: row_key(bd, &route, payout),
                        delta: RowDelta {
                            refund_count: 1,
                            refund_amount: amount,
                            fee: fee.checked_neg().map_err(overflow)?,
                            ..RowDelta::default()
                        },
                    });
                    t.payout_date = Some(payout);
                    t.route = Some(route.clone());
                }
            }
        }
        Ok(())
    })();
    if let Err(outcome) = decided {
        return outcome;
    }

    Outcome::Accepted(Box::new(Event {
        event_id: format!("txn:{}", t.txn_id),
        merchant_id: Some(t.merchant_id.clone()),
        occurred_at: occurred_at_text.to_string(),
        recorded_at: recorded_at.to_string(),
        body: EventBody::TransactionRecorded(Box::new(t)),
    }))
}

fn overflow(_: Overflow) -> Outcome {
    reject(Reason::InvalidAmount, Some("amount"), "amount arithmetic overflows")
}

fn row_key(business_date: NaiveDate, route: &Route, payout_date: NaiveDate) -> RowKey {
    RowKey {
        business_date,
        merchant_id: route.merchant_id.clone(),
        clearing: route.clearing,
        intermediary_id: route.intermediary_id.clone(),
        payout_date,
    }
}

struct Checked<'a> {
    txn_id: &'a str,
    txn_type: TxnType,
    original_txn_id: Option<&'a str>,
    merchant_id: &'a str,
    terminal_id: &'a str,
    channel: Channel,
    result: TxnResult,
    rrn: &'a str,
}

fn check_fields<'a>(obj: &'a Map<String, Value>, declared_type: Option<TxnType>) -> Result<Checked<'a>, Outcome> {
    let string = |field: &'static str| -> Result<&'a str, Outcome> {
        match obj.get(field) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(reject(Reason::InvalidField, Some(field), format!("{field} must be a string, got {other}"))),
            None => Err(reject(Reason::MissingField, Some(field), format!("{field} is required"))),
        }
    };
    let id = |field: &'static str| -> Result<&'a str, Outcome> {
        let s = string(field)?;
        if s.is_empty() || s.trim() != s {
            return Err(reject(Reason::InvalidField, Some(field), format!("{field} {s:?} must be non-empty without surrounding spaces")));
        }
        Ok(s)
    };
    let txn_id = id("txn_id")?;
    let type_text = string("type")?;
    let merchant_id = id("merchant_id")?;
    let terminal_id = id("terminal_id")?;
    let channel_text = string("channel")?;
    let result_text = string("result")?;
    let rrn = id("rrn")?;
    // amount, currency and occurred_at have their own reason codes below,
    // except that a non-string currency or timestamp is a wrong JSON type.
    string("currency")?;
    string("occurred_at")?;
    for field in OPTIONAL_STRING_FIELDS {
        match obj.get(field) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(other) => {
                return Err(reject(Reason::InvalidField, Some(field), format!("{field} must be a string or null, got {other}")))
            }
        }
    }
    let Some(txn_type) = declared_type else {
        return Err(reject(Reason::InvalidField, Some("type"), format!("type {type_text:?} is not sale, void, reversal or refund")));
    };
    let original_txn_id = if txn_type.needs_original() { Some(id("original_txn_id")?) } else { None };
    let channel = Channel::parse(channel_text).ok_or_else(|| {
        reject(
            Reason::InvalidField,
            Some("channel"),
            format!("channel {channel_text:?} is not debit_card, credit_card, wechat, alipay or unionpay_qr"),
        )
    })?;
    let result = TxnResult::parse(result_text).ok_or_else(|| {
        reject(Reason::InvalidField, Some("result"), format!("result {result_text:?} is not approved or declined"))
    })?;
    Ok(Checked { txn_id, txn_type, original_txn_id, merchant_id, terminal_id, channel, result, rrn })
}

/// Folds an accepted event into the write model (reference data and
/// accepted records). No business rules here: `decide` made them.
pub fn apply(reference: &mut Reference, txns: &mut impl TxnStore, event: &Event) {
    match &event.body {
        EventBody::FeeScheduleLoaded(f) => reference.fees = Some(f.clone()),
        EventBody::IntermediaryRegistered(i) | EventBody::IntermediaryUpdated(i) => {
            reference.put_intermediary(i.version, i.value.clone())
        }
        EventBody::MerchantRegistered(m) | EventBody::MerchantUpdated(m) => {
            reference.put_merchant(m.version, m.value.clone())
        }
        EventBody::TransactionRecorded(t) => apply_txn(txns, t),
        EventBody::RecordRejected(_) => {}
    }
}

fn apply_txn(txns: &mut impl TxnStore, t: &TxnRecorded) {
    let sale = (t.txn_type == TxnType::Sale).then(|| SaleState {
        business_date: t.business_date,
        amount: t.amount,
        fee: t.fee,
        channel: t.channel,
        refunded_amount: Fen::ZERO,
        refunded_fee: Fen::ZERO,
        cancelled: false,
        route: t.route.clone(),
        payout_date: t.payout_date,
    });
    txns.put_txn(&t.txn_id, TxnState { digest: t.content_digest.clone(), txn_type: t.txn_type, result: t.result, sale });
    if t.result != TxnResult::Approved || t.txn_type == TxnType::Sale {
        return;
    }
    let Some(original_id) = &t.original_txn_id else { return };
    let Some(mut original) = txns.txn(original_id) else { return };
    let Some(s) = original.sale.as_mut() else { return };
    if t.txn_type.cancels_sale() {
        s.cancelled = true;
    } else {
        s.refunded_amount = s.refunded_amount.checked_add(t.amount).expect("refund total within i64");
        s.refunded_fee = s.refunded_fee.checked_add(t.fee).expect("refund fee total within i64");
        assert!(s.refunded_amount <= s.amount, "refunds of {original_id} exceed the sale");
        assert!(s.refunded_fee <= s.fee, "refund fees of {original_id} exceed the sale's fee");
    }
    txns.put_txn(original_id, original);
}
