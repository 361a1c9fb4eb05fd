//! The use cases as a library: what the command line and the HTTP
//! service both call. The day1 fixture's hand-computed reports must come
//! out of the library's typed results, and a replayed dir must refuse
//! every use case that changes a ledger.

mod common;

use clearing_app::core::Cut;
use clearing_app::{Config, ConfigInput, ErrorKind, ReadLedger, Recorder};
use common::*;

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
    let options = clearing_app::ReplayOptions {
        leg_events: 7,
        from_scratch: true,
    };
    let replayed = clearing_app::replay(
        cfg.live().unwrap(),
        &Cut::End,
        into.path(),
        options,
        |_, _| {},
    )
    .unwrap();
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
