//! The use cases as a library: what the command line and the HTTP
//! service both call. The day1 fixture's hand-computed reports must come
//! out of the library's typed results, and a replayed dir must refuse
//! every use case that changes a ledger.

use std::path::Path;

use clearing_app::core::Cut;
use clearing_app::{Config, ConfigInput, ErrorKind, Named, ReadLedger, Recorder};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/day1");

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURE).join(name)).unwrap()
}

fn config(dir: &Path) -> Config {
    Config::new(&ConfigInput {
        data_dir: Some(dir.to_path_buf()),
        kafka: None,
        topic_prefix: "clearing".into(),
        partitions: 8,
        kafka_timeout_secs: 120,
    })
    .unwrap()
}

fn named<'a>(name: &'a str, text: &'a str) -> Named<'a> {
    Named { name, text }
}

/// The day1 fixture recorded through the library.
fn recorded(cfg: &Config) {
    let mut r = Recorder::open(cfg.live().unwrap()).unwrap();
    let (fees, holidays) = (read("fees.toml"), read("holidays.txt"));
    r.load_fees(
        named("fees.toml", &fees),
        Some(named("holidays.txt", &holidays)),
    )
    .unwrap();
    let (m, i) = (read("merchants.jsonl"), read("intermediaries.jsonl"));
    r.load_registry(
        named("merchants.jsonl", &m),
        Some(named("intermediaries.jsonl", &i)),
    )
    .unwrap();
    let txns = read("transactions.jsonl");
    let summary = r
        .ingest("transactions.jsonl", txns.as_bytes(), |_| {})
        .unwrap();
    let expected: serde_json::Value = serde_json::from_str(&read("expected_ingest.json")).unwrap();
    assert_eq!(serde_json::to_value(&summary).unwrap(), expected);
}

#[test]
fn the_reports_of_the_library_are_the_hand_computed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    recorded(&cfg);
    let l = ReadLedger::open(&cfg).unwrap();
    for date in ["2026-11-20", "2026-11-21"] {
        let report = l.settlement(date.parse().unwrap()).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&read(&format!("expected_settlement_{date}.json"))).unwrap();
        assert_eq!(serde_json::to_value(&report).unwrap(), expected, "{date}");
    }
    let risk = l.risk("2026-11-20".parse().unwrap()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&read("expected_risk_2026-11-20.json")).unwrap();
    assert_eq!(serde_json::to_value(&risk).unwrap(), expected);
}

#[test]
fn a_replayed_dir_refuses_every_change_and_reads_as_the_replay_left_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    recorded(&cfg);
    let live = ReadLedger::open(&cfg).unwrap();
    let digest = live.digest().unwrap();
    let settlement = live.settlement("2026-11-20".parse().unwrap()).unwrap();
    drop(live);
    let into = tempfile::tempdir().unwrap();
    let replayed =
        clearing_app::replay(cfg.live().unwrap(), &Cut::End, into.path(), 7, |_, _| {}).unwrap();
    assert_eq!(replayed.digest, digest);

    let rcfg = config(into.path());
    let refused = rcfg.live().map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    assert!(refused.to_string().contains("read-only"), "{refused}");

    let r = ReadLedger::open(&rcfg).unwrap();
    assert_eq!(r.digest().unwrap(), digest);
    assert_eq!(
        r.settlement("2026-11-20".parse().unwrap()).unwrap(),
        settlement
    );
    assert!(r.replay().is_some());
}

#[test]
fn errors_say_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut r = Recorder::open(cfg.live().unwrap()).unwrap();
    let no_fees = r.ingest("x", "{}".as_bytes(), |_| {}).unwrap_err();
    assert_eq!(no_fees.kind(), ErrorKind::Conflict, "{no_fees}");
    let bad = r
        .load_fees(named("fees.toml", "cutoff = 23"), None)
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Input, "{bad}");
    assert!(bad.to_string().contains("cutoff"), "{bad}");
    drop(r);
    let mut l = ReadLedger::open(&cfg).unwrap();
    let missing = l.stories("NOPE").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    let bad_prefix = Config::new(&ConfigInput {
        topic_prefix: "a b".into(),
        ..ConfigInput::default()
    })
    .unwrap_err();
    assert_eq!(bad_prefix.kind(), ErrorKind::Input);
}
