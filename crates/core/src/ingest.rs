//! Deciding one input record (SPEC §4, §11): `decide` turns a raw line into
//! an event, a duplicate, or a rejection; `apply` folds accepted events into
//! the write model that later decisions read. No I/O, no clock: the
//! recording time is handed in.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::calendar::business_date;
use crate::channel::{Channel, TxnResult, TxnType};
use crate::events::{Event, EventBody, FeeRuleApplied, OriginalSale, RowKey, TxnRecorded};
use crate::fees::{refund_fee, sale_fee, RefundState};
use crate::mask::{mask_card, mask_digit_runs};
use crate::money::{Fen, Overflow};
use crate::postings::{reverse, sale_entry, Entry, Route};
use crate::registry::{Reference, VersionedFees};
use crate::risk;
use crate::time::Timestamp;

crate::wire_enum! {
    /// Every reason a record can be rejected, in SPEC §11's check order.
    pub enum Reason {
        InvalidJson = "invalid_json",
        MissingField = "missing_field",
        ConflictingDuplicate = "conflicting_duplicate",
        InvalidField = "invalid_field",
        InvalidAmount = "invalid_amount",
        UnsupportedCurrency = "unsupported_currency",
        InvalidTimestamp = "invalid_timestamp",
        UnknownMerchant = "unknown_merchant",
        UnknownOriginal = "unknown_original",
        OriginalNotCancellable = "original_not_cancellable",
        RefundExceedsOriginal = "refund_exceeds_original",
        /// Not an input record: a message on the events topic that is not an
        /// event this build can read (written there by something else).
        InvalidEvent = "invalid_event",
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub field: Option<&'static str>,
    pub detail: String,
    /// The parsed card value, so the caller can mask the raw line exactly.
    pub card: Option<String>,
    /// The card was not a string (a number, an array…): every card-like
    /// digit run of the raw line is masked.
    pub mask_all: bool,
}

impl Rejection {
    /// The raw line as a dead letter may keep it: card numbers masked.
    pub fn masked_raw(&self, line: &str) -> String {
        match (&self.card, self.mask_all) {
            (_, true) => crate::mask::mask_unparsed(line),
            (Some(card), false) => crate::mask::mask_raw_with(line, card),
            (None, false) => crate::mask::mask_raw_line(line),
        }
    }
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxnState {
    pub digest: String,
    pub txn_type: TxnType,
    pub result: TxnResult,
    /// No `skip_serializing_if` here or in `SaleState`: the write model
    /// stores this in postcard, which is not self-describing. Boxed: most
    /// records are not sales with refunds pending, and the write model holds
    /// millions of these in a hash map.
    pub sale: Option<Box<SaleState>>,
}

/// Read access to the accepted records, by `txn_id`.
pub trait TxnLookup {
    fn txn(&self, txn_id: &str) -> Option<&TxnState>;
}

/// Read-write access, for the fold.
pub trait TxnStore: TxnLookup {
    fn put_txn(&mut self, txn_id: &str, state: TxnState);
    fn txn_mut(&mut self, txn_id: &str) -> Option<&mut TxnState>;
}

impl TxnLookup for std::collections::HashMap<String, TxnState> {
    fn txn(&self, txn_id: &str) -> Option<&TxnState> {
        self.get(txn_id)
    }
}

impl TxnStore for std::collections::HashMap<String, TxnState> {
    fn put_txn(&mut self, txn_id: &str, state: TxnState) {
        self.insert(txn_id.to_string(), state);
    }

    fn txn_mut(&mut self, txn_id: &str) -> Option<&mut TxnState> {
        self.get_mut(txn_id)
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

fn reject(reason: Reason, field: Option<&'static str>, detail: impl Into<String>) -> Outcome {
    Outcome::Rejected(Rejection {
        reason,
        field,
        detail: detail.into(),
        card: None,
        mask_all: false,
    })
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
    let mut hex = crate::hex::sha256(&serde_json::to_vec(obj).expect("JSON values serialise"));
    // 128 bits are ample to tell two records with the same txn_id apart.
    hex.truncate(32);
    hex
}

/// Decides one input line. `fees` is the fee schedule in force.
pub fn decide(
    reference: &Reference,
    fees: &VersionedFees,
    txns: &impl TxnLookup,
    recorded_at: &Timestamp,
    line: &str,
) -> Outcome {
    match prepare(line) {
        Ok(p) => decide_prepared(reference, fees, txns, recorded_at, p),
        Err(r) => Outcome::Rejected(r),
    }
}

/// A record after every check that needs no ledger state. `prepare` is
/// pure and independent per line, so callers may run it in parallel;
/// `decide_prepared` then runs the stateful checks in input order. Together
/// they apply SPEC §11's check order exactly as one pass would.
#[derive(Debug)]
pub struct Prepared {
    digest: String,
    /// The `txn_id` when it is a string: what the duplicate check needs.
    txn_id: Option<String>,
    /// The full card number when the record carried one (for masking the
    /// raw line of a dead letter), never stored.
    pan: Option<String>,
    /// The card was not a string: mask every card-like run of the raw line.
    mask_all: bool,
    /// `Err` holds an `invalid_field` defect.
    fields: Result<Fields, Rejection>,
}

#[derive(Debug)]
struct Fields {
    txn_type: TxnType,
    original_txn_id: Option<String>,
    merchant_id: String,
    terminal_id: String,
    mcc: Option<String>,
    channel: Channel,
    result: TxnResult,
    decline_code: Option<String>,
    rrn: String,
    stan: Option<String>,
    card: Option<String>,
    currency: String,
    /// Parsed amount and time; `late` holds the first of invalid_amount,
    /// unsupported_currency and invalid_timestamp, which rank after the
    /// stateful invalid_field check.
    amount: Fen,
    occurred_at: Option<Timestamp>,
    late: Option<Rejection>,
}

fn rejection(reason: Reason, field: Option<&'static str>, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        field,
        detail: detail.into(),
        card: None,
        mask_all: false,
    }
}

/// The stateless part of deciding a line: JSON, masking, missing fields,
/// the content digest, field types and vocabularies, amount, currency,
/// timestamp. Errors here are final (`invalid_json`, `missing_field`).
pub fn prepare(line: &str) -> Result<Prepared, Rejection> {
    let mut obj = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => return Err(rejection(Reason::InvalidJson, None, "not a JSON object")),
        Err(e) => {
            return Err(rejection(
                Reason::InvalidJson,
                None,
                format!("invalid JSON: {e}"),
            ))
        }
    };
    let mut pan = None;
    // A card that is not a string is invalid_field (below); its digits are
    // masked before anything else sees the record.
    let mut card_kind = None;
    match obj.get_mut("card") {
        Some(Value::String(card)) => {
            let masked = mask_card(card).into_owned();
            if masked != *card {
                pan = Some(std::mem::replace(card, masked));
            }
        }
        None | Some(Value::Null) => {}
        Some(other) => {
            card_kind = Some(json_kind(other));
            *other = Value::String(mask_digit_runs(&other.to_string()).into_owned());
        }
    }
    let with_card = |mut r: Rejection, pan: &Option<String>| {
        r.card = pan.clone();
        r.mask_all = card_kind.is_some();
        r
    };
    // 1. missing_field
    if let Some(field) = REQUIRED_FIELDS.iter().find(|f| is_missing(&obj, f)) {
        return Err(with_card(
            rejection(
                Reason::MissingField,
                Some(field),
                format!("{field} is required"),
            ),
            &pan,
        ));
    }
    let declared_type = str_field(&obj, "type").and_then(TxnType::parse);
    if declared_type.is_some_and(TxnType::needs_original) && is_missing(&obj, "original_txn_id") {
        return Err(with_card(
            rejection(
                Reason::MissingField,
                Some("original_txn_id"),
                "original_txn_id is required for void, reversal and refund",
            ),
            &pan,
        ));
    }
    let digest = content_digest(&obj);
    let txn_id = str_field(&obj, "txn_id").map(str::to_string);
    let fields = check_fields(&mut obj, declared_type, card_kind).map_err(|r| with_card(r, &pan));
    Ok(Prepared {
        digest,
        txn_id,
        pan,
        mask_all: card_kind.is_some(),
        fields,
    })
}

/// The stateful part: duplicates, the fee plan, the registry, the sale a
/// void, reversal or refund names. Builds the event of an accepted record.
pub fn decide_prepared(
    reference: &Reference,
    fees: &VersionedFees,
    txns: &impl TxnLookup,
    recorded_at: &Timestamp,
    p: Prepared,
) -> Outcome {
    let (pan, mask_all) = (p.pan, p.mask_all);
    let outcome = decide_checked(
        reference,
        fees,
        txns,
        recorded_at,
        p.digest,
        p.txn_id,
        p.fields,
    );
    match outcome {
        Outcome::Rejected(mut r) => {
            r.card = pan;
            r.mask_all = mask_all;
            Outcome::Rejected(r)
        }
        other => other,
    }
}

fn decide_checked(
    reference: &Reference,
    fees: &VersionedFees,
    txns: &impl TxnLookup,
    recorded_at: &Timestamp,
    digest: String,
    txn_id: Option<String>,
    fields: Result<Fields, Rejection>,
) -> Outcome {
    // 2. duplicate / conflicting_duplicate
    if let Some(outcome) = txn_id
        .as_deref()
        .and_then(|id| seen_before(txns, id, &digest))
    {
        return outcome;
    }
    match decide_new(reference, fees, txns, digest, txn_id, fields) {
        Ok(t) => Outcome::Accepted(Box::new(Event::transaction(
            t.record,
            t.occurred_at,
            recorded_at,
        ))),
        Err(r) => Outcome::Rejected(r),
    }
}

/// A record whose `txn_id` was accepted before: a duplicate when its
/// content is identical, else a conflicting one.
fn seen_before(txns: &impl TxnLookup, id: &str, digest: &str) -> Option<Outcome> {
    let previous = txns.txn(id)?;
    Some(if previous.digest == digest {
        Outcome::Duplicate
    } else {
        reject(
            Reason::ConflictingDuplicate,
            Some("txn_id"),
            format!("txn_id {id} was already accepted with different content"),
        )
    })
}

/// An accepted record, before it is an event.
struct Decided {
    record: TxnRecorded,
    occurred_at: Timestamp,
}

/// SPEC §11's checks after the duplicate check, in order, then the money
/// of the record by its type.
fn decide_new(
    reference: &Reference,
    fees: &VersionedFees,
    txns: &impl TxnLookup,
    digest: String,
    txn_id: Option<String>,
    fields: Result<Fields, Rejection>,
) -> Result<Decided, Rejection> {
    // 3. invalid_field: JSON types and vocabularies, then the fee plan
    let mut f = fields?;
    check_fee_plan(reference, fees, &f)?;
    // 4.–6. invalid_amount, unsupported_currency, invalid_timestamp
    if let Some(r) = f.late.take() {
        return Err(r);
    }
    let occurred_at = f
        .occurred_at
        .take()
        .expect("a record without a late defect has a timestamp");
    // 7. unknown_merchant
    let merchant = reference.merchant(&f.merchant_id).ok_or_else(|| {
        rejection(
            Reason::UnknownMerchant,
            Some("merchant_id"),
            format!("merchant {} is not registered", f.merchant_id),
        )
    })?;
    let ctx = Context {
        fees,
        merchant,
        business_date: business_date(occurred_at.at(), fees.schedule.cutoff),
        route: Route {
            merchant_id: merchant.merchant_id.clone(),
            clearing: merchant.clearing,
            intermediary_id: merchant.intermediary_id.clone(),
        },
    };
    let flags = risk::flags(reference, &f.merchant_id, &f.terminal_id, f.mcc.as_deref());
    let txn_id = txn_id.expect("a record with valid fields has a string txn_id");
    let mut t = skeleton(txn_id, f, digest, ctx.business_date, flags);
    if t.result == TxnResult::Approved || t.txn_type.needs_original() {
        match t.txn_type {
            TxnType::Sale => price_sale(&ctx, &mut t)?,
            TxnType::Void | TxnType::Reversal | TxnType::Refund => {
                // 8. unknown_original (a declined void or refund too)
                let sale = original_sale(txns, &t)?;
                if t.result == TxnResult::Approved {
                    match t.txn_type {
                        TxnType::Refund => refund_sale(&ctx, &mut t, &sale)?,
                        _ => cancel_sale(&mut t, &sale)?,
                    }
                }
            }
        }
    }
    Ok(Decided {
        record: t,
        occurred_at,
    })
}

/// What a decision needs of the world once the record's merchant is known.
struct Context<'a> {
    fees: &'a VersionedFees,
    merchant: &'a crate::registry::Merchant,
    business_date: NaiveDate,
    /// Where this record's own money goes: its merchant's route.
    route: Route,
}

impl Context<'_> {
    fn payout_for(&self, date: NaiveDate) -> Result<NaiveDate, Rejection> {
        self.fees
            .calendar
            .payout_date(date, self.merchant.settlement_cycle)
            .ok_or_else(|| {
                rejection(
                    Reason::InvalidField,
                    Some("occurred_at"),
                    format!("the calendar has no working day within 60 days after {date}"),
                )
            })
    }
}

/// The fee plan of a registered merchant must price the record's channel.
fn check_fee_plan(
    reference: &Reference,
    fees: &VersionedFees,
    f: &Fields,
) -> Result<(), Rejection> {
    let Some(m) = reference.merchant(&f.merchant_id) else {
        return Ok(());
    };
    if fees.schedule.rule(&m.fee_plan, f.channel).is_some() {
        return Ok(());
    }
    Err(rejection(
        Reason::InvalidField,
        Some("channel"),
        format!(
            "fee plan {:?} of merchant {} has no entry for channel {}",
            m.fee_plan,
            m.merchant_id,
            f.channel.as_str()
        ),
    ))
}

/// The record as accepted, before its money is decided.
fn skeleton(
    txn_id: String,
    f: Fields,
    content_digest: String,
    business_date: NaiveDate,
    flags: Vec<risk::RiskFlag>,
) -> TxnRecorded {
    TxnRecorded {
        flags,
        txn_id,
        txn_type: f.txn_type,
        original_txn_id: f.original_txn_id,
        merchant_id: f.merchant_id,
        terminal_id: f.terminal_id,
        mcc: f.mcc,
        channel: f.channel,
        amount: f.amount,
        currency: f.currency,
        result: f.result,
        decline_code: f.decline_code,
        rrn: f.rrn,
        stan: f.stan,
        card: f.card,
        business_date,
        content_digest,
        fee: Fen::ZERO,
        fee_rule: None,
        original: None,
        settlement: None,
        entry: Entry::default(),
    }
}

/// An approved sale: its fee under the merchant's plan, its postings and
/// its settlement row.
fn price_sale(ctx: &Context<'_>, t: &mut TxnRecorded) -> Result<(), Rejection> {
    let plan = &ctx.merchant.fee_plan;
    let rule = ctx
        .fees
        .schedule
        .rule(plan, t.channel)
        .expect("plan entry checked above");
    let fee = sale_fee(t.amount, rule).map_err(overflow)?;
    let payout = ctx.payout_for(ctx.business_date)?;
    t.fee = fee;
    t.fee_rule = Some(FeeRuleApplied {
        plan: plan.clone(),
        channel: t.channel,
        rate: rule.rate,
        cap: rule.cap,
        schedule_version: ctx.fees.version,
    });
    t.entry = sale_entry(&ctx.route, t.channel, t.amount, fee).map_err(overflow)?;
    t.settlement = Some(row_key(ctx.business_date, &ctx.route, payout));
    Ok(())
}

/// What a void, reversal or refund needs of the sale it names.
struct Original {
    id: String,
    result: TxnResult,
    sale: SaleState,
}

/// The accepted sale a void, reversal or refund names (8. unknown_original).
fn original_sale(txns: &impl TxnLookup, t: &TxnRecorded) -> Result<Original, Rejection> {
    let id = t.original_txn_id.clone().expect("checked above");
    match txns.txn(&id) {
        Some(TxnState {
            txn_type: TxnType::Sale,
            result,
            sale: Some(s),
            ..
        }) => Ok(Original {
            result: *result,
            sale: (**s).clone(),
            id,
        }),
        _ => Err(rejection(
            Reason::UnknownOriginal,
            Some("original_txn_id"),
            format!("no accepted sale {id} precedes this record"),
        )),
    }
}

/// Check 9, original_not_cancellable, for what every approved void, reversal and
/// refund requires: an approved sale not voided or reversed. Gives the
/// sale's route and payout date.
fn cancellable(o: &Original) -> Result<(Route, NaiveDate), Rejection> {
    let not = |detail: String| {
        rejection(
            Reason::OriginalNotCancellable,
            Some("original_txn_id"),
            detail,
        )
    };
    let (route, payout) = match (&o.sale.route, o.sale.payout_date) {
        (Some(r), Some(p)) if o.result == TxnResult::Approved => (r.clone(), p),
        _ => return Err(not(format!("sale {} was declined", o.id))),
    };
    if o.sale.cancelled {
        return Err(not(format!("sale {} is already voided or reversed", o.id)));
    }
    Ok((route, payout))
}

/// An approved void or reversal: the whole sale, on its own business date,
/// not partly refunded; it reverses the sale's postings in the sale's row.
fn cancel_sale(t: &mut TxnRecorded, o: &Original) -> Result<(), Rejection> {
    let (route, payout) = cancellable(o)?;
    let sale = &o.sale;
    if sale.refunded_amount > Fen::ZERO {
        return Err(rejection(
            Reason::OriginalNotCancellable,
            Some("original_txn_id"),
            format!("sale {} is partly refunded", o.id),
        ));
    }
    if sale.business_date != t.business_date {
        return Err(rejection(
            Reason::OriginalNotCancellable,
            Some("occurred_at"),
            format!(
                "sale {} belongs to business date {}, this record to {}",
                o.id, sale.business_date, t.business_date
            ),
        ));
    }
    let sale_entry_ = sale_entry(&route, sale.channel, sale.amount, sale.fee).map_err(overflow)?;
    t.fee = sale.fee;
    t.entry = reverse(&sale_entry_).map_err(overflow)?;
    t.original = Some(OriginalSale {
        business_date: sale.business_date,
        amount: sale.amount,
        fee: sale.fee,
    });
    t.settlement = Some(row_key(sale.business_date, &route, payout));
    Ok(())
}

/// An approved refund: within what is left of the sale (10.
/// refund_exceeds_original), its proportional fee given back, booked on the
/// refund's own business date to the merchant named on the record (as a
/// 跳商户 sale settles to its own merchant), back through the sale's channel.
fn refund_sale(ctx: &Context<'_>, t: &mut TxnRecorded, o: &Original) -> Result<(), Rejection> {
    cancellable(o)?;
    let sale = &o.sale;
    let refunded_after = sale
        .refunded_amount
        .checked_add(t.amount)
        .map_err(overflow)?;
    if refunded_after > sale.amount {
        return Err(rejection(
            Reason::RefundExceedsOriginal,
            Some("amount"),
            format!(
                "refund {} would bring refunds of sale {} to {refunded_after}, above its {}",
                t.amount, o.id, sale.amount
            ),
        ));
    }
    let state = RefundState {
        sale_amount: sale.amount,
        sale_fee: sale.fee,
        refunded_amount: sale.refunded_amount,
        refunded_fee: sale.refunded_fee,
    };
    let fee = refund_fee(state, t.amount).map_err(overflow)?;
    let payout = ctx.payout_for(ctx.business_date)?;
    let as_sale = sale_entry(&ctx.route, sale.channel, t.amount, fee).map_err(overflow)?;
    t.fee = fee;
    t.entry = reverse(&as_sale).map_err(overflow)?;
    t.settlement = Some(row_key(ctx.business_date, &ctx.route, payout));
    Ok(())
}

fn overflow(_: Overflow) -> Rejection {
    rejection(
        Reason::InvalidAmount,
        Some("amount"),
        "amount arithmetic overflows",
    )
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

/// Takes a string field out of the record (the digest is already taken).
fn take_string(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, Rejection> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(rejection(
            Reason::InvalidField,
            Some(field),
            format!("{field} must be a string, got {}", json_kind(&other)),
        )),
    }
}

fn required(obj: &mut Map<String, Value>, field: &'static str) -> Result<String, Rejection> {
    take_string(obj, field)?.ok_or_else(|| {
        rejection(
            Reason::MissingField,
            Some(field),
            format!("{field} is required"),
        )
    })
}

/// The longest identifier (`txn_id`, `merchant_id`, `terminal_id`, `rrn`,
/// `original_txn_id`) accepted: ids are keys of the log, the indexes and
/// the exports, and real ones are far shorter.
pub const ID_CHARS_MAX: usize = 64;

/// The longest optional text field (`mcc`, `stan`, `card`,
/// `decline_code`) accepted.
pub const TEXT_CHARS_MAX: usize = 64;

/// Whether `s` can be an identifier: 1 to `ID_CHARS_MAX` ASCII letters,
/// digits or `-_.:/`. What every later stage (keys, CSV, the journal's
/// descriptions) can read back as it was written.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= ID_CHARS_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
}

fn identifier(obj: &mut Map<String, Value>, field: &'static str) -> Result<String, Rejection> {
    let s = required(obj, field)?;
    if s.is_empty() || s.trim() != s {
        return Err(rejection(
            Reason::InvalidField,
            Some(field),
            format!("{field} {s:?} must be non-empty without surrounding spaces"),
        ));
    }
    if !is_identifier(&s) {
        return Err(rejection(
            Reason::InvalidField,
            Some(field),
            format!("{field} {s:?} must be 1 to {ID_CHARS_MAX} ASCII letters, digits or - _ . : /"),
        ));
    }
    Ok(s)
}

/// An optional text field: at most `TEXT_CHARS_MAX` characters, no control
/// characters.
fn text(obj: &mut Map<String, Value>, field: &'static str) -> Result<Option<String>, Rejection> {
    let s = take_string(obj, field)?;
    if let Some(v) = &s {
        if v.chars().count() > TEXT_CHARS_MAX || v.chars().any(char::is_control) {
            return Err(rejection(
                Reason::InvalidField,
                Some(field),
                format!("{field} must be at most {TEXT_CHARS_MAX} characters, none of them control characters"),
            ));
        }
    }
    Ok(s)
}

/// What kind of JSON value a wrongly typed field holds (never the value:
/// it may be a card number).
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The amount, currency and timestamp, parsed; the first of their defects
/// (invalid_amount, unsupported_currency, invalid_timestamp), which rank
/// after the stateful invalid_field check.
fn late_defects(
    amount_value: Option<&Value>,
    currency: &str,
    occurred_at_text: &str,
) -> (Fen, Option<Timestamp>, Option<Rejection>) {
    let mut late = None;
    let amount = match amount_value {
        Some(Value::String(s)) => Fen::parse_amount(s).unwrap_or_else(|e| {
            late = Some(rejection(
                Reason::InvalidAmount,
                Some("amount"),
                format!("{s:?}: {e}"),
            ));
            Fen::ZERO
        }),
        other => {
            late = Some(rejection(
                Reason::InvalidAmount,
                Some("amount"),
                format!(
                    "amount must be a decimal string, got {}",
                    other.map_or("nothing".to_string(), Value::to_string)
                ),
            ));
            Fen::ZERO
        }
    };
    if late.is_none() && currency != "CNY" {
        late = Some(rejection(
            Reason::UnsupportedCurrency,
            Some("currency"),
            format!("{currency:?} is not CNY"),
        ));
    }
    let occurred_at = Timestamp::parse(occurred_at_text);
    if late.is_none() {
        late = match &occurred_at {
            None => Some(rejection(
                Reason::InvalidTimestamp,
                Some("occurred_at"),
                format!("{occurred_at_text:?} is not an RFC 3339 time with an offset"),
            )),
            Some(t) if !crate::calendar::in_business_range(t.at()) => Some(rejection(
                Reason::InvalidTimestamp,
                Some("occurred_at"),
                format!(
                    "{occurred_at_text:?} is outside the ledger's business range ({} to {})",
                    crate::calendar::BUSINESS_FROM,
                    crate::calendar::BUSINESS_UNTIL
                ),
            )),
            Some(_) => None,
        };
    }
    (amount, occurred_at, late)
}

/// invalid_field checks (JSON types, vocabularies), then the parsing of
/// amount, currency and timestamp whose defects rank later.
fn check_fields(
    obj: &mut Map<String, Value>,
    declared_type: Option<TxnType>,
    card_kind: Option<&'static str>,
) -> Result<Fields, Rejection> {
    identifier(obj, "txn_id")?;
    let type_text = required(obj, "type")?;
    let merchant_id = identifier(obj, "merchant_id")?;
    let terminal_id = identifier(obj, "terminal_id")?;
    let channel_text = required(obj, "channel")?;
    let result_text = required(obj, "result")?;
    let rrn = identifier(obj, "rrn")?;
    // amount has its own reason code for every defect, a number included;
    // a currency or timestamp that is not a string is a wrong JSON type.
    let amount_value = obj.remove("amount");
    let currency = required(obj, "currency")?;
    let occurred_at_text = required(obj, "occurred_at")?;
    let mcc = text(obj, "mcc")?;
    let stan = text(obj, "stan")?;
    if let Some(kind) = card_kind {
        return Err(rejection(
            Reason::InvalidField,
            Some("card"),
            format!("card must be a string, got {kind}"),
        ));
    }
    let card = text(obj, "card")?;
    let decline_code = text(obj, "decline_code")?;
    let Some(txn_type) = declared_type else {
        return Err(rejection(
            Reason::InvalidField,
            Some("type"),
            format!("type {type_text:?} is not sale, void, reversal or refund"),
        ));
    };
    let original_txn_id = if txn_type.needs_original() {
        Some(identifier(obj, "original_txn_id")?)
    } else {
        None
    };
    let channel = Channel::parse(&channel_text).ok_or_else(|| {
        rejection(
            Reason::InvalidField,
            Some("channel"),
            format!("channel {channel_text:?} is not debit_card, credit_card, wechat, alipay or unionpay_qr"),
        )
    })?;
    let result = TxnResult::parse(&result_text).ok_or_else(|| {
        rejection(
            Reason::InvalidField,
            Some("result"),
            format!("result {result_text:?} is not approved or declined"),
        )
    })?;

    let (amount, occurred_at, late) =
        late_defects(amount_value.as_ref(), &currency, &occurred_at_text);
    Ok(Fields {
        txn_type,
        original_txn_id,
        merchant_id,
        terminal_id,
        mcc,
        channel,
        result,
        decline_code,
        rrn,
        stan,
        card,
        currency,
        amount,
        occurred_at,
        late,
    })
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
        EventBody::RecordRejected(_)
        | EventBody::ReconciliationRun(_)
        | EventBody::ReconciliationBreak(_)
        | EventBody::BreakResolved(_)
        | EventBody::PayoutBatchPrepared(_)
        | EventBody::PayoutBatchApproved(_)
        | EventBody::PayoutBatchExported(_)
        | EventBody::PayoutResultRecorded(_) => {}
    }
}

fn apply_txn(txns: &mut impl TxnStore, t: &TxnRecorded) {
    let sale = (t.txn_type == TxnType::Sale).then(|| {
        Box::new(SaleState {
            business_date: t.business_date,
            amount: t.amount,
            fee: t.fee,
            channel: t.channel,
            refunded_amount: Fen::ZERO,
            refunded_fee: Fen::ZERO,
            cancelled: false,
            route: t.route(),
            payout_date: t.settlement.as_ref().map(|r| r.payout_date),
        })
    });
    txns.put_txn(
        &t.txn_id,
        TxnState {
            digest: t.content_digest.clone(),
            txn_type: t.txn_type,
            result: t.result,
            sale,
        },
    );
    if t.result != TxnResult::Approved || t.txn_type == TxnType::Sale {
        return;
    }
    let Some(original_id) = &t.original_txn_id else {
        return;
    };
    let Some(original) = txns.txn_mut(original_id) else {
        return;
    };
    let Some(s) = original.sale.as_mut() else {
        return;
    };
    if t.txn_type.cancels_sale() {
        s.cancelled = true;
    } else {
        s.refunded_amount = s
            .refunded_amount
            .checked_add(t.amount)
            .expect("refund total within i64");
        s.refunded_fee = s
            .refunded_fee
            .checked_add(t.fee)
            .expect("refund fee total within i64");
        assert!(
            s.refunded_amount <= s.amount,
            "refunds of {original_id} exceed the sale"
        );
        assert!(
            s.refunded_fee <= s.fee,
            "refund fees of {original_id} exceed the sale's fee"
        );
    }
}
