//! The ledger on a real Kafka-protocol broker. `deploy/test.sh` starts one
//! on 127.0.0.1 and passes its address in `CLEARING_TEST_KAFKA`; without
//! it these tests fail rather than skip. Each test uses its own random
//! topic prefix and data dirs.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_clearing");

use clearing_testkit::test_broker as broker;

mod common;

fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{}-{}-{}", std::process::id(), nanos % 1_000_000_000, test)
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/day1")
        .join(name)
        .display()
        .to_string()
}

struct Ledger {
    dir: tempfile::TempDir,
    kafka: Option<(String, String)>,
}

impl Ledger {
    fn embedded() -> Ledger {
        Ledger {
            dir: tempfile::tempdir().unwrap(),
            kafka: None,
        }
    }

    fn kafka(prefix: &str) -> Ledger {
        Ledger {
            dir: tempfile::tempdir().unwrap(),
            kafka: Some((broker(), prefix.to_string())),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(self.dir.path())
            .env_remove("CLEARING_KAFKA")
            .env_remove("CLEARING_TOPIC_PREFIX");
        if let Some((brokers, prefix)) = &self.kafka {
            c.args([
                "--kafka",
                brokers,
                "--topic-prefix",
                prefix,
                "--partitions",
                "4",
            ]);
        }
        c.args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn load_day(&self) -> Value {
        self.ok(&[
            "fees",
            "load",
            &fixture("fees.toml"),
            "--holidays",
            &fixture("holidays.txt"),
        ]);
        self.ok(&[
            "registry",
            "load",
            "--merchants",
            &fixture("merchants.jsonl"),
            "--intermediaries",
            &fixture("intermediaries.jsonl"),
        ]);
        self.json(&["ingest", &fixture("transactions.jsonl"), "--format", "json"])
    }

    fn reports(&self) -> Vec<Value> {
        vec![
            self.json(&[
                "report",
                "settlement",
                "--date",
                "2026-11-20",
                "--format",
                "json",
            ]),
            self.json(&[
                "report",
                "settlement",
                "--date",
                "2026-11-21",
                "--format",
                "json",
            ]),
            self.json(&["report", "risk", "--date", "2026-11-20", "--format", "json"]),
        ]
    }
}

fn expected(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

#[test]
fn reports_on_kafka_equal_reports_on_the_embedded_log() {
    let embedded = Ledger::embedded();
    let kafka = Ledger::kafka(&prefix("parity"));
    assert_eq!(embedded.load_day(), expected("expected_ingest.json"));
    assert_eq!(kafka.load_day(), expected("expected_ingest.json"));
    let reports = kafka.reports();
    assert_eq!(reports, embedded.reports());
    assert_eq!(reports[0], expected("expected_settlement_2026-11-20.json"));
    assert_eq!(reports[2], expected("expected_risk_2026-11-20.json"));
}

#[test]
fn a_rerun_on_kafka_is_all_duplicates_and_a_rebuild_from_the_topic_has_the_same_digest() {
    let p = prefix("rerun");
    let first = Ledger::kafka(&p);
    first.load_day();
    let again = first.json(&["ingest", &fixture("transactions.jsonl"), "--format", "json"]);
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(18))
    );
    let digest = first.json(&["digest", "--format", "json"]);
    // another data dir on the same topics: the write model and the
    // projections are rebuilt from the broker alone
    let second = Ledger::kafka(&p);
    assert_eq!(second.json(&["digest", "--format", "json"]), digest);
    let rerun = second.json(&["ingest", &fixture("transactions.jsonl"), "--format", "json"]);
    assert_eq!(
        rerun["accepted"], 0,
        "the new write model caught up from the topic first"
    );
    assert_eq!(
        second.reports()[0],
        expected("expected_settlement_2026-11-20.json")
    );
}

#[test]
fn an_existing_topic_with_another_partition_count_is_refused() {
    let p = prefix("parts");
    Ledger::kafka(&p).ok(&["digest"]);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--kafka",
            &broker(),
            "--topic-prefix",
            &p,
            "--partitions",
            "3",
            "digest",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("has 4 partitions, expected 3"), "{e}");
}

#[test]
fn an_unreachable_broker_is_a_one_line_error() {
    // a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--kafka", &format!("127.0.0.1:{port}"), "digest"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn an_outside_kafka_client_reads_the_ledger_by_standard_conventions() {
    let python = std::env::var("CLEARING_TEST_PYTHON").expect(
        "CLEARING_TEST_PYTHON is not set: run ./deploy/test.sh, which installs the outside client",
    );
    let p = prefix("outside");
    let ledger = Ledger::kafka(&p);
    ledger.load_day();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/outside_client/read_events.py");
    let out = Command::new(python)
        .arg(script)
        .arg(broker())
        .arg(format!("{p}.events"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "outside client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    // 1 fee schedule, 1 intermediary, 4 merchants, 16 accepted records
    assert_eq!(seen["events"], 22, "{seen}");
    assert_eq!(seen["types"]["SaleRecorded"], 13);
    assert_eq!(seen["types"]["RefundRecorded"], 1);
    assert_eq!(seen["types"]["MerchantRegistered"], 4);
}

#[test]
fn a_message_that_is_not_an_event_is_dead_lettered_with_its_position_and_projection_goes_on() {
    use clearing_core::{Event, EventBody};
    use clearing_kafka::{KafkaLog, KafkaSettings};
    use clearing_log::{EventLog, Record, Topic, TopicNames};
    let p = prefix("foreign");
    let ledger = Ledger::kafka(&p);
    ledger.load_day();
    let reports = ledger.reports();
    let log =
        KafkaLog::open(KafkaSettings::new(&broker(), TopicNames::with_prefix(&p), 4).unwrap())
            .unwrap();
    let at = log
        .append(
            Topic::Events,
            &[Record {
                key: "intruder".into(),
                payload: b"{\"hello\":\"kafka\"}".to_vec(),
                headers: Vec::new(),
                partition: None,
            }],
        )
        .unwrap()[0];
    let projected = ledger.json(&["project", "--format", "json"]);
    assert_eq!(projected["events_applied"], 1, "the projector read past it");
    assert_eq!(ledger.reports(), reports, "and changed nothing");
    let dead: Vec<Event> = (0..log.partitions(Topic::Rejected).unwrap())
        .flat_map(|partition| log.read(Topic::Rejected, partition, 0, usize::MAX).unwrap())
        .map(|d| Event::decode(&d.payload).unwrap())
        .collect();
    let foreign: Vec<_> = dead
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::RecordRejected(r)
                if r.reason == clearing_core::ingest::Reason::InvalidEvent =>
            {
                Some(r)
            }
            _ => None,
        })
        .collect();
    assert_eq!(foreign.len(), 1, "{dead:?}");
    assert_eq!(
        foreign[0].position.map(|p| p.to_string()).as_deref(),
        Some(at.to_string().as_str())
    );
    assert_eq!(foreign[0].source, format!("{p}.events"));
    assert!(foreign[0].raw.contains("hello"), "{:?}", foreign[0]);
    assert!(
        foreign[0].detail.contains("not an event envelope"),
        "{}",
        foreign[0].detail
    );
}

/// Runs the outside client's group-offsets script with `extra` arguments.
fn group_script(group: &str, topic: &str, extra: &[String]) -> Value {
    let python = std::env::var("CLEARING_TEST_PYTHON").expect(
        "CLEARING_TEST_PYTHON is not set: run ./deploy/test.sh, which installs the outside client",
    );
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/outside_client/group_offsets.py");
    let out = Command::new(python)
        .arg(script)
        .args([&broker(), group, topic, "4"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "group offsets: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The group's committed offsets, read (or first overwritten with
/// `commit` on every partition) by the outside client.
fn group_offsets(group: &str, topic: &str, commit: Option<u64>) -> Value {
    let extra = match commit {
        Some(o) => vec!["--commit".to_string(), o.to_string()],
        None => Vec::new(),
    };
    group_script(group, topic, &extra)
}

/// Each partition's end offset, as the outside client reads it.
fn log_ends(topic: &str) -> Value {
    group_script("clearing-test-ends", topic, &["--ends".to_string()])
}

/// Starts `project --follow` and returns it with the consumer group it
/// announced on stderr, and the rest of stderr as it comes.
fn start_follower(
    dir: &Path,
    prefix: &str,
) -> (
    clearing_testkit::Reaped,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    use std::io::BufRead;
    let mut child = clearing_testkit::Reaped::new(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .args([
                "--kafka",
                &broker(),
                "--topic-prefix",
                prefix,
                "--partitions",
                "4",
                "project",
                "--follow",
            ])
            .env_remove("CLEARING_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the follower announces its group");
    let group = first
        .rsplit_once("consumer group ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .1
        .to_string();
    (child, group, rx)
}

fn stop_follower(
    mut child: clearing_testkit::Reaped,
    rx: std::sync::mpsc::Receiver<String>,
) -> u64 {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert!(child.wait().unwrap().success());
    let last = rx.iter().last().expect("a closing line");
    last.rsplit_once("after ")
        .and_then(|(_, n)| n.strip_suffix(" events"))
        .unwrap_or_else(|| panic!("unexpected closing line: {last}"))
        .parse()
        .unwrap()
}

/// Waits until the group's commits stand at the end of every partition
/// (lag 0: past the last event and the marker of the Kafka transaction
/// that recorded it), and checks the projection's positions are the last
/// events'.
fn wait_for_commits(group: &str, topic: &str, positions: &Value) {
    let ends = log_ends(topic);
    for p in 0..4 {
        let end = ends[p.to_string()].as_u64().unwrap();
        let at = positions
            .get(p.to_string())
            .map_or(0, |v| v.as_u64().unwrap());
        assert!(
            at <= end && end <= at + 1,
            "partition {p}: the projection stands at {at}, the log ends at {end}"
        );
    }
    let start = std::time::Instant::now();
    loop {
        let got = group_offsets(group, topic, None);
        if got == ends {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(90),
            "group {group} committed {got}, the log ends at {ends}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn a_follower_is_a_group_member_that_starts_from_its_stored_positions_not_the_groups_commits() {
    let p = prefix("group");
    let topic = format!("{p}.events");
    let source = Ledger::kafka(&p);
    source.ok(&[
        "fees",
        "load",
        &fixture("fees.toml"),
        "--holidays",
        &fixture("holidays.txt"),
    ]);
    source.ok(&[
        "registry",
        "load",
        "--merchants",
        &fixture("merchants.jsonl"),
        "--intermediaries",
        &fixture("intermediaries.jsonl"),
    ]);
    let reference = source.json(&["digest", "--format", "json"]);

    // First run: the reference data, then its progress is committed.
    let follower = tempfile::tempdir().unwrap();
    let (child, group, rx) = start_follower(follower.path(), &p);
    assert!(group.starts_with(&format!("{p}.projector.")), "{group}");
    wait_for_commits(&group, &topic, &reference["positions"]);
    assert_eq!(
        stop_follower(child, rx),
        6,
        "1 fee schedule, 1 intermediary, 4 merchants"
    );

    // Progress that lies: far past the end of every partition. A follower
    // trusting the group's commits would read nothing from here on.
    group_offsets(&group, &topic, Some(1_000_000));
    source.json(&["ingest", &fixture("transactions.jsonl"), "--format", "json"]);
    let full = source.json(&["digest", "--format", "json"]);

    let (child, again, rx) = start_follower(follower.path(), &p);
    assert_eq!(again, group, "the same data dir keeps its group");
    wait_for_commits(&group, &topic, &full["positions"]);
    assert_eq!(
        stop_follower(child, rx),
        16,
        "the 16 accepted records, once each"
    );

    // Nothing left for a read command to catch up: the follower did it all.
    let followed = Ledger {
        dir: follower,
        kafka: Some((broker(), p.clone())),
    };
    assert_eq!(followed.json(&["digest", "--format", "json"]), full);
    assert_eq!(followed.reports(), source.reports());
}

#[test]
fn the_kafka_benchmark_prints_the_raw_consume_baseline_of_the_same_run() {
    let p = prefix("bench");
    let ledger = Ledger::kafka(&p);
    let fig = ledger.json(&[
        "bench",
        "--txns",
        "300",
        "--merchants",
        "20",
        "--format",
        "json",
    ]);
    assert_eq!(fig["log"], format!("kafka at {}", broker()));
    assert!(fig["events"].as_u64().unwrap() >= 300, "{fig}");
    let raw = fig["raw_consume_msg_per_s"].as_f64().unwrap();
    let project = fig["project_txn_per_s"].as_f64().unwrap();
    assert!(raw > 0.0 && project > 0.0, "{fig}");
    let ratio = fig["kafka_ratio_to_raw_consume"].as_f64().unwrap();
    assert!((ratio - project / raw).abs() < 0.001, "{fig}");
}

#[test]
fn reconciliation_over_consecutive_dates_is_the_same_on_kafka_and_on_the_embedded_log() {
    let embedded = Ledger::embedded();
    let kafka = Ledger::kafka(&prefix("recon"));
    embedded.load_day();
    kafka.load_day();
    // Day 1's file injects every kind of break (see tests/fixtures/day1/README.md).
    let day1 = fixture("channel-2026-11-20.csv");
    // Day 2's file: the item day 1 held (rrn 432100000011, 22:59:59), late,
    // carrying day 2's date; day 2's own sale (23:00:00 on the 20th) is absent.
    let day2_path = embedded.dir.path().join("channel-2026-11-21.csv");
    std::fs::write(
        &day2_path,
        "business_date,occurred_at,merchant_id,terminal_id,rrn,stan,card,txn_type,amount,fee\n\
         2026-11-21,2026-11-20T22:59:59+08:00,822584053110004,10000005,432100000011,000011,,sale,300.00,1.80\n",
    )
    .unwrap();
    let day2 = day2_path.display().to_string();
    let run = |l: &Ledger, f: &str, d: &str| {
        l.json(&["recon", "--file", f, "--date", d, "--format", "json"])
    };
    let e1 = run(&embedded, &day1, "2026-11-20");
    let k1 = run(&kafka, &day1, "2026-11-20");
    assert_eq!(k1, e1);
    let counts: Vec<(String, u64)> = e1["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let want = [
        ("amount_mismatch", 1),
        ("duplicate_in_channel", 1),
        ("fee_mismatch", 1),
        ("held", 1),
        ("matched", 2),
        ("missing_in_channel", 5),
        ("missing_in_ledger", 1),
        ("status_mismatch", 1),
    ];
    assert_eq!(
        counts,
        want.iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<Vec<_>>()
    );
    assert_eq!(e1["held"][0]["rrn"], "432100000011");

    let e2 = run(&embedded, &day2, "2026-11-21");
    let k2 = run(&kafka, &day2, "2026-11-21");
    assert_eq!(k2, e2);
    assert_eq!(e2["counts"]["matched"], 1, "{e2}");
    assert_eq!(e2["counts"]["held"], 0, "{e2}");
    // a rerun on Kafka records nothing new
    let before = kafka.json(&["digest", "--format", "json"]);
    assert_eq!(run(&kafka, &day1, "2026-11-20"), e1);
    assert_eq!(kafka.json(&["digest", "--format", "json"]), before);
}

#[test]
fn a_replay_from_kafka_has_the_live_digest_and_its_dir_shows_stories_read_from_the_topic() {
    let live = Ledger::kafka(&prefix("replay"));
    live.load_day();
    let first = live.json(&["digest", "--format", "json"]);
    let sale = live.json(&["txn", "show", "P20261120000004", "--format", "json"]);
    let t = sale["transactions"][0]["events"][0]["recorded_at"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // a registry change recorded later
    let work = tempfile::tempdir().unwrap();
    let m = common::merchants_moved_to_exempt(work.path());
    live.ok(&["registry", "load", "--merchants", &m.display().to_string()]);
    let end = live.json(&["digest", "--format", "json"]);
    assert_ne!(first["digest"], end["digest"]);

    // to the end: the live digest; to the time of the first load: its digest
    let r_end = work.path().join("end");
    let replayed = live.json(&[
        "replay",
        "--until",
        "end",
        "--into",
        &r_end.display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(replayed, end);
    let r_t = work.path().join("at-t");
    let at_t = live.json(&[
        "replay",
        "--until",
        &t,
        "--into",
        &r_t.display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(at_t["digest"], first["digest"]);
    assert_eq!(at_t["log_position"], first["log_position"]);

    // the replayed dir answers without --kafka: reports from its state, the
    // events themselves from the topic it was replayed from
    let show = Command::new(BIN)
        .args(["--data-dir", &r_t.display().to_string()])
        .args(["txn", "show", "432100000007", "--format", "json"])
        .env_remove("CLEARING_KAFKA")
        .output()
        .unwrap();
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let story: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        story["transactions"],
        live.json(&["txn", "show", "432100000007", "--format", "json"])["transactions"]
    );
    let report = Command::new(BIN)
        .args(["--data-dir", &r_t.display().to_string()])
        .args([
            "report",
            "settlement",
            "--date",
            "2026-11-20",
            "--format",
            "json",
        ])
        .env_remove("CLEARING_KAFKA")
        .output()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&report.stdout).unwrap(),
        expected("expected_settlement_2026-11-20.json")
    );
}

#[test]
fn verify_on_kafka_holds_and_finds_an_event_forged_by_an_outside_client() {
    let p = prefix("verify");
    let l = Ledger::kafka(&p);
    l.load_day();
    let v = l.json(&["verify", "--format", "json"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["chains"].as_array().unwrap().len(), 4);
    let python = std::env::var("CLEARING_TEST_PYTHON").expect(
        "CLEARING_TEST_PYTHON is not set: run ./deploy/test.sh, which installs the outside client",
    );
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/outside_client/forge_event.py");
    let out = Command::new(python)
        .arg(script)
        .args([&broker(), &format!("{p}.events"), "822584053110001"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = l.run(&["verify"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let position = format!("{}:{}", at["partition"], at["offset"]);
    assert!(
        stderr.contains(&format!("breaks at {position}")),
        "{stderr} (forged at {position})"
    );
}

/// One of Kafka's own tools, from the cached jars, against the test broker.
fn kafka_tool(class: &str, args: &[&str]) -> String {
    let broker = broker();
    let mut all = vec!["tool", class, "--bootstrap-server", &broker];
    all.extend_from_slice(args);
    clearing_testkit::dev_broker(None, &all)
}

/// A row of `kafka-consumer-groups --describe` for the events topic.
#[derive(Debug, PartialEq)]
struct GroupRow {
    partition: u32,
    current: u64,
    log_end: u64,
    lag: u64,
    consumer: String,
}

fn describe_group(group: &str, topic: &str) -> Vec<GroupRow> {
    let out = kafka_tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--describe", "--group", group],
    );
    let mut rows: Vec<GroupRow> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 6 && f[0] == group && f[1] == topic)
        .map(|f| GroupRow {
            partition: f[2].parse().unwrap(),
            current: f[3].parse().unwrap(),
            log_end: f[4].parse().unwrap(),
            lag: f[5].parse().unwrap(),
            consumer: f.get(6).unwrap_or(&"-").to_string(),
        })
        .collect();
    rows.sort_by_key(|r| r.partition);
    assert_eq!(rows.len(), 4, "{out}");
    rows
}

#[test]
fn kafkas_own_console_consumer_reads_every_event_with_its_key_and_headers() {
    let p = prefix("console");
    let ledger = Ledger::kafka(&p);
    ledger.load_day();
    let out = kafka_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--topic",
            &format!("{p}.events"),
            "--from-beginning",
            "--max-messages",
            "22",
            "--timeout-ms",
            "30000",
            "--isolation-level",
            "read_committed",
            "--formatter-property",
            "print.partition=true",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "print.headers=true",
        ],
    );
    let mut types = std::collections::BTreeMap::<String, u32>::new();
    let mut partition_of = std::collections::BTreeMap::<String, String>::new();
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Partition:"))
        .collect();
    assert_eq!(lines.len(), 22, "{out}");
    for line in lines {
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        let [partition, headers, key, value] = fields[..] else {
            panic!("{line}")
        };
        let event: Value = serde_json::from_str(value).unwrap();
        // headers: type, schema_version and event_id, as the body says
        let headers: std::collections::BTreeMap<&str, &str> = headers
            .split(',')
            .map(|h| h.split_once(':').unwrap())
            .collect();
        assert_eq!(headers["type"], event["type"], "{line}");
        assert_eq!(
            headers["schema_version"],
            event["schema_version"].to_string(),
            "{line}"
        );
        assert_eq!(headers["event_id"], event["event_id"], "{line}");
        // the key is the merchant (reference data has its own key), and
        // one key stays on one partition
        match event["merchant_id"].as_str() {
            Some(m) => assert_eq!(key, m, "{line}"),
            None => assert_eq!(key, "reference", "{line}"),
        }
        let at = partition_of
            .entry(key.to_string())
            .or_insert(partition.to_string());
        assert_eq!(at, partition, "{key} on two partitions");
        *types.entry(headers["type"].to_string()).or_default() += 1;
    }
    assert_eq!(types["SaleRecorded"], 13, "{types:?}");
    assert_eq!(types["RefundRecorded"], 1, "{types:?}");
    assert_eq!(types["MerchantRegistered"], 4, "{types:?}");
}

#[test]
fn kafkas_consumer_groups_tool_shows_the_followers_group_and_its_lag() {
    let p = prefix("lag");
    let topic = format!("{p}.events");
    let source = Ledger::kafka(&p);
    source.load_day();
    let follower = tempfile::tempdir().unwrap();
    let (child, group, rx) = start_follower(follower.path(), &p);
    let caught_up = source.json(&["digest", "--format", "json"]);
    wait_for_commits(&group, &topic, &caught_up["positions"]);
    // a member, caught up: lag 0 on every partition
    for row in describe_group(&group, &topic) {
        assert_eq!(row.lag, 0, "{row:?}");
        assert_eq!(row.current, row.log_end, "{row:?}");
        assert_ne!(row.consumer, "-", "the follower is a member: {row:?}");
    }
    assert_eq!(stop_follower(child, rx), 22);

    // events recorded while no one follows: the tool shows them as lag
    let before = describe_group(&group, &topic);
    let moved = common::merchants_moved_to_exempt(follower.path());
    let said = source.ok(&[
        "registry",
        "load",
        "--merchants",
        &moved.display().to_string(),
    ]);
    assert!(said.contains("1 updated"), "{said}");
    let behind = describe_group(&group, &topic);
    let mut lag = 0;
    for (b, a) in before.iter().zip(&behind) {
        assert_eq!(a.current, b.current, "no commit while stopped: {a:?}");
        assert_eq!(a.lag, a.log_end - a.current, "{a:?}");
        lag += a.lag;
    }
    // the update and the marker of the transaction that recorded it
    assert_eq!(lag, 2, "{behind:?}");

    // the follower comes back and works the lag off
    let (child, _, rx) = start_follower(follower.path(), &p);
    let now = source.json(&["digest", "--format", "json"]);
    wait_for_commits(&group, &topic, &now["positions"]);
    for row in describe_group(&group, &topic) {
        assert_eq!(row.lag, 0, "{row:?}");
    }
    assert_eq!(stop_follower(child, rx), 1);
}
