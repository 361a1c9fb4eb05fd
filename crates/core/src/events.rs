//! Events: immutable, self-describing, versioned JSON (SPEC §5).
//!
//! The envelope is `{"event_id","type","schema_version","merchant_id",
//! "occurred_at","recorded_at","body"}`. Decoding dispatches on
//! `(type, schema_version)`, so an older version can be upcast on read.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::channel::{Channel, TxnResult, TxnType};

use crate::money::Fen;
use crate::payout::{
    PayoutBatchApproved, PayoutBatchExported, PayoutBatchPrepared, PayoutResultRecorded,
};
use crate::position::Position;
use crate::postings::{Entry, Route};
use crate::recon::{ReconciliationBreak, ReconciliationRun};
use crate::registry::{Intermediary, Merchant, RegistryChange, Versioned, VersionedFees};
use crate::resolution::BreakResolved;
use crate::risk::RiskFlag;
use crate::time::Timestamp;

/// The key of reconciliation events: one key keeps a run's breaks and its
/// summary in order on one partition.
pub const RECONCILIATION_KEY: &str = "reconciliation";

/// The key of payout events: a payout date's batch, approval, export and
/// bank results stay in order on one partition.
pub const PAYOUTS_KEY: &str = "payouts";

/// The schema version this build writes for reference, dead-letter and
/// reconciliation events. 2: the event carries its partition's hash chain
/// (`chain`, SPEC §15); version 1 had the same body and no chain.
pub const SCHEMA_VERSION: u32 = 2;

/// The schema version this build writes for transaction events
/// (`SaleRecorded`, `VoidRecorded`, `ReversalRecorded`, `RefundRecorded`).
/// 3: the event carries its partition's hash chain; version 2 had the same
/// body and no chain. Version 1 bodies came in two shapes; both are upcast
/// on read (`upcast_txn_v1`).
pub const TXN_SCHEMA_VERSION: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Deterministic, from what the event records (FORMATS.md): the same
    /// record always gets the same id.
    pub event_id: String,
    /// Position of this event among the events of its key (1, 2, …),
    /// assigned by the single writer. Projections keep the highest applied
    /// per key, so a redelivered or re-published event is applied once.
    /// Dead letters carry 0.
    pub seq: u64,
    /// The partition key: the merchant an event belongs to, `None` for
    /// reference data that belongs to no merchant (fee schedule,
    /// intermediaries).
    pub merchant_id: Option<String>,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    pub body: EventBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    FeeScheduleLoaded(VersionedFees),
    IntermediaryRegistered(Versioned<Intermediary>),
    IntermediaryUpdated(Versioned<Intermediary>),
    MerchantRegistered(Versioned<Merchant>),
    MerchantUpdated(Versioned<Merchant>),
    /// A sale, void, reversal or refund record, approved or declined.
    TransactionRecorded(Box<TxnRecorded>),
    /// A dead letter: an input record that was not accepted.
    RecordRejected(RecordRejected),
    /// A reconciliation run's summary and held pool (recorded after its
    /// breaks).
    ReconciliationRun(Box<ReconciliationRun>),
    /// One break found by a reconciliation run.
    ReconciliationBreak(Box<ReconciliationBreak>),
    /// A reconciliation break decided (SPEC §14).
    BreakResolved(Box<BreakResolved>),
    /// SPEC §13: a payout batch, its approval, its export, a bank file.
    PayoutBatchPrepared(Box<PayoutBatchPrepared>),
    PayoutBatchApproved(PayoutBatchApproved),
    PayoutBatchExported(PayoutBatchExported),
    PayoutResultRecorded(Box<PayoutResultRecorded>),
}

/// The settlement row a record changes, and by how much. The producer
/// decides it once; projections only add it up, so their state does not
/// depend on the order in which partitions are read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowKey {
    #[serde(with = "crate::dates")]
    pub business_date: NaiveDate,
    pub merchant_id: String,
    pub clearing: crate::registry::Clearing,
    pub intermediary_id: Option<String>,
    #[serde(with = "crate::dates")]
    pub payout_date: NaiveDate,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowDelta {
    pub sales_count: i64,
    pub sales_amount: Fen,
    pub refund_count: i64,
    pub refund_amount: Fen,
    /// Sale fees minus refund fees.
    pub fee: Fen,
}

impl RowDelta {
    /// How a record that moves money changes its settlement row (SPEC §7):
    /// a sale adds itself, a void or reversal removes its sale (`original`;
    /// `None` without it), a refund adds a refund and gives back its fee.
    pub fn of(
        txn_type: TxnType,
        amount: Fen,
        fee: Fen,
        original: Option<&OriginalSale>,
    ) -> Option<RowDelta> {
        Some(match txn_type {
            TxnType::Sale => RowDelta {
                sales_count: 1,
                sales_amount: amount,
                fee,
                ..RowDelta::default()
            },
            TxnType::Void | TxnType::Reversal => {
                let o = original?;
                RowDelta {
                    sales_count: -1,
                    sales_amount: Fen(-o.amount.0),
                    fee: Fen(-o.fee.0),
                    ..RowDelta::default()
                }
            }
            TxnType::Refund => RowDelta {
                refund_count: 1,
                refund_amount: amount,
                fee: Fen(-fee.0),
                ..RowDelta::default()
            },
        })
    }
}

/// The fee rule that produced a sale's fee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeeRuleApplied {
    pub plan: String,
    pub channel: Channel,
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: rust_decimal::Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Fen>,
    pub schedule_version: u32,
}

/// What an approved void or reversal cancelled of its sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OriginalSale {
    #[serde(with = "crate::dates")]
    pub business_date: NaiveDate,
    pub amount: Fen,
    pub fee: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxnRecorded {
    pub txn_id: String,
    pub txn_type: TxnType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_txn_id: Option<String>,
    pub merchant_id: String,
    pub terminal_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcc: Option<String>,
    pub channel: Channel,
    pub amount: Fen,
    pub currency: String,
    pub result: TxnResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    pub rrn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stan: Option<String>,
    /// Masked: first 6 and last 4 digits at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    #[serde(with = "crate::dates")]
    pub business_date: NaiveDate,
    /// SHA-256 (first 128 bits, hex) of the input record as parsed JSON
    /// with sorted keys and the card masked: how an identical resend is
    /// recognised.
    pub content_digest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<RiskFlag>,
    /// The sale's fee, or the fee a refund gives back; zero otherwise.
    pub fee: Fen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rule: Option<FeeRuleApplied>,
    /// Set on an approved void or reversal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<OriginalSale>,
    /// The settlement row this record counts in, when it moves money: its
    /// own for a sale or refund, the sale's for a void or reversal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<RowKey>,
    #[serde(default, skip_serializing_if = "Entry::is_empty")]
    pub entry: Entry,
}

impl TxnRecorded {
    /// How much this record changes its settlement row (SPEC §7): a sale
    /// adds itself, a void or reversal removes its sale, a refund adds a
    /// refund and gives back its fee. Declined records change nothing.
    pub fn row_delta(&self) -> Option<(&RowKey, RowDelta)> {
        let row = self.settlement.as_ref()?;
        let delta = RowDelta::of(self.txn_type, self.amount, self.fee, self.original.as_ref())?;
        Some((row, delta))
    }

    /// Where the money of this record goes, when it moves any.
    pub fn route(&self) -> Option<Route> {
        self.settlement.as_ref().map(|r| Route {
            merchant_id: r.merchant_id.clone(),
            clearing: r.clearing,
            intermediary_id: r.intermediary_id.clone(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordRejected {
    /// Where the record came from (`transactions.jsonl`, `-` for stdin, or
    /// the events topic for a message that is not an event).
    pub source: String,
    /// Line number in the source (the offset, for a topic).
    pub line: u64,
    /// `PARTITION:OFFSET` when the source is a topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// The input line as received, with card numbers masked.
    pub raw: String,
    pub reason: crate::ingest::Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub detail: String,
}

impl EventBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::FeeScheduleLoaded(_) => "FeeScheduleLoaded",
            EventBody::IntermediaryRegistered(_) => "IntermediaryRegistered",
            EventBody::IntermediaryUpdated(_) => "IntermediaryUpdated",
            EventBody::MerchantRegistered(_) => "MerchantRegistered",
            EventBody::MerchantUpdated(_) => "MerchantUpdated",
            EventBody::TransactionRecorded(t) => match t.txn_type {
                TxnType::Sale => "SaleRecorded",
                TxnType::Void => "VoidRecorded",
                TxnType::Reversal => "ReversalRecorded",
                TxnType::Refund => "RefundRecorded",
            },
            EventBody::RecordRejected(_) => "RecordRejected",
            EventBody::ReconciliationRun(_) => "ReconciliationRun",
            EventBody::ReconciliationBreak(_) => "ReconciliationBreak",
            EventBody::BreakResolved(_) => "BreakResolved",
            EventBody::PayoutBatchPrepared(_) => "PayoutBatchPrepared",
            EventBody::PayoutBatchApproved(_) => "PayoutBatchApproved",
            EventBody::PayoutBatchExported(_) => "PayoutBatchExported",
            EventBody::PayoutResultRecorded(_) => "PayoutResultRecorded",
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct EnvelopeOut<'a, B: Serialize> {
    event_id: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    schema_version: u32,
    seq: u64,
    merchant_id: &'a Option<String>,
    occurred_at: &'a Timestamp,
    recorded_at: &'a Timestamp,
    body: &'a B,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    event_id: String,
    #[serde(rename = "type")]
    type_name: String,
    schema_version: u32,
    #[serde(default)]
    seq: u64,
    merchant_id: Option<String>,
    occurred_at: Timestamp,
    recorded_at: Timestamp,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// Why bytes on the log are not an event this build can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not an event envelope: {0}")]
    Envelope(String),
    #[error("unknown event type {type_name:?} (schema_version {version})")]
    UnknownType { type_name: String, version: u32 },
    #[error("{type_name} v{version} body: {detail}")]
    Body {
        type_name: String,
        version: u32,
        detail: String,
    },
}

/// The id of the event that records the accepted transaction `txn_id`.
pub fn txn_event_id(txn_id: &str) -> String {
    format!("txn:{txn_id}")
}

/// Constructors, one per kind of event: each builds the event's id and
/// envelope the one way FORMATS.md describes. `seq` is 0 until the writer
/// numbers the event within its key.
impl Event {
    fn new(
        event_id: String,
        merchant_id: Option<String>,
        occurred_at: Timestamp,
        recorded_at: &Timestamp,
        body: EventBody,
    ) -> Event {
        Event {
            event_id,
            seq: 0,
            merchant_id,
            occurred_at,
            recorded_at: recorded_at.clone(),
            body,
        }
    }

    /// `FeeScheduleLoaded`, id `fees:vN`.
    pub fn fee_schedule_loaded(fees: VersionedFees, at: &Timestamp) -> Event {
        Event::new(
            format!("fees:v{}", fees.version),
            None,
            at.clone(),
            at,
            EventBody::FeeScheduleLoaded(fees),
        )
    }

    /// A registry change, id `merchant:ID:vN` or `intermediary:ID:vN`.
    pub fn registry_change(change: RegistryChange, at: &Timestamp) -> Event {
        let merchant = |v: &Versioned<Merchant>| {
            let id = v.value.merchant_id.clone();
            (format!("merchant:{id}:v{}", v.version), Some(id))
        };
        let intermediary = |v: &Versioned<Intermediary>| {
            let id = &v.value.intermediary_id;
            (format!("intermediary:{id}:v{}", v.version), None)
        };
        let ((event_id, merchant_id), body) = match change {
            RegistryChange::IntermediaryRegistered(v) => {
                (intermediary(&v), EventBody::IntermediaryRegistered(v))
            }
            RegistryChange::IntermediaryUpdated(v) => {
                (intermediary(&v), EventBody::IntermediaryUpdated(v))
            }
            RegistryChange::MerchantRegistered(v) => {
                (merchant(&v), EventBody::MerchantRegistered(v))
            }
            RegistryChange::MerchantUpdated(v) => (merchant(&v), EventBody::MerchantUpdated(v)),
        };
        Event::new(event_id, merchant_id, at.clone(), at, body)
    }

    /// An accepted transaction record, id `txn:TXN_ID`, keyed by its merchant.
    pub fn transaction(t: TxnRecorded, occurred_at: Timestamp, recorded_at: &Timestamp) -> Event {
        Event::new(
            txn_event_id(&t.txn_id),
            Some(t.merchant_id.clone()),
            occurred_at,
            recorded_at,
            EventBody::TransactionRecorded(Box::new(t)),
        )
    }

    /// A dead letter of an input line (`raw` already masked), id
    /// `rejected:HASH` of where and when it was rejected and what it said.
    pub fn record_rejected(r: RecordRejected, recorded_at: &Timestamp) -> Event {
        let id = crate::hex::sha256(
            format!("{}\n{}\n{recorded_at}\n{}", r.source, r.line, r.raw).as_bytes(),
        );
        Event::new(
            format!("rejected:{}", &id[..32]),
            None,
            recorded_at.clone(),
            recorded_at,
            EventBody::RecordRejected(r),
        )
    }

    /// The dead letter of a message on `topic` at `position` that is not an
    /// event (`raw` already masked), id `foreign:TOPIC:POSITION`: the same
    /// for every reader that finds it.
    pub fn foreign_rejected(
        topic: &str,
        position: Position,
        raw: String,
        detail: String,
        recorded_at: &Timestamp,
    ) -> Event {
        Event::new(
            format!("foreign:{topic}:{position}"),
            None,
            recorded_at.clone(),
            recorded_at,
            EventBody::RecordRejected(RecordRejected {
                source: topic.to_string(),
                line: position.offset,
                position: Some(position),
                raw,
                reason: crate::ingest::Reason::InvalidEvent,
                field: None,
                detail,
            }),
        )
    }

    /// One break of a reconciliation run, id `recon:DATE:SHA16:break:I`.
    pub fn reconciliation_break(b: ReconciliationBreak, at: &Timestamp) -> Event {
        let id = format!(
            "recon:{}:{}:break:{}",
            b.business_date,
            &b.file_sha256[..16.min(b.file_sha256.len())],
            b.index
        );
        Event::new(
            id,
            None,
            at.clone(),
            at,
            EventBody::ReconciliationBreak(Box::new(b)),
        )
    }

    /// A reconciliation run's summary, id `recon:DATE:SHA16:run`.
    pub fn reconciliation_run(r: ReconciliationRun, at: &Timestamp) -> Event {
        let id = format!(
            "recon:{}:{}:run",
            r.business_date,
            &r.file_sha256[..16.min(r.file_sha256.len())]
        );
        Event::new(
            id,
            None,
            at.clone(),
            at,
            EventBody::ReconciliationRun(Box::new(r)),
        )
    }

    /// A break's resolution, id `resolution:DATE:TERMINAL:RRN:TYPE`: a
    /// break is resolved once.
    pub fn break_resolved(r: BreakResolved, at: &Timestamp) -> Event {
        let id = format!(
            "resolution:{}:{}:{}:{}",
            r.business_date, r.key.terminal_id, r.key.rrn, r.key.txn_type
        );
        let merchant = r.adjustment.as_ref().map(|a| a.merchant_id.clone());
        Event::new(
            id,
            merchant,
            at.clone(),
            at,
            EventBody::BreakResolved(Box::new(r)),
        )
    }

    /// A payout batch, id `payout:DATE:prepared`.
    pub fn payout_prepared(b: PayoutBatchPrepared, at: &Timestamp) -> Event {
        let id = format!("payout:{}:prepared", b.payout_date);
        Event::new(
            id,
            None,
            at.clone(),
            at,
            EventBody::PayoutBatchPrepared(Box::new(b)),
        )
    }

    /// A batch's approval, id `payout:DATE:approved`.
    pub fn payout_approved(a: PayoutBatchApproved, at: &Timestamp) -> Event {
        let id = format!("payout:{}:approved", a.payout_date);
        Event::new(id, None, at.clone(), at, EventBody::PayoutBatchApproved(a))
    }

    /// A batch's first export, id `payout:DATE:exported`.
    pub fn payout_exported(x: PayoutBatchExported, at: &Timestamp) -> Event {
        let id = format!("payout:{}:exported", x.payout_date);
        Event::new(id, None, at.clone(), at, EventBody::PayoutBatchExported(x))
    }

    /// A bank return file, id `payout:DATE:result:SHA16`.
    pub fn payout_result(r: PayoutResultRecorded, at: &Timestamp) -> Event {
        let id = format!(
            "payout:{}:result:{}",
            r.payout_date,
            &r.file_sha256[..16.min(r.file_sha256.len())]
        );
        Event::new(
            id,
            None,
            at.clone(),
            at,
            EventBody::PayoutResultRecorded(Box::new(r)),
        )
    }

    pub fn type_name(&self) -> &'static str {
        self.body.type_name()
    }

    /// The schema version this build writes for this event's type.
    pub fn schema_version(&self) -> u32 {
        match self.body {
            EventBody::TransactionRecorded(_) => TXN_SCHEMA_VERSION,
            _ => SCHEMA_VERSION,
        }
    }

    /// The key the log partitions by: the merchant, else a fixed key for
    /// reference data so that its events stay in order on one partition.
    pub fn key(&self) -> &str {
        match (&self.body, &self.merchant_id) {
            (
                EventBody::ReconciliationRun(_)
                | EventBody::ReconciliationBreak(_)
                | EventBody::BreakResolved(_),
                _,
            ) => RECONCILIATION_KEY,
            (
                EventBody::PayoutBatchPrepared(_)
                | EventBody::PayoutBatchApproved(_)
                | EventBody::PayoutBatchExported(_)
                | EventBody::PayoutResultRecorded(_),
                _,
            ) => PAYOUTS_KEY,
            (_, Some(m)) => m,
            (_, None) => "reference",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        fn out<B: Serialize>(e: &Event, body: &B) -> Vec<u8> {
            serde_json::to_vec(&EnvelopeOut {
                event_id: &e.event_id,
                type_name: e.type_name(),
                schema_version: e.schema_version(),
                seq: e.seq,
                merchant_id: &e.merchant_id,
                occurred_at: &e.occurred_at,
                recorded_at: &e.recorded_at,
                body,
            })
            .expect("events serialise")
        }
        match &self.body {
            EventBody::FeeScheduleLoaded(b) => out(self, b),
            EventBody::IntermediaryRegistered(b) | EventBody::IntermediaryUpdated(b) => {
                out(self, b)
            }
            EventBody::MerchantRegistered(b) | EventBody::MerchantUpdated(b) => out(self, b),
            EventBody::TransactionRecorded(b) => out(self, b),
            EventBody::RecordRejected(b) => out(self, b),
            EventBody::ReconciliationRun(b) => out(self, b),
            EventBody::ReconciliationBreak(b) => out(self, b),
            EventBody::BreakResolved(b) => out(self, b),
            EventBody::PayoutBatchPrepared(b) => out(self, b),
            EventBody::PayoutBatchApproved(b) => out(self, b),
            EventBody::PayoutBatchExported(b) => out(self, b),
            EventBody::PayoutResultRecorded(b) => out(self, b),
        }
    }

    /// Decodes an event, upcasting older schema versions.
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let env: EnvelopeIn<'_> =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Envelope(e.to_string()))?;
        let body = decode_body(&env.type_name, env.schema_version, env.body.get())?;
        Ok(Event {
            event_id: env.event_id,
            seq: env.seq,
            merchant_id: env.merchant_id,
            occurred_at: env.occurred_at,
            recorded_at: env.recorded_at,
            body,
        })
    }
}

/// Reads a version-1 transaction body. Version 1 had two shapes:
/// - the first builds wrote `settlement` as `{"row": ROW, "delta": …}`,
///   with `payout_date` and `route` beside it and more fields in
///   `original`; the row is all that is kept (the delta follows from the
///   type, amount, fee and `original`, and is recomputed the same way);
/// - later builds wrote `settlement` as the row itself: version 2's shape.
fn upcast_txn_v1(json: &str) -> Result<TxnRecorded, String> {
    // The later shape is version 2's: read it as such when it is one.
    if let Ok(t) = serde_json::from_str::<TxnRecorded>(json) {
        return Ok(t);
    }
    let mut v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if let Some(settlement) = v.get_mut("settlement") {
        if let Some(row) = settlement.get("row").cloned() {
            let recorded_delta = settlement.get("delta").cloned();
            *settlement = row;
            let t: TxnRecorded = serde_json::from_value(v).map_err(|e| e.to_string())?;
            // The recorded delta must be what the rule gives today, or the
            // upcast would change what the event says about money.
            if let Some(recorded) = recorded_delta {
                let recorded: RowDelta = serde_json::from_value(recorded)
                    .map_err(|e| format!("settlement.delta: {e}"))?;
                let now = t.row_delta().map(|(_, d)| d);
                if now != Some(recorded) {
                    return Err(format!(
                        "settlement.delta {recorded:?} is not what its type, amount, fee and original give ({now:?})"
                    ));
                }
            }
            return Ok(t);
        }
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

fn decode_body(type_name: &str, version: u32, json: &str) -> Result<EventBody, DecodeError> {
    fn parse<'a, T: Deserialize<'a>>(
        type_name: &str,
        version: u32,
        json: &'a str,
    ) -> Result<T, DecodeError> {
        serde_json::from_str(json).map_err(|e| DecodeError::Body {
            type_name: type_name.to_string(),
            version,
            detail: e.to_string(),
        })
    }
    // When a body changes shape, the new version gets its own arm and the
    // old arm upcasts into the new type.
    // The chain (version 2, 3 for transactions) is in the envelope; the
    // bodies read alike.
    let body = match (type_name, version) {
        ("FeeScheduleLoaded", 1 | 2) => {
            EventBody::FeeScheduleLoaded(parse(type_name, version, json)?)
        }
        ("IntermediaryRegistered", 1 | 2) => {
            EventBody::IntermediaryRegistered(parse(type_name, version, json)?)
        }
        ("IntermediaryUpdated", 1 | 2) => {
            EventBody::IntermediaryUpdated(parse(type_name, version, json)?)
        }
        ("MerchantRegistered", 1 | 2) => {
            EventBody::MerchantRegistered(parse(type_name, version, json)?)
        }
        ("MerchantUpdated", 1 | 2) => EventBody::MerchantUpdated(parse(type_name, version, json)?),
        ("SaleRecorded" | "VoidRecorded" | "ReversalRecorded" | "RefundRecorded", 1..=3) => {
            let t: TxnRecorded = if version == 1 {
                upcast_txn_v1(json).map_err(|detail| DecodeError::Body {
                    type_name: type_name.to_string(),
                    version,
                    detail,
                })?
            } else {
                parse(type_name, version, json)?
            };
            let expected = EventBody::TransactionRecorded(Box::new(t));
            if expected.type_name() != type_name {
                return Err(DecodeError::Body {
                    type_name: type_name.to_string(),
                    version,
                    detail: "txn_type does not match the event type".to_string(),
                });
            }
            expected
        }
        ("RecordRejected", 1 | 2) => EventBody::RecordRejected(parse(type_name, version, json)?),
        ("ReconciliationRun", 1 | 2) => {
            EventBody::ReconciliationRun(Box::new(parse(type_name, version, json)?))
        }
        ("ReconciliationBreak", 1 | 2) => {
            EventBody::ReconciliationBreak(Box::new(parse(type_name, version, json)?))
        }
        ("BreakResolved", 2) => {
            EventBody::BreakResolved(Box::new(parse(type_name, version, json)?))
        }
        ("PayoutBatchPrepared", 2) => {
            EventBody::PayoutBatchPrepared(Box::new(parse(type_name, version, json)?))
        }
        ("PayoutBatchApproved", 2) => {
            EventBody::PayoutBatchApproved(parse(type_name, version, json)?)
        }
        ("PayoutBatchExported", 2) => {
            EventBody::PayoutBatchExported(parse(type_name, version, json)?)
        }
        ("PayoutResultRecorded", 2) => {
            EventBody::PayoutResultRecorded(Box::new(parse(type_name, version, json)?))
        }
        _ => {
            return Err(DecodeError::UnknownType {
                type_name: type_name.to_string(),
                version,
            });
        }
    };
    Ok(body)
}
