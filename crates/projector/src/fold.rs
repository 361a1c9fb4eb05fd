//! The pure fold of one partition's batch of records into the changes the
//! store writes atomically. No sled here: this is where what exactly-once
//! relies on is checked, on every batch, in release builds too.
//!
//! - Records of a batch are one partition's, in rising offsets, starting
//!   at or after the stored position; on a log whose offsets are dense
//!   (the embedded log) they are consecutive. (On Kafka, transaction
//!   markers occupy offsets, so only rising is asserted there.)
//! - The new stored position is past every record of the batch: positions
//!   only grow.
//! - An event whose `seq` is not above the highest applied for its key is a
//!   redelivery and is skipped; every applied event raises its key's mark.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use clearing_consumer::{Item, Undecodable};
use clearing_core::chain::Link;
use clearing_core::events::{RowDelta, TxnRecorded};
use clearing_core::settlement::{add_delta, FlaggedTxn};
use clearing_core::{Event, EventBody, Position, Recorded};
use serde::Serialize;

use crate::entries::{ReconEntry, RowValue, TxnEntry};
use crate::keys::{Key, PayoutStep, SegmentKind};

/// Where the partition of a batch stands before it.
#[derive(Clone, Copy, Debug)]
pub struct Stand {
    pub partition: u32,
    /// The stored next offset of the partition.
    pub next: u64,
    /// Whether the log's offsets have no gaps.
    pub dense: bool,
}

/// What one batch changes, before it is written.
#[derive(Default)]
pub struct Changes {
    pub(crate) partition: u32,
    pub(crate) next_offset: u64,
    /// The link of the batch's last record.
    pub(crate) last_link: Link,
    /// Settlement row deltas, by row key: added to the stored rows.
    pub(crate) rows: HashMap<Vec<u8>, RowValue>,
    /// Values stored as they are (segments, registry, reconciliation, bad).
    pub(crate) puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// The raised high-water marks, by event key.
    pub(crate) high_water: HashMap<String, u64>,
    /// Events applied.
    pub(crate) applied: u64,
    /// Events skipped as redeliveries.
    pub(crate) redelivered: u64,
    /// Events applied, by type (`EventBody::type_name`).
    pub(crate) by_type: std::collections::BTreeMap<&'static str, u64>,
    /// Messages that are not events, for the caller to dead-letter.
    pub(crate) undecodable: Vec<Undecodable>,
    /// The latest `recorded_at` (µs since the epoch) of the batch's events,
    /// applied or redelivered; `i64::MIN` when it holds none.
    pub(crate) recorded_through: i64,
    /// The latest business date of the batch's transactions.
    pub(crate) latest_date: Option<NaiveDate>,
}

impl Changes {
    /// Events the batch applies.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Events the batch skips as redeliveries.
    pub fn redelivered(&self) -> u64 {
        self.redelivered
    }

    /// Records the batch read (applied or skipped).
    pub(crate) fn records(&self) -> u64 {
        self.applied + self.redelivered + self.undecodable.len() as u64
    }

    /// Makes these the changes of this batch and then `later`, the next
    /// batch of the same partition (folded with these changes' marks and
    /// position as its stand): what one fold of both batches would give,
    /// but for segments, which stay one per batch. `Err` names the row
    /// whose sum overflows.
    pub(crate) fn absorb(&mut self, later: Changes) -> Result<(), Vec<u8>> {
        assert_eq!(
            self.partition, later.partition,
            "changes of one partition absorb only that partition's"
        );
        for (k, row) in later.rows {
            match self.rows.get_mut(&k) {
                Some(sum) => add_delta(&mut sum.totals, &row.totals).map_err(|_| k.clone())?,
                None => {
                    self.rows.insert(k, row);
                }
            }
        }
        // Later puts of a key replace earlier ones, in a batch as in sled.
        self.puts.extend(later.puts);
        // A later batch raises marks only above these ones.
        self.high_water.extend(later.high_water);
        self.next_offset = later.next_offset;
        self.last_link = later.last_link;
        self.applied += later.applied;
        self.redelivered += later.redelivered;
        for (t, n) in later.by_type {
            *self.by_type.entry(t).or_default() += n;
        }
        self.undecodable.extend(later.undecodable);
        self.recorded_through = self.recorded_through.max(later.recorded_through);
        self.latest_date = self.latest_date.max(later.latest_date);
        Ok(())
    }
}

/// Folds a batch of one partition's records into changes. `high_water`
/// gives the stored mark of an event key.
pub fn fold(
    high_water: impl Fn(&str) -> u64,
    stand: Stand,
    items: Vec<Item>,
    next_offset: u64,
) -> Changes {
    check_order(stand, &items, next_offset);
    let first = items.first().map(|i| i.position);
    let last_link = items.last().map(|i| i.link).unwrap_or_default();
    let mut f = Folding {
        changes: Changes {
            partition: stand.partition,
            next_offset,
            last_link,
            ..Changes::default()
        },
        ..Folding::default()
    };
    f.changes.recorded_through = i64::MIN;
    for item in items {
        let event = match item.event {
            Ok(e) => e,
            Err(e) => {
                f.undecodable(item.position, e.to_string(), item.raw.unwrap_or_default());
                continue;
            }
        };
        f.changes.recorded_through = f
            .changes
            .recorded_through
            .max(event.recorded_at.at().timestamp_micros());
        if event.seq > 0 && !f.raise_mark(&high_water, &event) {
            f.changes.redelivered += 1;
            continue;
        }
        f.changes.applied += 1;
        *f.changes.by_type.entry(event.body.type_name()).or_default() += 1;
        f.event(item.position, &event);
    }
    f.changes.latest_date = f.txns.keys().next_back().copied();
    if let Some(first) = first {
        f.segments(first);
    }
    f.changes
}

/// The latest business date of the transactions among `items`.
pub fn latest_date(items: &[Item]) -> Option<NaiveDate> {
    items
        .iter()
        .filter_map(|i| match &i.event {
            Ok(Event {
                body: EventBody::TransactionRecorded(t),
                ..
            }) => Some(t.business_date),
            _ => None,
        })
        .max()
}

/// The batch is one partition's, in order, after the stored position, and
/// the new position lies past it.
fn check_order(stand: Stand, items: &[Item], next_offset: u64) {
    let mut expected = stand.next;
    for item in items {
        let p = item.position;
        assert_eq!(
            p.partition, stand.partition,
            "a batch of partition {} holds a record of partition {}",
            stand.partition, p.partition
        );
        if stand.dense {
            assert_eq!(
                p.offset, expected,
                "partition {}: record at {} where {} was next",
                p.partition, p.offset, expected
            );
        } else {
            assert!(
                p.offset >= expected,
                "partition {}: record at {} before {} (already applied)",
                p.partition,
                p.offset,
                expected
            );
        }
        expected = p.offset + 1;
    }
    assert!(
        next_offset >= expected && (items.is_empty() || next_offset > stand.next),
        "partition {}: position would go from {} to {next_offset} over records up to {expected}",
        stand.partition,
        stand.next
    );
}

#[derive(Default)]
struct Folding {
    changes: Changes,
    txns: BTreeMap<NaiveDate, Vec<TxnEntry>>,
    recon: BTreeMap<NaiveDate, Vec<ReconEntry>>,
    risk: BTreeMap<NaiveDate, Vec<FlaggedTxn>>,
}

impl Folding {
    /// Raises the high-water mark of the event's key to its `seq`; false
    /// when the mark is already there (a redelivery).
    fn raise_mark(&mut self, stored: &impl Fn(&str) -> u64, event: &Event) -> bool {
        let key = event.key();
        match self.changes.high_water.get_mut(key) {
            Some(mark) if event.seq <= *mark => false,
            Some(mark) => {
                *mark = event.seq;
                true
            }
            None if event.seq <= stored(key) => false,
            None => {
                self.changes.high_water.insert(key.to_string(), event.seq);
                true
            }
        }
    }

    fn put(&mut self, key: Key<'_>, value: Vec<u8>) {
        self.changes.puts.push((key.bytes(), value));
    }

    /// A value with where and when it was recorded (JSON).
    fn recorded<T: Serialize>(
        &mut self,
        key: Key<'_>,
        position: Position,
        event: &Event,
        value: &T,
    ) {
        let v = Recorded {
            position,
            recorded_at: event.recorded_at.clone(),
            value,
        };
        let bytes = serde_json::to_vec(&v).expect("recorded values serialise");
        self.put(key, bytes);
    }

    fn undecodable(&mut self, position: Position, reason: String, raw: Vec<u8>) {
        tracing::error!(%position, error = %reason, "undecodable event recorded under bad/");
        self.put(Key::Bad(position), reason.clone().into_bytes());
        self.changes.undecodable.push(Undecodable {
            position,
            reason,
            raw,
        });
    }

    fn event(&mut self, pos: Position, event: &Event) {
        match &event.body {
            EventBody::TransactionRecorded(t) => self.txn(pos, event, t),
            EventBody::MerchantRegistered(m) | EventBody::MerchantUpdated(m) => self.recorded(
                Key::Merchant(&m.value.merchant_id, m.version),
                pos,
                event,
                &m.value,
            ),
            EventBody::IntermediaryRegistered(i) | EventBody::IntermediaryUpdated(i) => self
                .recorded(
                    Key::Intermediary(&i.value.intermediary_id, i.version),
                    pos,
                    event,
                    &i.value,
                ),
            EventBody::FeeScheduleLoaded(f) => self.recorded(Key::Fees(f.version), pos, event, f),
            EventBody::RecordRejected(_) => {}
            EventBody::ReconciliationRun(r) => {
                self.recorded(
                    Key::ReconRun(r.business_date, &r.file_sha256),
                    pos,
                    event,
                    r,
                );
                // The latest run of a date is the one whose held pool the
                // next date's run takes over.
                self.put(
                    Key::ReconLatest(r.business_date),
                    r.file_sha256.as_bytes().to_vec(),
                );
            }
            EventBody::ReconciliationBreak(b) => self.recorded(
                Key::ReconBreak(b.business_date, &b.file_sha256, b.index),
                pos,
                event,
                b,
            ),
            EventBody::BreakResolved(r) => {
                self.recorded(Key::Resolution(r.business_date, &r.key), pos, event, r)
            }
            EventBody::PayoutBatchPrepared(b) => self.recorded(
                Key::Payout(b.payout_date, PayoutStep::Prepared),
                pos,
                event,
                b,
            ),
            EventBody::PayoutBatchApproved(a) => self.recorded(
                Key::Payout(a.payout_date, PayoutStep::Approved),
                pos,
                event,
                a,
            ),
            EventBody::PayoutBatchExported(x) => self.recorded(
                Key::Payout(x.payout_date, PayoutStep::Exported),
                pos,
                event,
                x,
            ),
            EventBody::PayoutResultRecorded(r) => self.recorded(
                Key::Payout(r.payout_date, PayoutStep::Result(&r.file_sha256)),
                pos,
                event,
                r,
            ),
        }
    }

    fn txn(&mut self, position: Position, event: &Event, t: &TxnRecorded) {
        self.txns
            .entry(t.business_date)
            .or_default()
            .push(TxnEntry {
                position,
                recorded_at: event.recorded_at.clone(),
                occurred_at: event.occurred_at.clone(),
                txn_id: t.txn_id.clone(),
                txn_type: t.txn_type,
                result: t.result,
                merchant_id: t.merchant_id.clone(),
                terminal_id: t.terminal_id.clone(),
                rrn: t.rrn.clone(),
                channel: t.channel,
                amount: t.amount,
                fee: t.fee,
                business_date: t.business_date,
                payout_date: t.settlement.as_ref().map(|r| r.payout_date),
                original_txn_id: t.original_txn_id.clone(),
                decline_code: t.decline_code.clone(),
                settlement: t.settlement.clone(),
                original: t.original.clone(),
            });
        let local_seconds = {
            use chrono::Timelike;
            clearing_core::calendar::local_time(event.occurred_at.at()).num_seconds_from_midnight()
        };
        self.recon
            .entry(t.business_date)
            .or_default()
            .push(ReconEntry {
                txn_id: t.txn_id.as_str().into(),
                merchant_id: t.merchant_id.as_str().into(),
                terminal_id: t.terminal_id.as_str().into(),
                rrn: t.rrn.as_str().into(),
                txn_type: t.txn_type,
                result: t.result,
                original_txn_id: t.original_txn_id.clone(),
                amount_fen: t.amount.0,
                fee_fen: t.fee.0,
                local_seconds,
            });
        if !t.flags.is_empty() {
            self.risk
                .entry(t.business_date)
                .or_default()
                .push(FlaggedTxn {
                    txn_id: t.txn_id.clone(),
                    merchant_id: t.merchant_id.clone(),
                    terminal_id: t.terminal_id.clone(),
                    flags: t.flags.clone(),
                });
        }
        if let Some((row, delta)) = t.row_delta() {
            let totals = &mut self
                .changes
                .rows
                .entry(Key::Row(row).bytes())
                .or_insert_with(|| RowValue {
                    key: row.clone(),
                    totals: RowDelta::default(),
                })
                .totals;
            add_delta(totals, &delta).expect("a batch's row deltas fit in i64");
        }
    }

    /// One segment per business date and kind: the batch's records of that
    /// date, encoded and LZ4-compressed (sled rewrites whole tree nodes with
    /// their values, so bytes per value are what writing costs).
    fn segments(&mut self, first: Position) {
        let txns = std::mem::take(&mut self.txns);
        let recon = std::mem::take(&mut self.recon);
        let risk = std::mem::take(&mut self.risk);
        for (date, entries) in txns {
            let bytes = postcard::to_stdvec(&entries).expect("segments serialise");
            self.segment(SegmentKind::Txn, date, first, &bytes);
        }
        for (date, entries) in recon {
            let bytes = postcard::to_stdvec(&entries).expect("segments serialise");
            self.segment(SegmentKind::Recon, date, first, &bytes);
        }
        for (date, entries) in risk {
            let bytes = serde_json::to_vec(&entries).expect("segments serialise");
            self.segment(SegmentKind::Risk, date, first, &bytes);
        }
    }

    fn segment(&mut self, kind: SegmentKind, date: NaiveDate, first: Position, plain: &[u8]) {
        self.put(
            Key::Segment(kind, date, first),
            lz4_flex::compress_prepend_size(plain),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(offset: u64) -> Item {
        Item {
            position: Position::new(0, offset),
            link: Link::default(),
            event: Err(clearing_core::events::DecodeError::Envelope("x".into())),
            raw: Some(Vec::new()),
        }
    }

    fn stand(next: u64, dense: bool) -> Stand {
        Stand {
            partition: 0,
            next,
            dense,
        }
    }

    #[test]
    fn a_batch_in_order_after_the_stored_position_folds() {
        let c = fold(|_| 0, stand(3, true), vec![item(3), item(4)], 5);
        assert_eq!((c.partition, c.next_offset, c.undecodable.len()), (0, 5, 2));
        // a log with gaps (Kafka transaction markers) may skip offsets
        let c = fold(|_| 0, stand(3, false), vec![item(4), item(6)], 7);
        assert_eq!(c.next_offset, 7);
    }

    #[test]
    #[should_panic(expected = "where 4 was next")]
    fn a_gap_on_a_dense_log_is_refused() {
        fold(|_| 0, stand(3, true), vec![item(3), item(5)], 6);
    }

    #[test]
    #[should_panic(expected = "already applied")]
    fn a_record_before_the_stored_position_is_refused() {
        fold(|_| 0, stand(3, false), vec![item(2)], 3);
    }

    #[test]
    #[should_panic(expected = "position would go from")]
    fn a_position_that_does_not_grow_is_refused() {
        fold(|_| 0, stand(3, false), vec![item(3)], 3);
    }

    #[test]
    #[should_panic(expected = "holds a record of partition 1")]
    fn another_partitions_record_is_refused() {
        let mut other = item(3);
        other.position.partition = 1;
        fold(|_| 0, stand(3, false), vec![other], 4);
    }
}
