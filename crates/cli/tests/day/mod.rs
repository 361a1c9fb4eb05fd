//! The generated day the heavy Kafka tests ingest, its clean run on the
//! embedded log, and the `clearing` commands they run on either log.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use clearing_testkit::test_broker as broker;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_clearing");

pub fn command(dir: &Path, kafka: Option<&str>, args: &[&str]) -> Command {
    command_on(dir, kafka.map(|prefix| (broker(), prefix)), args)
}

/// A command on the embedded log, or on Kafka at `(brokers, prefix)`.
pub fn command_on(dir: &Path, kafka: Option<(String, &str)>, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("CLEARING_KAFKA")
        .env_remove("CLEARING_TOPIC_PREFIX")
        .env_remove("CLEARING_KAFKA_TIMEOUT_SECS")
        .env_remove("CLEARING_KAFKA_TRANSACTIONS");
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

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn json_on(dir: &Path, kafka: Option<(String, &str)>, args: &[&str]) -> Value {
    serde_json::from_str(&ok(command_on(dir, kafka, args).output().unwrap())).unwrap()
}

pub fn json(dir: &Path, kafka: Option<&str>, args: &[&str]) -> Value {
    json_on(dir, kafka.map(|p| (broker(), p)), args)
}

/// A generated day and its clean run on the embedded log.
pub struct Day {
    _dir: tempfile::TempDir,
    pub input: PathBuf,
    pub file: String,
    pub clean_summary: Value,
    pub clean_reports: Vec<Value>,
}

impl Day {
    /// The demo writes the day's files (`txns` transactions; its faults and
    /// reversals add lines), and they are ingested into a fresh embedded
    /// ledger: the run a test compares with.
    pub fn generate(txns: usize) -> Day {
        let dir = tempfile::tempdir().unwrap();
        let gen = dir.path().join("gen");
        ok(command_on(
            &gen,
            None,
            &["demo", "--txns", &txns.to_string(), "--format", "json"],
        )
        .output()
        .unwrap());
        let input = gen.join("input");
        let file = input.join("transactions.jsonl").display().to_string();
        let clean = dir.path().join("clean");
        load_reference_on(&clean, None, &input);
        let clean_summary = json_on(&clean, None, &["ingest", &file, "--format", "json"]);
        let clean_reports = reports_on(&clean, None);
        Day {
            _dir: dir,
            input,
            file,
            clean_summary,
            clean_reports,
        }
    }

    /// The lines of the day's transactions file.
    pub fn lines(&self) -> usize {
        std::fs::read_to_string(&self.file).unwrap().lines().count()
    }
}

pub fn load_reference_on(dir: &Path, kafka: Option<(String, &str)>, input: &Path) {
    let p = |n: &str| input.join(n).display().to_string();
    ok(command_on(
        dir,
        kafka.clone(),
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

pub fn reports_on(dir: &Path, kafka: Option<(String, &str)>) -> Vec<Value> {
    ["settlement", "risk"]
        .iter()
        .flat_map(|r| {
            ["2026-11-20", "2026-11-21"].map(|d| {
                json_on(
                    dir,
                    kafka.clone(),
                    &["report", r, "--date", d, "--format", "json"],
                )
            })
        })
        .collect()
}

/// Everything the clean run accepted is now accepted or a duplicate of
/// what an earlier, killed run published — and nothing more.
pub fn assert_completes_the_clean_run(last: &Value, day: &Day) {
    let accepted = |v: &Value| v["accepted"].as_u64().unwrap();
    let duplicates = |v: &Value| v["duplicates"].as_u64().unwrap();
    assert_eq!(
        accepted(last) + duplicates(last),
        accepted(&day.clean_summary) + duplicates(&day.clean_summary),
        "{last}"
    );
    assert_eq!(last["rejected"], day.clean_summary["rejected"]);
}

pub fn kill(child: &mut Child) {
    // SIGKILL: no chance to clean up, as in a crash or an OOM kill.
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Feeds the day's file to `ingest -` in chunks of `chunk` lines, each
/// after `gate(i)` says so; stops quietly when the ingest is gone.
pub fn feed(
    mut stdin: std::process::ChildStdin,
    file: &str,
    chunk: usize,
    gate: impl Fn(usize) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let text = std::fs::read_to_string(file).unwrap();
    std::thread::spawn(move || {
        let lines: Vec<&str> = text.lines().collect();
        for (i, part) in lines.chunks(chunk).enumerate() {
            gate(i);
            let mut bytes = part.join("\n");
            bytes.push('\n');
            if stdin.write_all(bytes.as_bytes()).is_err() {
                return;
            }
        }
    })
}
