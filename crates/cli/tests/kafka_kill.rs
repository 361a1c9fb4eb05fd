//! Kill tests on a real broker with durable storage (`deploy/test.sh`
//! starts one and sets `CLEARING_TEST_KAFKA`): processes are SIGKILLed at
//! random moments and restarted; at the end nothing is lost and nothing is
//! counted twice. The seed of the random moments is printed;
//! `CLEARING_TEST_SEED=N` replays it.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_clearing");

use clearing_testkit::test_broker as broker;

/// The kill tests share one broker and load it heavily: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

use clearing_testkit::test_seed as seed;

fn command(dir: &Path, kafka: Option<&str>, args: &[&str]) -> Command {
    command_on(dir, kafka.map(|prefix| (broker(), prefix)), args)
}

/// A command on the embedded log, or on Kafka at `(brokers, prefix)`.
fn command_on(dir: &Path, kafka: Option<(String, &str)>, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("CLEARING_KAFKA")
        .env_remove("CLEARING_TOPIC_PREFIX")
        .env_remove("CLEARING_KAFKA_TIMEOUT_SECS");
    if let Some((brokers, prefix)) = kafka {
        c.args([
            "--kafka",
            &brokers,
            "--topic-prefix",
            prefix,
            "--partitions",
            "4",
        ]);
    }
    c.args(args);
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Path, kafka: Option<&str>, args: &[&str]) -> Value {
    serde_json::from_str(&ok(command(dir, kafka, args).output().unwrap())).unwrap()
}

/// A generated day's input files (the demo's), in `dir/input`.
fn generated_day(dir: &Path, txns: usize) -> std::path::PathBuf {
    ok(command(
        dir,
        None,
        &["demo", "--txns", &txns.to_string(), "--format", "json"],
    )
    .output()
    .unwrap());
    dir.join("input")
}

fn load_reference(dir: &Path, kafka: Option<&str>, input: &Path) {
    let p = |n: &str| input.join(n).display().to_string();
    ok(command(
        dir,
        kafka,
        &[
            "fees",
            "load",
            &p("fees.toml"),
            "--holidays",
            &p("holidays.txt"),
        ],
    )
    .output()
    .unwrap());
    ok(command(
        dir,
        kafka,
        &[
            "registry",
            "load",
            "--merchants",
            &p("merchants.jsonl"),
            "--intermediaries",
            &p("intermediaries.jsonl"),
        ],
    )
    .output()
    .unwrap());
}

fn reports(dir: &Path, kafka: Option<&str>) -> Vec<Value> {
    ["settlement", "risk"]
        .iter()
        .flat_map(|r| {
            ["2026-11-20", "2026-11-21"]
                .map(|d| json(dir, kafka, &["report", r, "--date", d, "--format", "json"]))
        })
        .collect()
}

fn kill(child: &mut Child) {
    // SIGKILL: no chance to clean up, as in a crash or an OOM kill.
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_follower_killed_twenty_times_ends_with_the_digest_of_a_clean_projection() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha8Rng::seed_from_u64(seed("follower_kill"));
    let prefix = format!("kill-follow-{}-{}", std::process::id(), rng.gen::<u32>());
    let gen = tempfile::tempdir().unwrap();
    let input = generated_day(gen.path(), 8_000);
    let writer = tempfile::tempdir().unwrap();
    load_reference(writer.path(), Some(&prefix), &input);
    let mut ingest = command(
        writer.path(),
        Some(&prefix),
        &[
            "ingest",
            &input.join("transactions.jsonl").display().to_string(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let follower = tempfile::tempdir().unwrap();
    let mut kills = 0;
    let mut ingest_done = false;
    while kills < 20 || !ingest_done {
        let mut f = command(
            follower.path(),
            Some(&prefix),
            &["project", "--follow", "--poll-interval-ms", "20"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..700)));
        kill(&mut f);
        kills += 1;
        if !ingest_done {
            if let Some(status) = ingest.try_wait().unwrap() {
                assert!(status.success(), "ingest failed");
                ingest_done = true;
            }
        }
        assert!(kills < 200, "ingest did not finish");
    }
    ingest.wait().unwrap();
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
        "after {kills} kills"
    );
    assert_eq!(
        reports(follower.path(), Some(&prefix)),
        reports(clean.path(), Some(&prefix))
    );
}

#[test]
fn an_ingest_killed_mid_file_and_rerun_gives_the_reports_of_a_clean_run() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha8Rng::seed_from_u64(seed("ingest_kill"));
    let prefix = format!("kill-ingest-{}-{}", std::process::id(), rng.gen::<u32>());
    let gen = tempfile::tempdir().unwrap();
    let input = generated_day(gen.path(), 8_000);
    let file = input.join("transactions.jsonl").display().to_string();
    // the clean run, on the embedded log
    let clean = tempfile::tempdir().unwrap();
    load_reference(clean.path(), None, &input);
    let clean_summary = json(clean.path(), None, &["ingest", &file, "--format", "json"]);
    // on Kafka: killed at random moments, then run to completion
    let writer = tempfile::tempdir().unwrap();
    load_reference(writer.path(), Some(&prefix), &input);
    for _ in 0..3 {
        let mut ingest = command(writer.path(), Some(&prefix), &["ingest", &file])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..3000)));
        kill(&mut ingest);
    }
    let last = json(
        writer.path(),
        Some(&prefix),
        &["ingest", &file, "--format", "json"],
    );
    // everything the clean run accepted is now accepted or a duplicate of
    // what a killed run published, and nothing more
    let accepted = |v: &Value| v["accepted"].as_u64().unwrap();
    let duplicates = |v: &Value| v["duplicates"].as_u64().unwrap();
    assert_eq!(
        accepted(&last) + duplicates(&last),
        accepted(&clean_summary) + duplicates(&clean_summary)
    );
    assert_eq!(last["rejected"], clean_summary["rejected"]);
    assert_eq!(
        reports(writer.path(), Some(&prefix)),
        reports(clean.path(), None)
    );
}

/// A broker of this test's own (`deploy/dev-broker.sh` with its own state
/// dir), so that crashing it disturbs no other test. Stopped on drop.
struct OwnBroker {
    dir: tempfile::TempDir,
    address: String,
}

impl OwnBroker {
    fn script(dir: &Path, action: &str) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/dev-broker.sh");
        let out = Command::new(script)
            .arg(action)
            .env("CLEARING_BROKER_DIR", dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dev-broker.sh {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().last().unwrap_or_default().to_string()
    }

    fn start() -> OwnBroker {
        let dir = tempfile::tempdir().unwrap();
        let address = OwnBroker::script(dir.path(), "start");
        OwnBroker { dir, address }
    }

    /// SIGKILL, as a crash of the broker's machine would.
    fn crash(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("node-1/pid")).unwrap();
        let killed = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap();
        assert!(killed.success());
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Back on the same port with the same storage.
    fn resume(&self) {
        assert_eq!(OwnBroker::script(self.dir.path(), "resume"), self.address);
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        OwnBroker::script(self.dir.path(), "stop");
    }
}

#[test]
fn an_ingest_whose_broker_dies_stops_saying_how_far_it_got_and_a_rerun_completes_it() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha8Rng::seed_from_u64(seed("broker_dies"));
    let prefix = format!("broker-dies-{}-{}", std::process::id(), rng.gen::<u32>());
    let gen = tempfile::tempdir().unwrap();
    let input = generated_day(gen.path(), 8_000);
    let file = input.join("transactions.jsonl").display().to_string();
    let clean = tempfile::tempdir().unwrap();
    load_reference(clean.path(), None, &input);
    let clean_summary = json(clean.path(), None, &["ingest", &file, "--format", "json"]);

    let own = OwnBroker::start();
    let kafka = || Some((own.address.clone(), prefix.as_str()));
    let writer = tempfile::tempdir().unwrap();
    let p = |n: &str| input.join(n).display().to_string();
    ok(command_on(
        writer.path(),
        kafka(),
        &[
            "fees",
            "load",
            &p("fees.toml"),
            "--holidays",
            &p("holidays.txt"),
        ],
    )
    .output()
    .unwrap());
    ok(command_on(
        writer.path(),
        kafka(),
        &[
            "registry",
            "load",
            "--merchants",
            &p("merchants.jsonl"),
            "--intermediaries",
            &p("intermediaries.jsonl"),
        ],
    )
    .output()
    .unwrap());

    let started = std::time::Instant::now();
    let ingest = command_on(writer.path(), kafka(), &["ingest", &file])
        .env("CLEARING_KAFKA_TIMEOUT_SECS", "15")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(rng.gen_range(800..2500)));
    own.crash();
    let out = ingest.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "ingest after the broker died ({:?}): {stderr}",
        started.elapsed()
    );
    assert!(
        !out.status.success(),
        "the ingest finished before the broker died; {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the retries are bounded"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&own.address), "{stderr}");
    assert!(stderr.contains("lines up to "), "{stderr}");
    assert!(stderr.contains("run the same file again"), "{stderr}");

    own.resume();
    let rerun = serde_json::from_str::<Value>(&ok(command_on(
        writer.path(),
        kafka(),
        &["ingest", &file, "--format", "json"],
    )
    .output()
    .unwrap()))
    .unwrap();
    eprintln!("rerun: {rerun}");
    let accepted = |v: &Value| v["accepted"].as_u64().unwrap();
    let duplicates = |v: &Value| v["duplicates"].as_u64().unwrap();
    assert_eq!(
        accepted(&rerun) + duplicates(&rerun),
        accepted(&clean_summary) + duplicates(&clean_summary)
    );
    assert_eq!(rerun["rejected"], clean_summary["rejected"]);
    let on_kafka = ["settlement", "risk"]
        .iter()
        .flat_map(|r| {
            ["2026-11-20", "2026-11-21"].map(|d| {
                let out = command_on(
                    writer.path(),
                    kafka(),
                    &["report", r, "--date", d, "--format", "json"],
                )
                .output()
                .unwrap();
                serde_json::from_str::<Value>(&ok(out)).unwrap()
            })
        })
        .collect::<Vec<_>>();
    assert_eq!(on_kafka, reports(clean.path(), None));
}
