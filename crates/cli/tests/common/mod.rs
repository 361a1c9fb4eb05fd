//! Helpers of the CLI tests: the `clearing` binary run on a data dir, its
//! output checked, and the hand-computed fixture day loaded.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod service;

pub const BIN: &str = env!("CARGO_BIN_EXE_clearing");

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/day1")
        .join(name)
}

pub fn clearing(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("CLEARING_KAFKA")
        .env_remove("CLEARING_DATA_DIR")
        .env_remove("CLEARING_TOPIC_PREFIX")
        .output()
        .unwrap()
}

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a `--format json` command: exit 0, stdout is one JSON document,
/// stderr is empty.
pub fn json(dir: &Path, args: &[&str]) -> Value {
    let out = clearing(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = ok(out);
    assert!(
        stderr.is_empty(),
        "json output must go to stdout alone; stderr: {stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A failure: non-zero exit and exactly one line on stderr.
pub fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line reason expected, got: {stderr}"
    );
    stderr
}

pub fn expected(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// Records the fee schedule, calendar and registry found in `input`
/// (`fees.toml`, `holidays.txt`, `merchants.jsonl`, `intermediaries.jsonl`).
pub fn load_reference(dir: &Path, input: &Path) {
    let p = |n: &str| input.join(n).display().to_string();
    ok(clearing(
        dir,
        &[
            "fees",
            "load",
            &p("fees.toml"),
            "--holidays",
            &p("holidays.txt"),
        ],
    ));
    ok(clearing(
        dir,
        &[
            "registry",
            "load",
            "--merchants",
            &p("merchants.jsonl"),
            "--intermediaries",
            &p("intermediaries.jsonl"),
        ],
    ));
}

pub fn loaded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    load_reference(dir.path(), &fixture(""));
    dir
}

pub fn ingested() -> tempfile::TempDir {
    let dir = loaded();
    let summary = json(
        dir.path(),
        &[
            "ingest",
            &fixture("transactions.jsonl").display().to_string(),
            "--format",
            "json",
        ],
    );
    assert_eq!(summary, expected("expected_ingest.json"));
    dir
}

/// The fixture's merchants file with the first merchant (822584053110001)
/// moved from the standard to the exempt fee plan, written into `dir`.
pub fn merchants_moved_to_exempt(dir: &Path) -> std::path::PathBuf {
    let merchants = std::fs::read_to_string(fixture("merchants.jsonl"))
        .unwrap()
        .replacen("\"fee_plan\": \"standard\"", "\"fee_plan\": \"exempt\"", 1);
    let m = dir.join("merchants.jsonl");
    std::fs::write(&m, merchants).unwrap();
    m
}
