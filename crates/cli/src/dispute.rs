//! What a dispute handler asks (SPEC §9): a transaction's whole story
//! (`txn show`), a merchant's settlement as the ledger knew it at a moment
//! (`merchant statement`), a self-contained bundle for the other party
//! (`export dispute`) and the day's postings as an accounting journal
//! (`export hledger`).
//!
//! The projections find the records (transaction index, registry versions,
//! reconciliation runs); the events themselves are read from the log at
//! the positions the index gives, and shown exactly as recorded.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, FixedOffset, NaiveDate};
use clearing_core::events::{FeeRuleApplied, RowDelta, RowKey};
use clearing_core::recon::{Category, ReconType};
use clearing_core::registry::{Intermediary, Merchant};
use clearing_core::settlement::{add_delta, settlement_report, MerchantRow};
use clearing_core::{Event, EventBody, Fen, TxnResult, TxnType};
use clearing_log::{EventLog, Position, Topic};
use clearing_projector::{Projector, Recorded, TxnEntry};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// An event as recorded on the log, with where and when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoggedEvent {
    pub position: String,
    pub recorded_at: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub type_name: String,
    /// The merchant's registry entry in force when the event was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<Snapshot<Merchant>>,
    /// The merchant's intermediary (二清) as it stood then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediary: Option<Snapshot<Intermediary>>,
    /// The whole event, byte for byte as the log holds it.
    pub event: Box<RawValue>,
    /// `event`, decoded when it was read.
    #[serde(skip)]
    decoded: Option<Event>,
}

impl LoggedEvent {
    /// The transaction the event records, when it records one.
    pub fn txn(&self) -> Option<&clearing_core::events::TxnRecorded> {
        match &self.decoded.as_ref()?.body {
            EventBody::TransactionRecorded(t) => Some(t),
            _ => None,
        }
    }
}

/// A registry entry version, with the event that recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<T> {
    pub version: u32,
    pub position: String,
    pub recorded_at: String,
    pub value: T,
}

/// Where the money of a sale stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettlementStatus {
    /// `in_settlement` (counts in its business date's row, paid out on
    /// `payout_date`), `declined`, `voided` or `reversed`.
    pub status: String,
    pub business_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing: Option<clearing_core::registry::Clearing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediary_id: Option<String>,
    pub amount: Fen,
    pub fee: Fen,
    /// Refunds recorded against the sale, and the fee they gave back.
    pub refunded_amount: Fen,
    pub refunded_fee: Fen,
    /// What the merchant gets for this sale, refunds included.
    pub net: Fen,
}

/// How reconciliation saw one sale or refund.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReconStatus {
    pub txn_id: String,
    pub txn_type: TxnType,
    /// One of SPEC §8's eight categories, or `not_expected` (a declined,
    /// voided or reversed record no file should carry, and none did), or
    /// `not_reconciled` (no run for its business date yet).
    pub category: String,
    /// The business date of the run that decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
}

/// A transaction's whole story.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Story {
    pub txn_id: String,
    pub txn_type: TxnType,
    pub merchant_id: String,
    pub terminal_id: String,
    pub rrn: String,
    pub result: TxnResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    pub amount: Fen,
    pub fee: Fen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rule: Option<FeeRuleApplied>,
    pub business_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_date: Option<NaiveDate>,
    pub settlement: SettlementStatus,
    pub reconciliation: Vec<ReconStatus>,
    /// Every event touching the transaction, in log order.
    pub events: Vec<LoggedEvent>,
}

/// `txn show`: every story whose sale, void, reversal or refund has this
/// `txn_id` or `rrn`.
pub fn stories(p: &Projector, log: &dyn EventLog, id: &str) -> Result<Vec<Story>> {
    let found = p.find_txns(id)?;
    // The sale each matching record belongs to.
    let mut roots: Vec<String> = Vec::new();
    for t in found.iter().filter(|t| t.txn_id == id || t.rrn == id) {
        let root = match t.txn_type {
            TxnType::Sale => t.txn_id.clone(),
            _ => t
                .original_txn_id
                .clone()
                .unwrap_or_else(|| t.txn_id.clone()),
        };
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    let mut out = Vec::new();
    for root in roots {
        let records: Vec<TxnEntry> = if root == id {
            found.clone()
        } else {
            p.find_txns(&root)?
        }
        .into_iter()
        .filter(|t| t.txn_id == root || t.original_txn_id.as_deref() == Some(root.as_str()))
        .collect();
        out.push(story(p, log, &root, records)?);
    }
    Ok(out)
}

fn story(p: &Projector, log: &dyn EventLog, root: &str, records: Vec<TxnEntry>) -> Result<Story> {
    let sale = records
        .iter()
        .find(|t| t.txn_id == root)
        .or_else(|| records.first())
        .context("a story with no record")?
        .clone();
    let mut events = Vec::new();
    let mut fee_rule = None;
    for t in &records {
        let e = logged(p, log, &t.position)?;
        if t.txn_id == sale.txn_id {
            fee_rule = e.txn().and_then(|t| t.fee_rule.clone());
        }
        events.push(e);
    }
    let cancelled = records.iter().find(|t| {
        matches!(t.txn_type, TxnType::Void | TxnType::Reversal) && t.result == TxnResult::Approved
    });
    let refunds: Vec<&TxnEntry> = records
        .iter()
        .filter(|t| t.txn_type == TxnType::Refund && t.result == TxnResult::Approved)
        .collect();
    let refunded_amount = sum(refunds.iter().map(|t| t.amount))?;
    let refunded_fee = sum(refunds.iter().map(|t| t.fee))?;
    let status = match (sale.result, cancelled) {
        (TxnResult::Declined, _) => "declined",
        (_, Some(c)) if c.txn_type == TxnType::Void => "voided",
        (_, Some(_)) => "reversed",
        _ => "in_settlement",
    };
    let net = if status == "in_settlement" {
        sale.amount
            .checked_sub(sale.fee)
            .and_then(|n| n.checked_sub(refunded_amount))
            .and_then(|n| n.checked_add(refunded_fee))
            .context("net overflows")?
    } else {
        Fen(0)
    };
    let settlement = SettlementStatus {
        status: status.to_string(),
        business_date: sale.business_date,
        payout_date: sale.payout_date,
        clearing: sale.settlement.as_ref().map(|r| r.clearing),
        intermediary_id: sale
            .settlement
            .as_ref()
            .and_then(|r| r.intermediary_id.clone()),
        amount: sale.amount,
        fee: sale.fee,
        refunded_amount,
        refunded_fee,
        net,
    };
    let mut reconciliation = Vec::new();
    for t in records
        .iter()
        .filter(|t| matches!(t.txn_type, TxnType::Sale | TxnType::Refund))
    {
        let expected = t.result == TxnResult::Approved
            && (t.txn_type == TxnType::Refund || cancelled.is_none());
        let (status, recon_events) = recon_status(p, log, t, expected)?;
        reconciliation.push(status);
        for e in recon_events {
            if !events.iter().any(|x| x.position == e.position) {
                events.push(e);
            }
        }
    }
    events.sort_by(|a, b| {
        (a.recorded_at.as_str(), position_key(&a.position))
            .cmp(&(b.recorded_at.as_str(), position_key(&b.position)))
    });
    Ok(Story {
        txn_id: sale.txn_id.clone(),
        txn_type: sale.txn_type,
        merchant_id: sale.merchant_id.clone(),
        terminal_id: sale.terminal_id.clone(),
        rrn: sale.rrn.clone(),
        result: sale.result,
        decline_code: sale.decline_code.clone(),
        amount: sale.amount,
        fee: sale.fee,
        fee_rule,
        business_date: sale.business_date,
        payout_date: sale.payout_date,
        settlement,
        reconciliation,
        events,
    })
}

fn position_key(p: &str) -> (u32, u64) {
    p.parse::<Position>()
        .map(|p| (p.partition, p.offset))
        .unwrap_or_default()
}

fn sum(mut fens: impl Iterator<Item = Fen>) -> Result<Fen> {
    fens.try_fold(Fen(0), |a, b| a.checked_add(b))
        .ok()
        .context("sum overflows")
}

/// Reads the records at `positions` from the log, in runs: one read per
/// stretch of nearby offsets rather than one per record.
fn events_at(
    log: &dyn EventLog,
    positions: &[Position],
) -> Result<std::collections::HashMap<Position, clearing_log::Delivered>> {
    const RUN: usize = 4096;
    let mut by_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for p in positions {
        by_partition.entry(p.partition).or_default().push(p.offset);
    }
    let mut out = std::collections::HashMap::new();
    for (partition, mut offsets) in by_partition {
        offsets.sort_unstable();
        offsets.dedup();
        let mut i = 0;
        while i < offsets.len() {
            let read = log
                .read(Topic::Events, partition, offsets[i], RUN)
                .with_context(|| format!("reading from {partition}:{}", offsets[i]))?;
            let Some(last) = read.last().map(|r| r.position.offset) else {
                break;
            };
            for r in read {
                if offsets[i..].binary_search(&r.position.offset).is_ok() {
                    out.insert(r.position, r);
                }
            }
            while i < offsets.len() && offsets[i] <= last {
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The record read at `pos`, out of what `events_at` read.
fn take_record(
    records: &mut std::collections::HashMap<Position, clearing_log::Delivered>,
    pos: Position,
    log: &dyn EventLog,
) -> Result<clearing_log::Delivered> {
    records
        .remove(&pos)
        .with_context(|| format!("{} holds no event at {pos}", log.describe()))
}

/// Reads the event at `position` from the log, with the registry as it
/// stood when it was recorded.
pub fn logged(p: &Projector, log: &dyn EventLog, position: &str) -> Result<LoggedEvent> {
    let pos: Position = position.parse().map_err(anyhow::Error::msg)?;
    let record = take_record(&mut events_at(log, &[pos])?, pos, log)?;
    let event = Event::decode(&record.payload).with_context(|| format!("the event at {pos}"))?;
    let text = String::from_utf8(record.payload).context("an event that is not UTF-8")?;
    let (registry, intermediary) = match &event.merchant_id {
        Some(m) if matches!(event.body, EventBody::TransactionRecorded(_)) => {
            let registry = merchant_as_of(p, m, pos, &event.recorded_at)?;
            let intermediary = match registry
                .as_ref()
                .and_then(|r| r.value.intermediary_id.clone())
            {
                Some(i) => intermediary_as_of(p, &i, &event.recorded_at)?,
                None => None,
            };
            (registry, intermediary)
        }
        _ => (None, None),
    };
    Ok(LoggedEvent {
        position: pos.to_string(),
        recorded_at: event.recorded_at.clone(),
        event_id: event.event_id.clone(),
        type_name: event.type_name().to_string(),
        registry,
        intermediary,
        event: RawValue::from_string(text).context("an event that is not JSON")?,
        decoded: Some(event),
    })
}

fn snapshot<T>(version: u32, r: Recorded<T>) -> Snapshot<T> {
    Snapshot {
        version,
        position: r.position,
        recorded_at: r.recorded_at,
        value: r.value,
    }
}

fn time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// The merchant's registry version in force at an event: the last one
/// before it on the merchant's partition (its events share one key), or,
/// on another partition, the last one recorded no later.
fn merchant_as_of(
    p: &Projector,
    merchant_id: &str,
    at: Position,
    recorded_at: &str,
) -> Result<Option<Snapshot<Merchant>>> {
    let mut best = None;
    for (version, r) in p.merchant_versions(merchant_id)? {
        let before = match r.position.parse::<Position>() {
            Ok(rp) if rp.partition == at.partition => rp.offset < at.offset,
            _ => time(&r.recorded_at) <= time(recorded_at),
        };
        if before {
            best = Some(snapshot(version, r));
        }
    }
    Ok(best)
}

fn intermediary_as_of(
    p: &Projector,
    id: &str,
    recorded_at: &str,
) -> Result<Option<Snapshot<Intermediary>>> {
    Ok(p.intermediary_versions(id)?
        .into_iter()
        .filter(|(_, r)| time(&r.recorded_at) <= time(recorded_at))
        .last()
        .map(|(v, r)| snapshot(v, r)))
}

/// The category reconciliation gave a sale or refund, and the events
/// that say so (the break naming it, or the run that matched or held it).
fn recon_status(
    p: &Projector,
    log: &dyn EventLog,
    t: &TxnEntry,
    expected: bool,
) -> Result<(ReconStatus, Vec<LoggedEvent>)> {
    // (called for sales and refunds only)
    let recon_type = ReconType::of(t.txn_type);
    let names = |f: &clearing_core::recon::Finding| {
        f.txn_id.as_deref() == Some(t.txn_id.as_str())
            || (f.key.terminal_id == t.terminal_id
                && f.key.rrn == t.rrn
                && Some(f.key.txn_type) == recon_type)
    };
    let status = |category: &str, run: Option<(NaiveDate, &str)>| ReconStatus {
        txn_id: t.txn_id.clone(),
        txn_type: t.txn_type,
        category: category.to_string(),
        run_date: run.map(|r| r.0),
        file_sha256: run.map(|r| r.1.to_string()),
    };
    let mut date = t.business_date;
    // The day's run, then, for an item it held, the next day's.
    for _ in 0..2 {
        let Some(run) = p.recon_latest(date)? else {
            let category = if date == t.business_date {
                "not_reconciled"
            } else {
                Category::Held.as_str()
            };
            return Ok((status(category, None), Vec::new()));
        };
        let sha = run.value.file_sha256.clone();
        for b in p.recon_breaks(date, &sha)? {
            if names(&b.value.finding) {
                let e = logged(p, log, &b.position)?;
                return Ok((
                    status(b.value.finding.category.as_str(), Some((date, &sha))),
                    vec![e],
                ));
            }
        }
        let run_event = logged(p, log, &run.position)?;
        if run.value.held.iter().any(|h| h.txn_id == t.txn_id) {
            match date.succ_opt() {
                Some(next) => {
                    date = next;
                    continue;
                }
                None => {
                    return Ok((
                        status(Category::Held.as_str(), Some((date, &sha))),
                        vec![run_event],
                    ))
                }
            }
        }
        let category = if expected {
            Category::Matched.as_str()
        } else {
            "not_expected"
        };
        return Ok((status(category, Some((date, &sha))), vec![run_event]));
    }
    Ok((status(Category::Held.as_str(), None), Vec::new()))
}

/// One line of a merchant statement: a record and what it did to the
/// merchant's settlement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatementLine {
    pub position: String,
    pub recorded_at: String,
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
pub struct Statement {
    pub merchant_id: String,
    pub business_date: NaiveDate,
    /// The moment the statement is as of; absent = everything recorded.
    pub as_of: Option<String>,
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
    as_of: Option<DateTime<FixedOffset>>,
) -> Result<Statement> {
    let mut lines = Vec::new();
    let mut rows: BTreeMap<RowKey, RowDelta> = BTreeMap::new();
    for t in p.merchant_txns_on(date, merchant_id)? {
        if let Some(limit) = as_of {
            let at = DateTime::parse_from_rfc3339(&t.recorded_at)
                .with_context(|| format!("recorded_at of {} at {}", t.txn_id, t.position))?;
            if at > limit {
                continue;
            }
        }
        let effect = match t.row_delta() {
            Some((key, delta)) if key.merchant_id == merchant_id && key.business_date == date => {
                add_delta(rows.entry(key.clone()).or_default(), &delta)
                    .ok()
                    .context("statement totals overflow")?;
                Some(delta)
            }
            _ => None,
        };
        // A record of this merchant whose money moves another's row (a
        // void naming another merchant's sale) is not this statement's.
        if effect.is_none() && t.merchant_id != merchant_id {
            continue;
        }
        lines.push(StatementLine {
            position: t.position.clone(),
            recorded_at: t.recorded_at.clone(),
            event_id: format!("txn:{}", t.txn_id),
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
        });
    }
    let report = settlement_report(date, rows)
        .ok()
        .context("statement totals overflow")?;
    Ok(Statement {
        merchant_id: merchant_id.to_string(),
        business_date: date,
        as_of: as_of.map(|t| t.to_rfc3339()),
        rows: report.merchants,
        lines,
    })
}

/// The content of a dispute bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleContent {
    pub bundle: String,
    pub bundle_version: u32,
    pub generated_at: String,
    /// `txn_id` or `rrn` the bundle was asked for.
    pub query: String,
    /// The log the events were read from.
    pub source: String,
    /// The state the bundle was taken from: its digest and log position
    /// (`clearing digest` prints the same for that state).
    pub state_digest: String,
    pub log_position: String,
    pub transactions: Vec<Story>,
    /// The merchant's statement of each business date the transactions
    /// touch.
    pub statements: Vec<Statement>,
}

/// A dispute bundle: its content and the SHA-256 of the content's bytes as
/// written (between the first `{` of `content` and its closing `}`).
#[derive(Serialize)]
pub struct Bundle<'a> {
    pub content: &'a RawValue,
    pub content_sha256: String,
}

pub fn bundle_bytes(content: &BundleContent) -> Result<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(content)?;
    let sha: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let raw = RawValue::from_string(text)?;
    let mut out = serde_json::to_vec_pretty(&Bundle {
        content: &raw,
        content_sha256: sha,
    })?;
    out.push(b'\n');
    Ok(out)
}

pub fn dispute_bundle(
    p: &Projector,
    log: &dyn EventLog,
    id: &str,
    state_digest: String,
    log_position: String,
    generated_at: String,
) -> Result<BundleContent> {
    let transactions = stories(p, log, id)?;
    if transactions.is_empty() {
        bail!("no transaction with txn_id or rrn {id:?} in the ledger");
    }
    let mut wanted: Vec<(String, NaiveDate)> = Vec::new();
    for s in &transactions {
        for e in &s.events {
            if let Some(t) = e.txn() {
                let merchant = t
                    .settlement
                    .as_ref()
                    .map(|r| r.merchant_id.clone())
                    .unwrap_or_else(|| t.merchant_id.clone());
                if !wanted.contains(&(merchant.clone(), t.business_date)) {
                    wanted.push((merchant, t.business_date));
                }
            }
        }
    }
    let statements = wanted
        .iter()
        .map(|(m, d)| statement(p, m, *d, None))
        .collect::<Result<Vec<_>>>()?;
    Ok(BundleContent {
        bundle: "clearing dispute bundle".to_string(),
        bundle_version: 1,
        generated_at,
        query: id.to_string(),
        source: log.describe(),
        state_digest,
        log_position,
        transactions,
        statements,
    })
}

/// The day's postings as an hledger journal: one transaction per record
/// of business date `date` that moves money, in log order; the
/// intermediary's sub-ledger (二清) as balanced virtual postings.
pub fn hledger_journal(
    p: &Projector,
    log: &dyn EventLog,
    date: NaiveDate,
    out: &mut impl std::io::Write,
) -> Result<u64> {
    writeln!(
        out,
        "; clearing ledger postings of business date {date}, from {}",
        log.describe()
    )?;
    writeln!(out, "commodity 1,000.00 CNY\n")?;
    let entries: Vec<TxnEntry> = p
        .txns_on(date)?
        .into_iter()
        .filter(|t| t.settlement.is_some())
        .collect();
    let positions = entries
        .iter()
        .map(|t| t.position.parse::<Position>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let mut written = 0;
    // A window of records at a time: a day can hold millions.
    for window in positions.chunks(16_384) {
        let mut records = events_at(log, window)?;
        for &pos in window {
            let record = take_record(&mut records, pos, log)?;
            let event = Event::decode(&record.payload)?;
            let EventBody::TransactionRecorded(txn) = event.body else {
                bail!("the event at {pos} is not a transaction");
            };
            if txn.entry.is_empty() {
                continue;
            }
            writeln!(
                out,
                "{date} * {} {} {}  ; position:{pos}, merchant:{}, rrn:{}",
                txn.txn_type.as_str(),
                txn.txn_id,
                txn.merchant_id,
                txn.merchant_id,
                txn.rrn
            )?;
            for posting in &txn.entry.postings {
                writeln!(out, "    {:<60}  {} CNY", posting.account, posting.amount)?;
            }
            for posting in &txn.entry.sub_ledger {
                writeln!(
                    out,
                    "    {:<60}  {} CNY",
                    format!("[{}]", posting.account),
                    posting.amount
                )?;
            }
            writeln!(out)?;
            written += 1;
        }
    }
    Ok(written)
}
