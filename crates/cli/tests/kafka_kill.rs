//! Kill tests on Apache Kafka (`deploy/test.sh` starts one and sets
//! `CLEARING_TEST_KAFKA`): processes are SIGKILLed at random moments and
//! restarted, the broker itself is crashed; at the end nothing is lost and
//! nothing is counted twice. Every test ingests the same generated day of
//! more than 100,000 transactions, whose clean run on the embedded log is
//! made once. The seed of the random moments is printed;
//! `CLEARING_TEST_SEED=N` replays it.

mod day;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clearing_testkit::{OwnBroker, Reaped};
use day::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Transactions of the generated day (its faults and reversals add lines).
const DAY_TXNS: usize = 110_000;

/// The day every kill test ingests, generated once per test binary.
fn day() -> &'static Day {
    static DAY: OnceLock<Day> = OnceLock::new();
    DAY.get_or_init(|| Day::generate(DAY_TXNS))
}

use clearing_testkit::test_broker as broker;

/// The kill tests load the broker heavily: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

use clearing_testkit::test_seed as seed;

#[test]
fn a_follower_killed_thirty_times_during_an_ingest_ends_with_the_digest_of_a_clean_projection() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let day = day();
    let mut rng = ChaCha8Rng::seed_from_u64(seed("follower_kill"));
    let prefix = format!("kill-follow-{}-{}", std::process::id(), rng.gen::<u32>());
    let writer = tempfile::tempdir().unwrap();
    load_reference_on(writer.path(), Some((broker(), &prefix)), &day.input);
    // The day goes in from stdin in 40 chunks, chunk i only after the
    // i-th kill (up to 30): every kill falls inside the ingest, however
    // fast either side runs.
    let mut ingest = Reaped::new(
        command(
            writer.path(),
            Some(&prefix),
            &["ingest", "-", "--format", "json"],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let kills = Arc::new(AtomicUsize::new(0));
    let lines = day.lines();
    let seen = kills.clone();
    let feeder = feed(
        ingest.stdin.take().unwrap(),
        &day.file,
        lines.div_ceil(40),
        move |i| {
            while seen.load(Ordering::SeqCst) < i.min(30) {
                std::thread::sleep(Duration::from_millis(5));
            }
        },
    );
    let follower = tempfile::tempdir().unwrap();
    let mut kills_during_ingest = 0;
    while kills.load(Ordering::SeqCst) < 30 || ingest.try_wait().unwrap().is_none() {
        let mut f = Reaped::new(
            command(
                follower.path(),
                Some(&prefix),
                &["project", "--follow", "--poll-interval-ms", "20"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..700)));
        let running = ingest.try_wait().unwrap().is_none();
        kill(&mut f);
        kills_during_ingest += usize::from(running);
        kills.fetch_add(1, Ordering::SeqCst);
        assert!(kills.load(Ordering::SeqCst) < 400, "ingest did not finish");
    }
    feeder.join().unwrap();
    let out = ingest.into_inner().wait_with_output().unwrap();
    let summary: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_completes_the_clean_run(&summary, day);
    assert!(
        kills_during_ingest >= 30,
        "only {kills_during_ingest} kills fell inside the ingest"
    );
    // the survivor catches up; a fresh directory projects the same topics cleanly
    json(
        follower.path(),
        Some(&prefix),
        &["project", "--format", "json"],
    );
    let clean = tempfile::tempdir().unwrap();
    let digest = json(clean.path(), Some(&prefix), &["digest", "--format", "json"]);
    assert_eq!(
        json(
            follower.path(),
            Some(&prefix),
            &["digest", "--format", "json"]
        ),
        digest,
        "after {kills_during_ingest} kills"
    );
    assert_eq!(
        reports_on(follower.path(), Some((broker(), &prefix))),
        day.clean_reports
    );
}

#[test]
fn an_ingest_killed_mid_file_and_rerun_gives_the_reports_of_a_clean_run() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let day = day();
    let mut rng = ChaCha8Rng::seed_from_u64(seed("ingest_kill"));
    let prefix = format!("kill-ingest-{}-{}", std::process::id(), rng.gen::<u32>());
    let writer = tempfile::tempdir().unwrap();
    load_reference_on(writer.path(), Some((broker(), &prefix)), &day.input);
    for _ in 0..3 {
        let mut ingest = Reaped::new(
            command(writer.path(), Some(&prefix), &["ingest", &day.file])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..2500)));
        kill(&mut ingest);
    }
    let last = json(
        writer.path(),
        Some(&prefix),
        &["ingest", &day.file, "--format", "json"],
    );
    assert_completes_the_clean_run(&last, day);
    assert_eq!(
        reports_on(writer.path(), Some((broker(), &prefix))),
        day.clean_reports
    );
    // the chains hold: what the killed runs left in open transactions was
    // aborted and is read by no one
    ok(command(writer.path(), Some(&prefix), &["verify"])
        .output()
        .unwrap());
}

#[test]
fn every_event_of_the_day_published_twice_leaves_the_digest_and_the_reports_unchanged() {
    use clearing_kafka::{KafkaLog, KafkaSettings};
    use clearing_log::{EventLog, Record, Topic, TopicNames};
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let day = day();
    let mut rng = ChaCha8Rng::seed_from_u64(seed("twice"));
    let prefix = format!("twice-day-{}-{}", std::process::id(), rng.gen::<u32>());
    let ledger = tempfile::tempdir().unwrap();
    load_reference_on(ledger.path(), Some((broker(), &prefix)), &day.input);
    json(
        ledger.path(),
        Some(&prefix),
        &["ingest", &day.file, "--format", "json"],
    );
    let before = json(
        ledger.path(),
        Some(&prefix),
        &["digest", "--format", "json"],
    );
    // every event again, as a producer retrying after lost
    // acknowledgements would: same keys, same payloads
    let log =
        KafkaLog::open(KafkaSettings::new(&broker(), TopicNames::with_prefix(&prefix), 4).unwrap())
            .unwrap();
    let mut copies = 0u64;
    for partition in 0..4u32 {
        // the originals: everything before the digest's position
        let end = before["positions"][partition.to_string()]
            .as_u64()
            .unwrap_or(0);
        let mut from = 0;
        while from < end {
            let batch = log.read(Topic::Events, partition, from, 20_000).unwrap();
            let Some(last) = batch.last() else { break };
            from = last.position.offset + 1;
            let records: Vec<Record> = batch
                .into_iter()
                .filter(|d| d.position.offset < end)
                .map(|d| Record {
                    key: d.key,
                    payload: d.payload,
                    headers: Vec::new(),
                    partition: Some(partition),
                })
                .collect();
            copies += records.len() as u64;
            log.append(Topic::Events, &records).unwrap();
        }
    }
    drop(log);
    assert!(copies >= 100_000, "{copies} copies");
    let projected = json(
        ledger.path(),
        Some(&prefix),
        &["project", "--format", "json"],
    );
    assert_eq!(projected["redelivered_skipped"], copies, "{projected}");
    let after = json(
        ledger.path(),
        Some(&prefix),
        &["digest", "--format", "json"],
    );
    assert_eq!(after["digest"], before["digest"], "every copy was skipped");
    assert_eq!(
        reports_on(ledger.path(), Some((broker(), &prefix))),
        day.clean_reports
    );
    // a fresh directory reading the doubled topic reaches the same state
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(
        json(fresh.path(), Some(&prefix), &["digest", "--format", "json"])["digest"],
        before["digest"]
    );
}

#[test]
fn an_ingest_whose_broker_dies_stops_saying_how_far_it_got_and_a_rerun_completes_it() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let day = day();
    let mut rng = ChaCha8Rng::seed_from_u64(seed("broker_dies"));
    let prefix = format!("broker-dies-{}-{}", std::process::id(), rng.gen::<u32>());
    let own = OwnBroker::start(1);
    let kafka = || Some((own.address.clone(), prefix.as_str()));
    let writer = tempfile::tempdir().unwrap();
    load_reference_on(writer.path(), kafka(), &day.input);

    // The day from stdin at a steady pace (a chunk every 100 ms, ~10 s in
    // all), so that the broker dies while lines still come in.
    let started = Instant::now();
    let mut ingest = Reaped::new(
        command_on(writer.path(), kafka(), &["ingest", "-"])
            .env("CLEARING_KAFKA_TIMEOUT_SECS", "15")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let feeder = feed(ingest.stdin.take().unwrap(), &day.file, 1_200, |_| {
        std::thread::sleep(Duration::from_millis(100))
    });
    std::thread::sleep(Duration::from_millis(rng.gen_range(2500..5000)));
    own.crash(1);
    let crashed_at = started.elapsed();
    let out = ingest.into_inner().wait_with_output().unwrap();
    feeder.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "ingest after the broker died at {crashed_at:?} ({:?}): {stderr}",
        started.elapsed()
    );
    assert!(
        !out.status.success(),
        "the ingest finished before the broker died; {stderr}"
    );
    assert!(
        started.elapsed() < crashed_at + Duration::from_secs(60),
        "the retries are bounded"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&own.address), "{stderr}");
    let recorded: u64 = stderr
        .split("lines up to ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line number in {stderr}"));
    assert!(recorded > 0, "some lines were recorded before the crash");
    assert!(stderr.contains("run the same file again"), "{stderr}");

    own.resume(1);
    let rerun = json_on(
        writer.path(),
        kafka(),
        &["ingest", &day.file, "--format", "json"],
    );
    eprintln!("rerun: {rerun}");
    assert_completes_the_clean_run(&rerun, day);
    assert!(
        rerun["duplicates"].as_u64().unwrap() > 0,
        "the lines recorded before the crash are duplicates now: {rerun}"
    );
    assert_eq!(reports_on(writer.path(), kafka()), day.clean_reports);
    ok(command_on(writer.path(), kafka(), &["verify"])
        .output()
        .unwrap());
}
