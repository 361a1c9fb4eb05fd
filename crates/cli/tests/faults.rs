//! Faults of the machine, as a process meets them (issue 15): a full disk
//! during ingest, a reconciliation killed while it records, stores that
//! are corrupt or were cut back, a tampered log.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clearing_core::{Event, EventBody};
use clearing_log::embedded::EmbeddedLog;
use clearing_log::{EventLog, Topic, TopicNames};
use common::*;
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A generated day (`demo` keeps its input files), in `dir/input`.
fn generated_day(dir: &Path, txns: usize) -> PathBuf {
    ok(clearing(dir, &["demo", "--txns", &txns.to_string()]));
    dir.join("input")
}

fn reports(dir: &Path) -> Vec<Value> {
    ["2026-11-20", "2026-11-21"]
        .iter()
        .flat_map(|d| {
            ["settlement", "risk"]
                .map(|r| json(dir, &["report", r, "--date", d, "--format", "json"]))
        })
        .collect()
}

/// Every event of a data dir's embedded log.
fn events(dir: &Path) -> Vec<Event> {
    let log = EmbeddedLog::open(dir, TopicNames::with_prefix("clearing")).unwrap();
    log.read(Topic::Events, 0, 0, usize::MAX)
        .unwrap()
        .iter()
        .map(|d| Event::decode(&d.payload).unwrap())
        .collect()
}

/// A small filesystem of its own, for as long as the value lives.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// `None` where this process may not mount (not root): then the test
    /// says so and checks nothing else.
    fn mount(bytes: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallFs { dir })
    }

    fn grow(&self, bytes: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_during_ingest_is_one_line_and_a_rerun_after_space_is_freed_gives_a_clean_run() {
    let gen = tempfile::tempdir().unwrap();
    let input = generated_day(gen.path(), 30_000);
    let file = s(&input.join("transactions.jsonl"));
    let clean = tempfile::tempdir().unwrap();
    load_reference(clean.path(), &input);
    let clean_summary = json(clean.path(), &["ingest", &file, "--format", "json"]);

    let Some(fs) = SmallFs::mount(3 << 20) else {
        eprintln!("not root: no small filesystem to fill; nothing more is checked here");
        return;
    };
    let dir = fs.dir.path().join("ledger");
    load_reference(&dir, &input);
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(&dir)
        .args(["ingest", &file])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // a hang (sled's flush on a full disk once looped for ever) fails here
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("ingest on a full disk hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "the day does not fit in 3 MiB: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&s(&dir)), "names the path: {stderr}");
    assert!(stderr.contains("run the same file again"), "{stderr}");

    // the lock is released: another command opens the ledger at once
    let out = clearing(&dir, &["ingest", "--format", "json", &file]);
    assert!(!out.status.success(), "still full");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("locked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    fs.grow(512 << 20);
    let rerun = json(&dir, &["ingest", &file, "--format", "json"]);
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(
        n(&rerun, "accepted") + n(&rerun, "duplicates"),
        n(&clean_summary, "accepted") + n(&clean_summary, "duplicates")
    );
    assert_eq!(rerun["rejected"], clean_summary["rejected"]);
    assert_eq!(reports(&dir), reports(clean.path()));
    // the log holds each accepted record once, each refund after its sale
    let mut seen = std::collections::HashSet::new();
    for e in events(&dir) {
        assert!(seen.insert(e.event_id.clone()), "{} twice", e.event_id);
        if let EventBody::TransactionRecorded(t) = &e.body {
            if let Some(o) = &t.original_txn_id {
                assert!(
                    seen.contains(&format!("txn:{o}")),
                    "{} before {o}",
                    t.txn_id
                );
            }
        }
    }
    assert_eq!(seen.len(), events(clean.path()).len());
}

#[test]
fn a_recon_killed_while_it_records_and_run_again_records_each_break_once() {
    let seed = clearing_testkit::test_seed("recon_kill");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let gen = tempfile::tempdir().unwrap();
    let input = generated_day(gen.path(), 40_000);
    // every line's fee wrong: a break per line, several commits' worth
    let channel = std::fs::read_to_string(input.join("channel-2026-11-20.csv")).unwrap();
    let mut lines = channel.lines();
    let mut wrong = format!("{}\n", lines.next().unwrap());
    for l in lines {
        let (head, _) = l.rsplit_once(',').unwrap();
        wrong.push_str(&format!("{head},0.01\n"));
    }
    let file = gen.path().join("wrong-fees.csv");
    std::fs::write(&file, wrong).unwrap();
    let args: Vec<String> = {
        vec![
            "recon".into(),
            "--file".into(),
            s(&file),
            "--date".into(),
            "2026-11-20".into(),
            "--format".into(),
            "json".into(),
        ]
    };
    let ready = |dir: &Path| {
        load_reference(dir, &input);
        ok(clearing(
            dir,
            &["ingest", &s(&input.join("transactions.jsonl"))],
        ));
        ok(clearing(dir, &["project"]));
    };
    let clean = tempfile::tempdir().unwrap();
    ready(clean.path());
    let expected = json(
        clean.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let breaks = expected["breaks"].as_array().unwrap().len();
    assert!(breaks > 20_000, "{breaks} breaks: more than one commit");

    let dir = tempfile::tempdir().unwrap();
    ready(dir.path());
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(rng.gen_range(200..2500)));
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    eprintln!("recon killed after {:?}", started.elapsed());
    let again = json(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(again, expected);
    let recorded: Vec<String> = events(dir.path())
        .into_iter()
        .filter(|e| matches!(e.body, EventBody::ReconciliationBreak(_)))
        .map(|e| e.event_id)
        .collect();
    let unique: std::collections::HashSet<&String> = recorded.iter().collect();
    assert_eq!(unique.len(), recorded.len(), "a break recorded twice");
    assert_eq!(recorded.len(), breaks);
}

#[test]
fn corruption_and_a_cut_back_log_are_noticed_and_named() {
    let dir = ingested();
    let before = reports(dir.path());
    // a bit flipped in an acknowledged chunk of the log: verify and a
    // rebuild name the file; nothing is reported from it silently
    let log = dir.path().join("log/clearing.events.frames");
    let pristine = std::fs::read(&log).unwrap();
    let mut flipped = pristine.clone();
    flipped[40] ^= 0x08;
    std::fs::write(&log, &flipped).unwrap();
    let e = fails(clearing(dir.path(), &["verify"]));
    assert!(
        e.contains("clearing.events.frames") && e.contains("corrupt"),
        "{e}"
    );
    let into = tempfile::tempdir().unwrap();
    let e = fails(clearing(
        dir.path(),
        &[
            "replay",
            "--until",
            "end",
            "--into",
            &s(&into.path().join("r")),
        ],
    ));
    assert!(e.contains("clearing.events.frames"), "{e}");
    std::fs::write(&log, &pristine).unwrap();
    assert_eq!(reports(dir.path()), before);

    // the write model's file flipped: one line naming it
    let wm = dir.path().join("writer/state.frames");
    let wm_pristine = std::fs::read(&wm).unwrap();
    let mut bad = wm_pristine.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x20;
    std::fs::write(&wm, &bad).unwrap();
    let e = fails(clearing(
        dir.path(),
        &[
            "ingest",
            &fixture("transactions.jsonl").display().to_string(),
        ],
    ));
    assert!(e.contains("writer") && e.contains("corrupt"), "{e}");
    std::fs::write(&wm, &wm_pristine).unwrap();

    // the log cut back in the middle: what was applied is not there
    let half = pristine.len() / 2;
    std::fs::write(&log, &pristine[..half]).unwrap();
    let e = fails(clearing(
        dir.path(),
        &["report", "settlement", "--date", "2026-11-20"],
    ));
    assert!(e.contains("log ends before it"), "{e}");
}

#[test]
fn verify_exits_zero_on_a_sound_ledger_and_one_naming_the_break() {
    let dir = ingested();
    let out = json(dir.path(), &["verify", "--format", "json"]);
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["chains"][0]["break"], Value::Null);
    // an event edited in place, its chain hash left as it was
    let records = {
        let log = EmbeddedLog::open(dir.path(), TopicNames::with_prefix("clearing")).unwrap();
        log.read(Topic::Events, 0, 0, usize::MAX).unwrap()
    };
    let tampered = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(tampered.path(), TopicNames::with_prefix("clearing")).unwrap();
        let mut rs: Vec<clearing_log::Record> = records
            .into_iter()
            .map(|d| clearing_log::Record {
                key: d.key,
                payload: d.payload,
                headers: Vec::new(),
                partition: None,
            })
            .collect();
        let text = String::from_utf8(rs[9].payload.clone()).unwrap();
        rs[9].payload = text
            .replacen("\"currency\":\"CNY\"", "\"currency\":\"CNH\"", 1)
            .into_bytes();
        assert_ne!(rs[9].payload, text.as_bytes());
        log.append(Topic::Events, &rs).unwrap();
    }
    let e = fails(clearing(tampered.path(), &["verify"]));
    assert!(e.contains("breaks at 0:9"), "{e}");
}
