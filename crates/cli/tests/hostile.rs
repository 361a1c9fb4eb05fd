//! Full card numbers in every form a terminal or a broken file can send
//! them (issue 15): as a string, with spaces or dashes, as a JSON number,
//! inside an array or an object, in lines that do not parse, in an
//! overlong or non-UTF-8 line, in a conflicting resend, in the channel's
//! clearing file. Every command runs on them (table and JSON, with
//! `CLEARING_LOG=trace`), and neither any output nor any byte of the data
//! dir (decompressed) nor any export holds one of the numbers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Each card number of the corpus, and how it was written.
const PANS: &[(&str, &str)] = &[
    ("6222020200112234401", "6222020200112234401"),
    ("6222020200112234402", "6222 0202 0011 2234 402"),
    ("6222020200112234403", "6222-0202-0011-2234-403"),
    ("6222020200112234404", "6222020200112234404"),
    ("6222020200112234405", "6222020200112234405"),
    ("6222020200112234406", "6222020200112234406"),
    ("6222020200112234407", "6222020200112234407"),
    ("6222020200112234408", "6222 0202 0011 2234 408"),
    ("6222020200112234409", "6222020200112234409"),
    ("6222020200112234410", "6222020200112234410"),
    ("6222020200112234411", "6222020200112234411"),
    ("589612349876", "589612349876"),
];

fn sale(id: &str, rrn: &str, card_json: &str) -> String {
    format!(
        r#"{{"txn_id":"{id}","type":"sale","merchant_id":"822584053110001","terminal_id":"10000001","mcc":"5812","channel":"credit_card","amount":"12.00","currency":"CNY","result":"approved","rrn":"{rrn}","card":{card_json},"occurred_at":"2026-11-20T12:00:00+08:00"}}"#
    )
}

/// The corpus, one input line per way of sending a card number.
fn corpus() -> Vec<u8> {
    let p = |i: usize| PANS[i].1;
    let mut lines: Vec<Vec<u8>> = vec![
        sale("H1", "900000000001", &format!("\"{}\"", p(0))).into_bytes(),
        sale("H2", "900000000002", &format!("\"{}\"", p(1))).into_bytes(),
        sale("H3", "900000000003", &format!("\"{}\"", p(2))).into_bytes(),
        sale("H4", "900000000004", p(3)).into_bytes(),
        sale("H5", "900000000005", &format!("[\"{}\"]", p(4))).into_bytes(),
        sale("H6", "900000000006", &format!("{{\"pan\":{}}}", p(5))).into_bytes(),
        format!(r#"{{"txn_id":"H7","card":"{}","amount":"#, p(6)).into_bytes(),
        format!("txn H8 card {} amount 12.00", p(7)).into_bytes(),
        // a resend of H1 with other content, carrying a full number
        sale("H1", "900000000009", &format!("\"{}\"", p(8))).into_bytes(),
        // not UTF-8, and overlong
        {
            let mut v = format!("{{\"card\":\"{}\" ", p(9)).into_bytes();
            v.extend_from_slice(&[0xff, 0xfe, b'}']);
            v
        },
        format!(
            "{{\"card\":\"{}\",\"pad\":\"{}\"}}",
            p(10),
            "x".repeat(70_000)
        )
        .into_bytes(),
        sale("H12", "900000000012", &format!("\"{}\"", p(11))).into_bytes(),
    ];
    lines.push(sale("H13", "900000000013", "null").into_bytes());
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&l);
        out.push(b'\n');
    }
    out
}

/// Every way a number of the corpus could show.
fn forbidden() -> Vec<String> {
    let mut out = Vec::new();
    for (digits, written) in PANS {
        out.push(digits.to_string());
        out.push(written.to_string());
    }
    out
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for pan in forbidden() {
        assert!(!text.contains(&pan), "{what} holds {pan}");
    }
}

/// Runs a command with trace logs; its stdout and stderr must hold no
/// number of the corpus. Returns its stdout.
fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("CLEARING_LOG", "trace")
        .env_remove("CLEARING_KAFKA")
        .output()
        .unwrap();
    assert_clean(&format!("stdout of {args:?}"), &out.stdout);
    assert_clean(&format!("stderr of {args:?}"), &out.stderr);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, as bytes and, where it decompresses (an LZ4
/// block anywhere in a value), decompressed.
fn scan_dir(dir: &Path) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert_clean(&entry.display().to_string(), &bytes);
    }
    // The embedded log's records and the write model's commits, decompressed.
    let log = clearing_log::embedded::EmbeddedLog::open(
        dir,
        clearing_log::TopicNames::with_prefix("clearing"),
    )
    .unwrap();
    for topic in [clearing_log::Topic::Events, clearing_log::Topic::Rejected] {
        use clearing_log::EventLog;
        for d in log.read(topic, 0, 0, usize::MAX).unwrap() {
            assert_clean(&format!("{topic:?} at {}", d.position), &d.payload);
        }
    }
    drop(log);
    let (wm, frames) =
        clearing_log::frames::FrameFile::open(&dir.join("writer/state.frames"), 0).unwrap();
    for f in frames {
        let payload = wm.checked(f.0).unwrap();
        let plain = lz4_flex::decompress_size_prepended(&payload).unwrap_or(payload);
        assert_clean("a write model commit", &plain);
    }
    // Every value of every tree of the projections, decompressed when it is.
    let db = sled::open(dir.join("projections")).unwrap();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).unwrap();
        for kv in tree.iter() {
            let (k, v) = kv.unwrap();
            assert_clean("a projection key", &k);
            assert_clean("a projection value", &v);
            if let Ok(plain) = lz4_flex::decompress_size_prepended(&v) {
                assert_clean("a projection value, decompressed", &plain);
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_full_card_number_is_stored_logged_or_printed_in_any_form() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    load_reference(d, &fixture(""));
    let input = d.join("hostile.jsonl");
    std::fs::write(&input, corpus()).unwrap();
    let file = input.display().to_string();
    let table = run(d, &["ingest", &file]);
    assert!(table.contains("invalid_field"), "{table}");
    let summary: serde_json::Value =
        serde_json::from_str(&run(d, &["ingest", &file, "--format", "json"])).unwrap();
    // H1, H2, H3, H12, H13 accepted the first time; a rerun: duplicates
    assert_eq!(summary["duplicates"], 5, "{summary}");
    run(d, &["project"]);
    for date in ["2026-11-20", "2026-11-21"] {
        for report in ["settlement", "risk"] {
            for format in ["json", "table", "csv"] {
                run(d, &["report", report, "--date", date, "--format", format]);
            }
        }
    }
    for (id, masked) in [
        ("H1", "622202*********4401"),
        ("H2", "622202*********4402"),
        ("H3", "622202*********4403"),
        ("H12", "589612**9876"),
        ("900000000002", "622202*********4402"),
    ] {
        run(d, &["txn", "show", id]);
        let shown = run(d, &["txn", "show", id, "--format", "json"]);
        assert!(
            shown.contains(masked),
            "{id}'s card is kept masked: {shown}"
        );
    }
    run(
        d,
        &[
            "merchant",
            "statement",
            "822584053110001",
            "--date",
            "2026-11-20",
            "--format",
            "json",
        ],
    );
    let bundle = d.join("bundle.json");
    run(
        d,
        &[
            "export",
            "dispute",
            "H2",
            "--out",
            &bundle.display().to_string(),
        ],
    );
    assert_clean("the dispute bundle", &std::fs::read(&bundle).unwrap());
    let journal = d.join("day.journal");
    run(
        d,
        &[
            "export",
            "hledger",
            "--date",
            "2026-11-20",
            "--out",
            &journal.display().to_string(),
        ],
    );
    assert_clean("the journal", &std::fs::read(&journal).unwrap());
    // the channel's file carries a full number too
    let channel = d.join("channel.csv");
    std::fs::write(
        &channel,
        format!(
            "business_date,occurred_at,merchant_id,terminal_id,rrn,stan,card,txn_type,amount,fee\n\
             2026-11-20,2026-11-20T12:00:00+08:00,822584053110001,10000001,900000000001,1,{},sale,12.00,0.07\n",
            PANS[0].0
        ),
    )
    .unwrap();
    for format in ["table", "json", "csv"] {
        run(
            d,
            &[
                "recon",
                "--file",
                &channel.display().to_string(),
                "--date",
                "2026-11-20",
                "--format",
                format,
            ],
        );
    }
    run(d, &["digest", "--format", "json"]);
    run(d, &["verify"]);
    let replayed = tempfile::tempdir().unwrap();
    let into = replayed.path().join("r");
    run(
        d,
        &[
            "replay",
            "--until",
            "end",
            "--into",
            &into.display().to_string(),
        ],
    );
    run(&into, &["txn", "show", "H2", "--format", "json"]);
    // the input files themselves hold the numbers: leave them out
    std::fs::remove_file(&input).unwrap();
    std::fs::remove_file(&channel).unwrap();
    scan_dir(d);
    for entry in walk(&into) {
        assert_clean(
            &entry.display().to_string(),
            &std::fs::read(&entry).unwrap(),
        );
    }
}

#[test]
fn records_at_the_extremes_are_read_back_by_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    load_reference(d, &fixture(""));
    let long_id = format!("X{}", "9".repeat(63));
    let line = |id: &str, rrn: &str, amount: &str, at: &str| {
        format!(
            r#"{{"txn_id":"{id}","type":"sale","merchant_id":"822584053110001","terminal_id":"10000001","mcc":"5812","channel":"credit_card","amount":"{amount}","currency":"CNY","result":"approved","rrn":"{rrn}","stan":"{}","occurred_at":"{at}"}}"#,
            "0".repeat(64)
        )
    };
    let input = [
        line(
            &long_id,
            "r-1:/_.",
            "10000000.00",
            "2000-01-01T00:00:00+08:00",
        ),
        line("X2", "r2", "0.01", "2099-11-30T23:59:59.999+08:00"),
        line("X3", "r3", "5.00", "9999-12-31T23:59:59+08:00"),
        line("X3", "r3", "5.00", "2026-11-20T12:00:00+08:00"),
    ]
    .join("\n");
    let file = d.join("extremes.jsonl");
    std::fs::write(&file, input).unwrap();
    let s = json(
        d,
        &["ingest", &file.display().to_string(), "--format", "json"],
    );
    assert_eq!(s["accepted"], 3, "{s}");
    assert_eq!(s["rejected"]["invalid_timestamp"], 1, "{s}");
    // every stage reads them back
    // (the last moment accepted is after the cutoff: business date 2099-12-01)
    for (date, id) in [
        ("2000-01-01", long_id.as_str()),
        ("2099-12-01", "X2"),
        ("2026-11-20", "X3"),
    ] {
        let r = json(
            d,
            &["report", "settlement", "--date", date, "--format", "json"],
        );
        assert_eq!(r["merchants"].as_array().unwrap().len(), 1, "{date}: {r}");
        let story = json(d, &["txn", "show", id, "--format", "json"]);
        assert_eq!(story["transactions"][0]["txn_id"], id);
        let journal = d.join(format!("{date}.journal"));
        ok(clearing(
            d,
            &[
                "export",
                "hledger",
                "--date",
                date,
                "--out",
                &journal.display().to_string(),
            ],
        ));
        let out = Command::new("hledger")
            .args(["-f", &journal.display().to_string(), "balance", "--flat"])
            .output()
            .expect("hledger (deploy/test.sh installs it)");
        assert!(
            out.status.success(),
            "hledger reads the journal of {date}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let live = json(d, &["digest", "--format", "json"]);
    let into = tempfile::tempdir().unwrap();
    let replayed = json(
        d,
        &[
            "replay",
            "--until",
            "end",
            "--into",
            &into.path().join("r").display().to_string(),
            "--format",
            "json",
        ],
    );
    assert_eq!(replayed["digest"], live["digest"]);
    let v = json(d, &["verify", "--format", "json"]);
    assert_eq!(v["ok"], true);
}
