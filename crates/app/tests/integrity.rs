//! Integrity (SPEC §15, issue 15): the hash chain finds a changed,
//! removed, reordered or inserted event; state ahead of the log, or built
//! from records the log no longer holds, is refused, never reported from
//! or used to judge duplicates.

mod common;

use clearing_app::log::Record;
use clearing_app::{verify, ErrorKind, ReadLedger, Recorder};
use common::*;

/// The first break `verify` finds in a log holding `records`.
fn first_break(records: &[Record]) -> Option<(u64, String)> {
    let dir = log_of(records);
    let cfg = config(dir.path());
    let report = verify(cfg.live().unwrap()).unwrap();
    assert_eq!(
        report.ok,
        report.chains[0].broken.is_none() && report.digest.equal
    );
    report.chains[0]
        .broken
        .as_ref()
        .map(|b| (b.position.offset, b.reason.clone()))
}

#[test]
fn verify_holds_on_an_untouched_ledger_and_names_where_a_tampered_one_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    recorded(&cfg);
    let report = verify(cfg.live().unwrap()).unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.digest.equal);
    let original = records(dir.path());
    let n = original.len();
    assert!(n > 10);
    assert_eq!(first_break(&original), None, "a faithful copy verifies");

    // changed: an amount of event 7, bytes edited in place
    let mut changed = original.clone();
    let text = String::from_utf8(changed[7].payload.clone()).unwrap();
    let at = text.find("\"amount\":\"").unwrap() + 10;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'9' { b'1' } else { b'9' };
    changed[7].payload = bytes;
    assert_eq!(first_break(&changed).unwrap().0, 7);

    // removed: event 5
    let mut removed = original.clone();
    removed.remove(5);
    assert_eq!(first_break(&removed).unwrap().0, 5);

    // reordered: 8 and 9 swapped
    let mut reordered = original.clone();
    reordered.swap(8, 9);
    assert_eq!(first_break(&reordered).unwrap().0, 8);

    // inserted: a copy of event 3 before event 11
    let mut inserted = original.clone();
    inserted.insert(11, original[3].clone());
    assert_eq!(first_break(&inserted).unwrap().0, 11);

    // inserted: a message the ledger never wrote, at the end
    let mut forged = original.clone();
    forged.push(Record {
        key: "x".into(),
        payload: br#"{"event_id":"txn:FORGED","type":"SaleRecorded"}"#.to_vec(),
        headers: Vec::new(),
        partition: None,
    });
    let (offset, reason) = first_break(&forged).unwrap();
    assert_eq!(offset, n as u64);
    assert!(reason.contains("no chain"), "{reason}");
}

#[test]
fn a_log_restored_from_an_older_copy_is_refused_and_rebuilt_on_purpose() {
    let txns = read("transactions.jsonl");
    let lines: Vec<&str> = txns.lines().collect();
    let (first, second) = lines.split_at(9);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    {
        let mut r = Recorder::open(cfg.live().unwrap()).unwrap();
        load_reference(&mut r);
        r.ingest("a", first.join("\n").as_bytes(), |_| {}).unwrap();
    }
    let backup = tempfile::tempdir().unwrap();
    clearing_testkit::copy_dir(&dir.path().join("log"), &backup.path().join("log")).unwrap();
    {
        let mut r = Recorder::open(cfg.live().unwrap()).unwrap();
        let s = r.ingest("b", second.join("\n").as_bytes(), |_| {}).unwrap();
        assert!(s.accepted > 0);
    }
    ReadLedger::open(&cfg).unwrap();
    // the recovery the runbook once described: the log put back from the copy
    std::fs::remove_dir_all(dir.path().join("log")).unwrap();
    clearing_testkit::copy_dir(&backup.path().join("log"), &dir.path().join("log")).unwrap();

    let refused = ReadLedger::open(&cfg).map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Storage, "{refused}");
    assert!(
        refused.to_string().contains("log ends before it"),
        "{refused}"
    );
    let refused = Recorder::open(cfg.live().unwrap()).map(|_| ()).unwrap_err();
    assert!(
        refused.to_string().contains("log ends before it"),
        "{refused}"
    );
    let refused = clearing_app::project(cfg.live().unwrap())
        .map(|_| ())
        .unwrap_err();
    assert!(
        refused.to_string().contains("log ends before it"),
        "{refused}"
    );

    // rebuilt on purpose: the second half is new again, not duplicates
    std::fs::remove_dir_all(dir.path().join("projections")).unwrap();
    std::fs::remove_dir_all(dir.path().join("writer")).unwrap();
    let mut r = Recorder::open(cfg.live().unwrap()).unwrap();
    let again = r.ingest("b", second.join("\n").as_bytes(), |_| {}).unwrap();
    drop(r);
    let clean = tempfile::tempdir().unwrap();
    let clean_cfg = config(clean.path());
    recorded(&clean_cfg);
    assert!(again.accepted > 0, "{again:?}");
    let l = ReadLedger::open(&cfg).unwrap();
    let c = ReadLedger::open(&clean_cfg).unwrap();
    for d in ["2026-11-20", "2026-11-21"] {
        let d = d.parse().unwrap();
        assert_eq!(l.settlement(d).unwrap(), c.settlement(d).unwrap());
    }
}

#[test]
fn state_built_from_records_the_log_no_longer_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    recorded(&cfg);
    ReadLedger::open(&cfg).unwrap();
    // another ledger's log, longer than this one's, put in its place
    let other = tempfile::tempdir().unwrap();
    let other_cfg = config(other.path());
    {
        let mut r = Recorder::open(other_cfg.live().unwrap()).unwrap();
        load_reference(&mut r);
        let txns = read("transactions.jsonl")
            .replace("P2026", "Q2026")
            .replace("V2026", "W2026");
        r.ingest("t", txns.as_bytes(), |_| {}).unwrap();
        r.ingest("t", read("transactions.jsonl").as_bytes(), |_| {})
            .unwrap();
    }
    assert!(records(other.path()).len() > records(dir.path()).len());
    std::fs::remove_dir_all(dir.path().join("log")).unwrap();
    clearing_testkit::copy_dir(&other.path().join("log"), &dir.path().join("log")).unwrap();
    for refused in [
        ReadLedger::open(&cfg).map(|_| ()).unwrap_err(),
        Recorder::open(cfg.live().unwrap()).map(|_| ()).unwrap_err(),
    ] {
        assert!(refused.to_string().contains("no longer holds"), "{refused}");
    }
}
