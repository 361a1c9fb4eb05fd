//! Helpers of the application's tests: configurations on a data dir, the
//! day1 fixture recorded through the library, records read off the log.
#![allow(dead_code)]

use std::path::Path;

use clearing_app::config::Clock;
use clearing_app::core::Timestamp;
use clearing_app::log::embedded::EmbeddedLog;
use clearing_app::log::{EventLog, Record, Topic, TopicNames};
use clearing_app::{Config, ConfigInput, Named, Recorder, Snapshots};

pub const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/day1");

pub fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURE).join(name)).unwrap()
}

pub fn config(dir: &Path) -> Config {
    Config::new(&ConfigInput {
        data_dir: Some(dir.to_path_buf()),
        kafka: None,
        topic_prefix: "clearing".into(),
        partitions: 8,
        kafka_timeout_secs: 120,
        kafka_transactions: true,
        snapshots: Snapshots::default(),
    })
    .unwrap()
}

fn fixed_time() -> Timestamp {
    Timestamp::parse("2026-11-21T09:00:00.000+08:00").unwrap()
}

/// A configuration whose recording time never moves: two runs that record
/// the same events have the same digest.
pub fn fixed_clock(dir: &Path) -> Config {
    Config {
        clock: Clock(fixed_time),
        ..config(dir)
    }
}

pub fn named<'a>(name: &'a str, text: &'a str) -> Named<'a> {
    Named { name, text }
}

/// Records the fixture's fee schedule, calendar and registry.
pub fn load_reference(r: &mut Recorder) {
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
}

/// The day1 fixture recorded through the library.
pub fn recorded(cfg: &Config) {
    let mut r = Recorder::open(cfg.live().unwrap()).unwrap();
    load_reference(&mut r);
    let txns = read("transactions.jsonl");
    r.ingest("transactions.jsonl", txns.as_bytes(), |_| {})
        .unwrap();
}

/// Every record of a data dir's embedded events topic.
pub fn records(dir: &Path) -> Vec<Record> {
    let log = EmbeddedLog::open(dir, TopicNames::with_prefix("clearing")).unwrap();
    log.read(Topic::Events, 0, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|d| Record {
            key: d.key,
            payload: d.payload,
            headers: Vec::new(),
            partition: None,
        })
        .collect()
}

/// A data dir whose log holds exactly `records`, nothing else.
pub fn log_of(records: &[Record]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), TopicNames::with_prefix("clearing")).unwrap();
    log.append(Topic::Events, records).unwrap();
    dir
}
