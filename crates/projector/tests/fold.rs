//! The sled projection equals an in-memory fold of the same events, whatever
//! the batch sizes, with a restart in the middle, and with redeliveries.
//! Prints its seed; `CLEARING_TEST_SEED=N` replays a run.

use std::collections::BTreeMap;
use std::path::Path;

use clearing_consumer::{Handler, Item};
use clearing_core::calendar::{Calendar, SettlementCycle};
use clearing_core::events::{RowDelta, RowKey};
use clearing_core::fees::{ChannelFee, FeeSchedule};
use clearing_core::ingest::{apply, decide, Outcome, TxnState};
use clearing_core::registry::{Clearing, Intermediary, Merchant, Reference, VersionedFees};
use clearing_core::settlement::{add_delta, FlaggedTxn};
use clearing_core::{Channel, Event, EventBody, Fen};
use clearing_log::{EventLog, Position};
use clearing_projector::Projector;
use clearing_testkit::seeded_runner;
use proptest::prelude::*;

const MERCHANTS: [(&str, Clearing, SettlementCycle); 3] = [
    ("M1", Clearing::FirstParty, SettlementCycle::T1),
    ("M2", Clearing::SecondParty, SettlementCycle::D0),
    ("M3", Clearing::FirstParty, SettlementCycle::D0),
];

fn world() -> (Reference, VersionedFees) {
    let mut reference = Reference::default();
    reference.put_intermediary(
        1,
        Intermediary {
            intermediary_id: "AGG".into(),
            name: "a".into(),
            settlement_account: "1".into(),
        },
    );
    for (i, (id, clearing, cycle)) in MERCHANTS.iter().enumerate() {
        reference.put_merchant(
            1,
            Merchant {
                merchant_id: id.to_string(),
                name: id.to_string(),
                mcc: "5812".into(),
                clearing: *clearing,
                intermediary_id: (*clearing == Clearing::SecondParty).then(|| "AGG".into()),
                settlement_cycle: *cycle,
                fee_plan: "p".into(),
                terminals: vec![format!("T{i}")],
                settlement_account: "1".into(),
            },
        );
    }
    let plan = Channel::ALL
        .iter()
        .map(|c| {
            (
                *c,
                ChannelFee {
                    rate: "0.006".parse().unwrap(),
                    cap: Some(Fen(2000)),
                },
            )
        })
        .collect();
    let schedule = FeeSchedule {
        cutoff: chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
        plans: [("p".to_string(), plan)].into(),
    };
    (
        reference,
        VersionedFees {
            version: 1,
            schedule,
            calendar: Calendar::default(),
        },
    )
}

/// One random operation: (kind, merchant, amount, day, hour, terminal jump, mcc jump).
type Op = (u8, usize, i64, u32, u32, bool, bool);

/// Turns random operations into the accepted events `decide` makes of them,
/// numbered per key as the writer would.
fn events_of(ops: &[Op]) -> Vec<Event> {
    let (mut reference, fees) = world();
    let mut txns = std::collections::HashMap::<String, TxnState>::new();
    let mut seqs = std::collections::HashMap::<String, u64>::new();
    let mut sales: Vec<(String, usize, i64, u32)> = Vec::new();
    let mut out = Vec::new();
    for (i, &(kind, m, amount, day, hour, jump_terminal, jump_mcc)) in ops.iter().enumerate() {
        let (mid, _, _) = MERCHANTS[m];
        let at = format!("2026-11-{:02}T{:02}:15:00+08:00", 20 + day, hour);
        let base = serde_json::json!({
            "merchant_id": mid, "terminal_id": if jump_terminal { "T9".to_string() } else { format!("T{m}") },
            "mcc": if jump_mcc { "5411" } else { "5812" }, "channel": "credit_card", "currency": "CNY",
            "result": if kind == 7 { "declined" } else { "approved" }, "rrn": format!("{i:012}"), "occurred_at": at,
        });
        let mut rec = base.as_object().unwrap().clone();
        match (kind, sales.last()) {
            (0..=3 | 7, _) | (_, None) => {
                rec.insert("txn_id".into(), format!("P{i}").into());
                rec.insert("type".into(), "sale".into());
                rec.insert("amount".into(), Fen(amount).to_string().into());
            }
            (4 | 5, Some(_)) => {
                let (sid, _, samt, _) = sales[amount as usize % sales.len()].clone();
                rec.insert("txn_id".into(), format!("F{i}").into());
                rec.insert("type".into(), "refund".into());
                rec.insert("original_txn_id".into(), sid.into());
                rec.insert(
                    "amount".into(),
                    Fen((amount % samt).max(1)).to_string().into(),
                );
            }
            (_, Some(_)) => {
                let (sid, _, samt, _) = sales[amount as usize % sales.len()].clone();
                rec.insert("txn_id".into(), format!("V{i}").into());
                rec.insert(
                    "type".into(),
                    if kind == 6 { "void" } else { "reversal" }.into(),
                );
                rec.insert("original_txn_id".into(), sid.into());
                rec.insert("amount".into(), Fen(samt).to_string().into());
            }
        }
        let line = serde_json::Value::Object(rec).to_string();
        if let Outcome::Accepted(mut e) = decide(
            &reference,
            &fees,
            &txns,
            &clearing_core::Timestamp::parse("2026-11-30T00:00:00+08:00").unwrap(),
            &line,
        ) {
            let seq = seqs.entry(e.key().to_string()).or_insert(0);
            *seq += 1;
            e.seq = *seq;
            apply(&mut reference, &mut txns, &e);
            if let EventBody::TransactionRecorded(t) = &e.body {
                if t.txn_type == clearing_core::TxnType::Sale {
                    sales.push((t.txn_id.clone(), m, t.amount.0, day));
                }
            }
            out.push(*e);
        }
    }
    out
}

/// The model: a plain fold of the events into rows and flagged records.
fn fold(events: &[Event]) -> (BTreeMap<RowKey, RowDelta>, BTreeMap<String, FlaggedTxn>) {
    let mut rows: BTreeMap<RowKey, RowDelta> = BTreeMap::new();
    let mut flagged = BTreeMap::new();
    for e in events {
        if let EventBody::TransactionRecorded(t) = &e.body {
            if let Some((k, d)) = t.row_delta() {
                add_delta(rows.entry(k.clone()).or_default(), &d).unwrap();
            }
            if !t.flags.is_empty() {
                flagged.insert(
                    t.txn_id.clone(),
                    FlaggedTxn {
                        txn_id: t.txn_id.clone(),
                        merchant_id: t.merchant_id.clone(),
                        terminal_id: t.terminal_id.clone(),
                        flags: t.flags.clone(),
                    },
                );
            }
        }
    }
    (rows, flagged)
}

fn dates() -> Vec<chrono::NaiveDate> {
    (20..=26)
        .map(|d| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap())
        .collect()
}

fn projected(p: &Projector) -> (BTreeMap<RowKey, RowDelta>, BTreeMap<String, FlaggedTxn>) {
    let mut rows = BTreeMap::new();
    let mut flagged = BTreeMap::new();
    for d in dates() {
        rows.extend(p.settlement_rows(d).unwrap());
        flagged.extend(
            p.flagged(d)
                .unwrap()
                .into_iter()
                .map(|f| (f.txn_id.clone(), f)),
        );
    }
    (rows, flagged)
}

/// Applies `log` (positions = indexes) in batches of the given sizes,
/// reopening the projector at `restart_at` batches.
fn project(dir: &Path, log: &[Event], batch_sizes: &[usize], restart_at: usize) -> Projector {
    let mut p = open_store(dir).unwrap();
    let mut batch_no = 0;
    loop {
        let from = p.positions().get(&0).copied().unwrap_or(0) as usize;
        if from >= log.len() {
            return p;
        }
        let size = batch_sizes[batch_no % batch_sizes.len()].max(1);
        let to = (from + size).min(log.len());
        let items = (from..to)
            .map(|i| Item {
                link: clearing_core::chain::Link::of(&log[i].encode()),
                position: Position {
                    partition: 0,
                    offset: i as u64,
                },
                event: Ok(log[i].clone()),
                raw: None,
            })
            .collect();
        p.apply(0, items, to as u64).unwrap();
        batch_no += 1;
        if batch_no == restart_at {
            drop(p);
            p = open_store(dir).unwrap();
        }
    }
}

#[test]
fn projection_equals_the_in_memory_fold_across_batches_restarts_and_redeliveries() {
    let mut r = seeded_runner("projection_equals_the_in_memory_fold", 48);
    let op = (
        0u8..10,
        0usize..3,
        1i64..=3_000_000,
        0u32..3,
        8u32..24,
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.1),
    );
    let strategy = (
        proptest::collection::vec(op, 1..80),
        proptest::collection::vec(1usize..20, 1..5),
        0usize..6,
        proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    );
    r.run(&strategy, |(ops, batch_sizes, restart_at, redeliver)| {
        let events = events_of(&ops);
        let expected = fold(&events);
        // the log: every event once, plus redelivered copies of some earlier
        // events right after their originals (as an at-least-once log may)
        let mut log = Vec::new();
        let picks: std::collections::BTreeSet<usize> = redeliver
            .iter()
            .filter(|_| !events.is_empty())
            .map(|ix| ix.index(events.len()))
            .collect();
        for (i, e) in events.iter().enumerate() {
            log.push(e.clone());
            if picks.contains(&i) {
                log.push(e.clone());
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let p = project(dir.path(), &log, &batch_sizes, restart_at);
        // a copy applied twice would double its sale in the rows
        prop_assert_eq!(projected(&p), expected.clone());
        // the transaction index holds every record once, at its first position
        let mut first_position = std::collections::BTreeMap::new();
        for (i, e) in log.iter().enumerate() {
            if let EventBody::TransactionRecorded(t) = &e.body {
                first_position
                    .entry(t.txn_id.clone())
                    .or_insert((format!("0:{i}"), t.business_date));
            }
        }
        let indexed: usize = dates()
            .into_iter()
            .map(|d| p.txns_on(d).unwrap().len())
            .sum();
        prop_assert_eq!(indexed, first_position.len());
        for (id, (position, date)) in first_position.iter().take(5) {
            // by id: the record itself, and any record naming it as original
            let found: Vec<_> = p
                .find_txns(id)
                .unwrap()
                .into_iter()
                .filter(|t| &t.txn_id == id)
                .collect();
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(&found[0].position.to_string(), position);
            prop_assert_eq!(found[0].business_date, *date);
        }
        // the same log in one batch with no restart: the same digest
        let once = tempfile::tempdir().unwrap();
        let q = project(once.path(), &log, &[log.len().max(1)], usize::MAX);
        prop_assert_eq!(q.digest().unwrap(), p.digest().unwrap());
        // the digest taken in legs of a few stored bytes is the same
        let mut state = clearing_projector::DigestState::default();
        let mut legs = 0;
        while !state.done() {
            p.digest_leg(&mut state, 1 + legs % 3 * 700).unwrap();
            legs += 1;
        }
        prop_assert!(legs > 1 || log.is_empty());
        prop_assert_eq!(state.finish(), p.digest().unwrap());
        prop_assert_eq!(projected(&q), expected.clone());
        // caught up from a log, batches held back and stored in commits of
        // several batches, stopping (and reopening) every few events: the
        // same state and digest
        let caught = tempfile::tempdir().unwrap();
        let c = catch_up_in_commits(caught.path(), &log, &batch_sizes, restart_at);
        prop_assert_eq!(projected(&c), expected);
        prop_assert_eq!(c.digest().unwrap(), q.digest().unwrap());
        Ok(())
    })
    .unwrap();
}

/// Appends `log` to an embedded log under `dir` and catches a projector up
/// with it: batches of `sizes[0]` events read, commits of `sizes[1]`
/// records, each catch-up stopped after `stop_every` + 1 events and the
/// projector reopened.
fn catch_up_in_commits(dir: &Path, log: &[Event], sizes: &[usize], stop_every: usize) -> Projector {
    let events = clearing_log::embedded::EmbeddedLog::open(
        &dir.join("log"),
        clearing_log::TopicNames::with_prefix("clearing"),
    )
    .unwrap();
    let records: Vec<clearing_log::Record> = log
        .iter()
        .map(|e| clearing_log::Record {
            key: e.key().to_string(),
            payload: e.encode(),
            headers: Vec::new(),
            partition: Some(0),
        })
        .collect();
    events
        .append(clearing_log::Topic::Events, &records)
        .unwrap();
    let batch = sizes[0].max(1);
    let commit = sizes[1 % sizes.len()] as u64;
    loop {
        let mut p = open_store(&dir.join("state"))
            .unwrap()
            .with_commit_records(commit);
        let stats = p
            .catch_up_until(
                &events,
                &clearing_core::Cut::End,
                batch,
                stop_every as u64 + 1,
                |_| {},
            )
            .unwrap();
        if stats.complete || log.is_empty() {
            return p;
        }
    }
}

#[test]
fn an_undecodable_event_is_recorded_not_skipped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = open_store(dir.path()).unwrap();
    let bad = Event::decode(b"{\"not\":\"an event\"}").unwrap_err();
    p.apply(
        0,
        vec![Item {
            link: clearing_core::chain::Link::of(b"{\"not\":\"an event\"}"),
            position: Position {
                partition: 0,
                offset: 0,
            },
            event: Err(bad),
            raw: Some(b"{\"not\":\"an event\"}".to_vec()),
        }],
        1,
    )
    .unwrap();
    let recorded = p.undecodable().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].0,
        Position {
            partition: 0,
            offset: 0
        }
    );
    assert_eq!(p.stored_positions().get(&0), Some(&1));
    let taken = p.take_undecodable();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].raw, b"{\"not\":\"an event\"}".to_vec());
    assert!(p.take_undecodable().is_empty(), "handed over once");
}

#[test]
fn projections_of_an_earlier_format_are_rebuilt_from_the_log() {
    let ops: Vec<_> = (0..40u8)
        .map(|i| {
            (
                i % 10,
                (i % 3) as usize,
                1_000 + i as i64 * 977,
                0u32,
                12u32,
                false,
                false,
            )
        })
        .collect();
    let events = events_of(&ops);
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path(), &events, &[7], 0);
    let digest = p.digest().unwrap();
    drop(p);
    // As an earlier build left it: no format marker and no reconciliation
    // index.
    {
        // sled may hold the lock a moment after the store is dropped
        let db = (0..500)
            .find_map(|_| {
                sled::open(dir.path().join("projections"))
                    .map_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                    .ok()
            })
            .expect("the projections reopen");
        db.open_tree("meta").unwrap().remove(b"format").unwrap();
        let state = db.open_tree("state").unwrap();
        let rk: Vec<_> = state
            .scan_prefix(b"rk/")
            .keys()
            .map(|k| k.unwrap())
            .collect();
        assert!(!rk.is_empty());
        for k in rk {
            state.remove(k).unwrap();
        }
        db.flush().unwrap();
    }
    let p = (0..500)
        .find_map(|_| {
            open_store(dir.path())
                .map_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                .ok()
        })
        .expect("the projections reopen");
    assert!(
        p.stored_positions().is_empty(),
        "state of an earlier format is dropped"
    );
    drop(p);
    let p = project(dir.path(), &events, &[13], 0);
    assert_eq!(p.digest().unwrap(), digest, "rebuilt from the log");
    assert!(dates()
        .iter()
        .any(|d| !p.recon_entries(*d).unwrap().is_empty()));
}

/// A projector with `policy` writing snapshots as it goes over `log`; then
/// every snapshot written, restored into a fresh store and brought to the
/// end of the log, has the live state's digest, and holds the digest of
/// the log's prefix up to its position projected from scratch.
#[test]
fn a_snapshot_restored_and_brought_to_the_end_has_the_digest_of_the_whole_log() {
    use clearing_projector::snapshot::{self, Restoring};
    use clearing_projector::SnapshotPolicy;
    let mut r = seeded_runner("a_snapshot_restored_has_the_digest", 24);
    let op = (
        0u8..10,
        0usize..3,
        1i64..=3_000_000,
        0u32..3,
        8u32..24,
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.1),
    );
    let strategy = (
        proptest::collection::vec(op, 1..80),
        proptest::collection::vec(1usize..20, 1..5),
        1u64..40,
    );
    r.run(&strategy, |(ops, batch_sizes, every)| {
        let log = events_of(&ops);
        let live = tempfile::tempdir().unwrap();
        let snaps = live.path().join("snapshots");
        let policy = SnapshotPolicy {
            dir: snaps.clone(),
            every,
            at_date_close: true,
            keep: usize::MAX,
        };
        let p = {
            let mut p = open_store(live.path()).unwrap().with_snapshots(policy);
            let mut from = 0usize;
            let mut batch_no = 0;
            while from < log.len() {
                let size = batch_sizes[batch_no % batch_sizes.len()];
                let to = (from + size).min(log.len());
                p.apply(0, items(&log, from, to), to as u64).unwrap();
                from = to;
                batch_no += 1;
            }
            p
        };
        let whole = p.digest().unwrap();
        drop(p);
        let found = snapshot::list(&snaps);
        if log.len() as u64 > every {
            prop_assert!(!found.is_empty(), "{} events, every {every}", log.len());
        }
        for f in &found {
            let header = f.header.clone().unwrap();
            let at = header.positions[&0] as usize;
            // the prefix from scratch has the snapshot's digest
            let scratch = tempfile::tempdir().unwrap();
            let s = project(scratch.path(), &log[..at], &[7], usize::MAX);
            prop_assert_eq!(s.digest().unwrap(), header.digest.clone());
            // restored in small legs, then brought to the end
            let into = tempfile::tempdir().unwrap();
            let mut from = Restoring::open(&f.path).unwrap();
            while !from.done() {
                open_store(into.path())
                    .unwrap()
                    .restore_leg(&mut from, 1)
                    .unwrap();
            }
            let restored = open_store(into.path()).unwrap();
            prop_assert_eq!(restored.digest().unwrap(), header.digest.clone());
            prop_assert_eq!(restored.positions().get(&0).copied(), Some(at as u64));
            drop(restored);
            let tail = project(into.path(), &log, &batch_sizes, usize::MAX);
            prop_assert_eq!(tail.digest().unwrap(), whole.clone());
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_snapshot_with_a_changed_byte_or_another_format_is_refused() {
    use clearing_projector::snapshot::{self, Restoring};
    use clearing_projector::SnapshotPolicy;
    let ops: Vec<_> = (0..30)
        .map(|i| (0u8, i % 3, 1000 + i as i64, 0u32, 10u32, false, false))
        .collect();
    let log = events_of(&ops);
    let live = tempfile::tempdir().unwrap();
    let dir = live.path().join("snapshots");
    let mut p = open_store(live.path())
        .unwrap()
        .with_snapshots(SnapshotPolicy {
            dir: dir.clone(),
            every: 10,
            at_date_close: false,
            keep: 2,
        });
    for from in (0..log.len()).step_by(5) {
        let to = (from + 5).min(log.len());
        p.apply(0, items(&log, from, to), to as u64).unwrap();
    }
    drop(p);
    let found = snapshot::list(&dir);
    assert_eq!(found.len(), 2, "the newest two are kept: {found:?}");
    let path = found[1].path.clone();
    let mut bytes = std::fs::read(&path).unwrap();

    // a changed byte in the frames: the header still reads, the restore fails
    let mid = 40.min(bytes.len() / 2);
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let into = tempfile::tempdir().unwrap();
    let mut from = Restoring::open(&path).unwrap();
    let err = loop {
        match open_store(into.path())
            .unwrap()
            .restore_leg(&mut from, u64::MAX)
        {
            Err(e) => break e,
            Ok(()) if from.done() => panic!("a changed byte went unnoticed"),
            Ok(()) => {}
        }
    };
    assert!(err.contains("corrupt"), "{err}");

    // another snapshot format: skipped with the reason
    bytes[mid] ^= 0x55;
    bytes[11] = 99;
    std::fs::write(&path, &bytes).unwrap();
    let err = snapshot::read_header(&path).unwrap_err();
    assert!(err.contains("snapshot format 99"), "{err}");
    assert!(Restoring::open(&path).is_err());
}

fn items(log: &[Event], from: usize, to: usize) -> Vec<Item> {
    (from..to)
        .map(|i| Item {
            link: clearing_core::chain::Link::of(&log[i].encode()),
            position: Position {
                partition: 0,
                offset: i as u64,
            },
            event: Ok(log[i].clone()),
            raw: None,
        })
        .collect()
}

/// Opens a store, waiting while the handle just dropped still holds its
/// lock (sled's flusher lets go of it a moment after the drop), as the
/// application's `retry_locked` does.
fn open_store(dir: &Path) -> Result<Projector, clearing_projector::ProjectorError> {
    let start = std::time::Instant::now();
    loop {
        match Projector::open(dir) {
            Err(e)
                if e.to_string().contains("lock")
                    && start.elapsed() < std::time::Duration::from_secs(10) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other,
        }
    }
}
