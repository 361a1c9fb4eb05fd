//! The `clearing` binary on small files in `tests/fixtures`, compared with
//! hand-computed expectations (see tests/fixtures/day1/README.md).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

#[test]
fn settlement_report_matches_the_hand_computed_day() {
    let dir = ingested();
    assert_eq!(
        json(
            dir.path(),
            &[
                "report",
                "settlement",
                "--date",
                "2026-11-20",
                "--format",
                "json"
            ]
        ),
        expected("expected_settlement_2026-11-20.json")
    );
    assert_eq!(
        json(
            dir.path(),
            &[
                "report",
                "settlement",
                "--date",
                "2026-11-21",
                "--format",
                "json"
            ]
        ),
        expected("expected_settlement_2026-11-21.json")
    );
}

#[test]
fn risk_report_matches_the_hand_computed_day() {
    let dir = ingested();
    assert_eq!(
        json(
            dir.path(),
            &["report", "risk", "--date", "2026-11-20", "--format", "json"]
        ),
        expected("expected_risk_2026-11-20.json")
    );
}

#[test]
fn a_date_with_nothing_on_it_is_an_empty_report() {
    let dir = ingested();
    let v = json(
        dir.path(),
        &[
            "report",
            "settlement",
            "--date",
            "2026-12-01",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        v,
        serde_json::json!({"business_date":"2026-12-01","merchants":[],"totals":{"sales_amount":"0.00","refund_amount":"0.00","fee":"0.00","net":"0.00"}})
    );
    let r = json(
        dir.path(),
        &["report", "risk", "--date", "2026-12-01", "--format", "json"],
    );
    assert_eq!(
        r,
        serde_json::json!({"business_date":"2026-12-01","flagged":[],"exposure":[]})
    );
}

#[test]
fn table_and_csv_formats_carry_the_same_figures() {
    let dir = ingested();
    let table = ok(clearing(
        dir.path(),
        &["report", "settlement", "--date", "2026-11-20"],
    ));
    let total = table.lines().find(|l| l.starts_with("TOTAL")).unwrap();
    for figure in ["35560.00", "2500.00", "105.79", "32954.21"] {
        assert!(total.contains(figure), "{total}");
    }
    let csv = ok(clearing(
        dir.path(),
        &[
            "report",
            "settlement",
            "--date",
            "2026-11-20",
            "--format",
            "csv",
        ],
    ));
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("business_date,merchant_id,clearing"));
    assert_eq!(rows.len(), 5);
    assert!(
        rows[1].ends_with(",30020.00,1,2500.00,103.12,27416.88"),
        "{}",
        rows[1]
    );
    let risk_csv = ok(clearing(
        dir.path(),
        &["report", "risk", "--date", "2026-11-20", "--format", "csv"],
    ));
    assert_eq!(risk_csv.lines().count(), 1 + 3 + 2);
}

#[test]
fn ingest_from_stdin_and_a_rerun_is_all_duplicates() {
    let dir = loaded();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["ingest", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        &std::fs::read(fixture("transactions.jsonl")).unwrap(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        expected("expected_ingest.json")
    );
    let again = json(
        dir.path(),
        &[
            "ingest",
            &fixture("transactions.jsonl").display().to_string(),
            "--format",
            "json",
        ],
    );
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["duplicates"], 18);
    // the report has not moved
    assert_eq!(
        json(
            dir.path(),
            &[
                "report",
                "settlement",
                "--date",
                "2026-11-20",
                "--format",
                "json"
            ]
        ),
        expected("expected_settlement_2026-11-20.json")
    );
}

#[test]
fn projections_rebuilt_from_the_log_alone_have_the_live_digest() {
    let dir = ingested();
    let live = json(dir.path(), &["digest", "--format", "json"]);
    let project = json(dir.path(), &["project", "--format", "json"]);
    assert_eq!(
        project["events_applied"], 0,
        "read commands already caught up"
    );
    // a fresh data dir holding only a copy of the log
    let copy = tempfile::tempdir().unwrap();
    clearing_testkit::copy_dir(&dir.path().join("log"), &copy.path().join("log")).unwrap();
    let rebuilt = json(copy.path(), &["project", "--format", "json"]);
    assert_eq!(rebuilt["positions"], live["positions"]);
    assert_eq!(json(copy.path(), &["digest", "--format", "json"]), live);
    assert_eq!(
        json(
            copy.path(),
            &[
                "report",
                "settlement",
                "--date",
                "2026-11-20",
                "--format",
                "json"
            ]
        ),
        expected("expected_settlement_2026-11-20.json")
    );
}

#[test]
fn the_data_dir_comes_from_the_environment_when_not_given() {
    let dir = ingested();
    let out = Command::new(BIN)
        .args([
            "report",
            "settlement",
            "--date",
            "2026-11-20",
            "--format",
            "json",
        ])
        .env("CLEARING_DATA_DIR", dir.path())
        .env_remove("CLEARING_KAFKA")
        .output()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&ok(out)).unwrap(),
        expected("expected_settlement_2026-11-20.json")
    );
}

#[test]
fn the_table_summary_names_every_rejected_line_with_reason_and_field() {
    let dir = loaded();
    let out = ok(clearing(
        dir.path(),
        &[
            "ingest",
            &fixture("transactions.jsonl").display().to_string(),
        ],
    ));
    assert!(
        out.starts_with("accepted 16, duplicates 2, rejected 11"),
        "{out}"
    );
    for expected in [
        "line 18: conflicting_duplicate (txn_id)",
        "line 19: invalid_json:",
        "line 20: missing_field (rrn)",
        "line 21: invalid_amount (amount)",
        "line 22: unsupported_currency (currency)",
        "line 23: invalid_timestamp (occurred_at)",
        "line 24: unknown_merchant (merchant_id)",
        "line 25: unknown_original (original_txn_id)",
        "line 26: original_not_cancellable (original_txn_id)",
        "line 27: refund_exceeds_original (amount)",
        "line 28: invalid_field (type)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    assert!(
        !out.contains("6228480012345678"),
        "a full PAN reached the screen"
    );
}

#[test]
fn project_follow_applies_new_events_and_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let dir = loaded();
    let mut follower = clearing_testkit::Reaped::new(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["project", "--follow", "--poll-interval-ms", "50"])
            .env_remove("CLEARING_KAFKA")
            .env("CLEARING_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // the follower reports each poll that applied events; collect its lines
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = follower.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let _ = tx.send(line);
        }
    });
    // the first poll applies the fee schedule and registry events
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let wait_for_projected = |what: &str| loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("follower never projected {what}"));
        if line.contains("projected") {
            return line;
        }
    };
    wait_for_projected("the reference data");
    // ingest while the follower polls: the stores are shared between polls
    let summary = json(
        dir.path(),
        &[
            "ingest",
            &fixture("transactions.jsonl").display().to_string(),
            "--format",
            "json",
        ],
    );
    assert_eq!(summary["accepted"], 16);
    let line = wait_for_projected("the transactions");
    assert!(line.contains("events=16"), "{line}");
    let status = Command::new("kill")
        .args(["-TERM", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = follower.wait().unwrap();
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(exit.success(), "follower exit {exit:?}: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("stopped following after")),
        "{rest:?}"
    );
    // nothing was left for a read command to apply
    let p = json(dir.path(), &["project", "--format", "json"]);
    assert_eq!(p["events_applied"], 0);
}

#[test]
fn a_missing_file_is_a_one_line_error_naming_it() {
    let dir = loaded();
    let e = fails(clearing(
        dir.path(),
        &["ingest", "/nonexistent/transactions.jsonl"],
    ));
    assert!(e.contains("/nonexistent/transactions.jsonl"), "{e}");
    let e = fails(clearing(
        dir.path(),
        &["fees", "load", "/nonexistent/fees.toml"],
    ));
    assert!(e.contains("/nonexistent/fees.toml"), "{e}");
}

#[test]
fn unknown_commands_options_and_bad_dates_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = fails(clearing(dir.path(), &["frobnicate"]));
    assert!(e.contains("frobnicate"), "{e}");
    let e = fails(clearing(
        dir.path(),
        &["report", "settlement", "--date", "2026-11-20", "--colour"],
    ));
    assert!(e.contains("--colour"), "{e}");
    let e = fails(clearing(
        dir.path(),
        &["report", "settlement", "--date", "20/11/2026"],
    ));
    assert!(e.contains("20/11/2026"), "{e}");
    let e = fails(clearing(
        dir.path(),
        &[
            "report",
            "settlement",
            "--date",
            "2026-11-20",
            "--format",
            "xml",
        ],
    ));
    assert!(e.contains("xml"), "{e}");
}

#[test]
fn a_missing_required_option_is_named_on_the_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, missing) in [
        (&["report", "settlement"][..], "--date"),
        (&["recon", "--date", "2026-11-20"][..], "--file"),
        (&["recon"][..], "--file"),
        (&["replay", "--until", "end"][..], "--into"),
        (&["merchant", "statement", "822584053110001"][..], "--date"),
    ] {
        let out = clearing(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let e = fails(out);
        assert!(e.contains(missing), "{args:?}: {e}");
    }
}

#[test]
fn a_fee_file_with_a_bad_rate_names_the_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("fees.toml");
    let text = std::fs::read_to_string(fixture("fees.toml"))
        .unwrap()
        .replace("rate = \"0.006\" }", "rate = \"0,6%\" }");
    std::fs::write(&bad, text).unwrap();
    let e = fails(clearing(
        dir.path(),
        &["fees", "load", &bad.display().to_string()],
    ));
    assert!(
        e.contains("line 5") && e.contains("plans.standard.credit_card.rate"),
        "{e}"
    );
    // nothing was recorded: ingest still has no schedule
    let e = fails(clearing(
        dir.path(),
        &[
            "ingest",
            &fixture("transactions.jsonl").display().to_string(),
        ],
    ));
    assert!(e.contains("fees load"), "{e}");
}

#[test]
fn a_merchants_file_binding_a_terminal_twice_names_the_line_and_field() {
    let dir = loaded();
    let merchants = dir.path().join("merchants.jsonl");
    let text = std::fs::read_to_string(fixture("merchants.jsonl"))
        .unwrap()
        .replace("[\"10000005\"]", "[\"10000005\",\"10000001\"]");
    std::fs::write(&merchants, text).unwrap();
    let e = fails(clearing(
        dir.path(),
        &[
            "registry",
            "load",
            "--merchants",
            &merchants.display().to_string(),
        ],
    ));
    assert!(
        e.contains("line 4") && e.contains("terminals") && e.contains("10000001"),
        "{e}"
    );
    let e = fails(clearing(
        dir.path(),
        &[
            "registry",
            "load",
            "--merchants",
            &fixture("transactions.jsonl").display().to_string(),
        ],
    ));
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn a_malformed_kafka_address_is_a_one_line_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["localhost", "host:port", ":9092", "127.0.0.1:0"] {
        let e = fails(clearing(dir.path(), &["--kafka", bad, "digest"]));
        assert!(e.contains("--kafka") && e.contains(bad), "{e}");
    }
}

#[test]
fn demo_runs_the_whole_day_with_every_kind_of_record() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(dir.path(), &["demo", "--format", "json", "--txns", "3000"]);
    let ingest = &v["ingest"];
    let rejected: u64 = ingest["rejected"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        ingest["accepted"].as_u64().unwrap() + ingest["duplicates"].as_u64().unwrap() + rejected,
        v["input_lines"].as_u64().unwrap()
    );
    for reason in [
        "invalid_json",
        "missing_field",
        "invalid_amount",
        "unsupported_currency",
        "invalid_timestamp",
        "unknown_merchant",
        "unknown_original",
        "original_not_cancellable",
        "refund_exceeds_original",
        "conflicting_duplicate",
        "invalid_field",
    ] {
        assert!(
            ingest["rejected"][reason].as_u64().unwrap_or(0) > 0,
            "demo has no {reason}"
        );
    }
    assert!(ingest["duplicates"].as_u64().unwrap() > 0);
    let s = &v["settlement"];
    let merchants = s["merchants"].as_array().unwrap();
    assert!(merchants.len() > 100, "hundreds of merchants");
    let cents = |x: &Value| {
        clearing_core::Fen::parse_signed(x.as_str().unwrap())
            .unwrap()
            .0
    };
    for field in ["sales_amount", "refund_amount", "fee", "net"] {
        let sum: i64 = merchants.iter().map(|m| cents(&m[field])).sum();
        assert_eq!(sum, cents(&s["totals"][field]), "{field}");
    }
    for m in merchants {
        assert_eq!(
            cents(&m["net"]),
            cents(&m["sales_amount"]) - cents(&m["refund_amount"]) - cents(&m["fee"])
        );
    }
    assert!(
        merchants.iter().any(|m| m["clearing"] == "second_party")
            && merchants.iter().any(|m| m["clearing"] == "first_party")
    );
    let flagged = v["risk"]["flagged"].as_array().unwrap();
    for flag in [
        "terminal_unbound",
        "terminal_merchant_mismatch",
        "mcc_mismatch",
    ] {
        assert!(
            flagged
                .iter()
                .any(|f| f["flags"].as_array().unwrap().iter().any(|x| x == flag)),
            "no {flag}"
        );
    }
    let exposure: i64 = v["risk"]["exposure"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| cents(&e["net"]))
        .sum();
    let second: i64 = merchants
        .iter()
        .filter(|m| m["clearing"] == "second_party")
        .map(|m| cents(&m["net"]))
        .sum();
    assert_eq!(exposure, second);
}

#[test]
fn demo_refuses_a_data_dir_that_already_holds_a_ledger() {
    let dir = ingested();
    let e = fails(clearing(dir.path(), &["demo"]));
    assert!(e.contains("already holds a ledger"), "{e}");
}

fn channel_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const CHANNEL_HEADER: &str =
    "business_date,occurred_at,merchant_id,terminal_id,rrn,stan,card,txn_type,amount,fee\n";

#[test]
fn recon_prints_the_spec_json_and_exits_zero_with_breaks() {
    let dir = loaded();
    let _ = ok(clearing(
        dir.path(),
        &[
            "ingest",
            &fixture("transactions.jsonl").display().to_string(),
        ],
    ));
    // P20261120000008: 5000.00 at the exempt hospital, fee 0.00; one
    // line the ledger never saw
    let f = channel_file(
        dir.path(),
        "ch.csv",
        &format!("{CHANNEL_HEADER}2026-11-20,2026-11-20T10:00:00+08:00,822584053110003,10000004,432100000010,1,,sale,5000.00,0.00\n2026-11-20,2026-11-20T10:00:00+08:00,822584053110003,10000004,432100009999,1,,sale,1.00,0.00\n"),
    );
    let v = json(
        dir.path(),
        &[
            "recon",
            "--file",
            &f,
            "--date",
            "2026-11-20",
            "--format",
            "json",
        ],
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["breaks", "business_date", "counts", "held"]);
    assert_eq!(v["counts"].as_object().unwrap().len(), 8);
    assert_eq!(v["counts"]["matched"], 1);
    assert_eq!(v["counts"]["missing_in_ledger"], 1);
    assert_eq!(
        v["breaks"][0],
        serde_json::json!({"category":"missing_in_ledger","terminal_id":"10000004","rrn":"432100009999","txn_type":"sale"})
    );
    // and again: the same result, nothing recorded twice
    let digest = json(dir.path(), &["digest", "--format", "json"]);
    let again = json(
        dir.path(),
        &[
            "recon",
            "--file",
            &f,
            "--date",
            "2026-11-20",
            "--format",
            "json",
        ],
    );
    assert_eq!(again, v);
    assert_eq!(json(dir.path(), &["digest", "--format", "json"]), digest);
    // csv: the breaks for a spreadsheet
    let csv = ok(clearing(
        dir.path(),
        &[
            "recon",
            "--file",
            &f,
            "--date",
            "2026-11-20",
            "--format",
            "csv",
        ],
    ));
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows.len() - 1,
        v["breaks"].as_array().unwrap().len(),
        "{csv}"
    );
    assert!(
        rows[1]
            .starts_with("2026-11-20,missing_in_ledger,822584053110003,10000004,432100009999,sale"),
        "{csv}"
    );
}

#[test]
fn recon_refuses_a_missing_file_a_wrong_header_and_a_file_of_another_date() {
    let dir = loaded();
    let e = fails(clearing(
        dir.path(),
        &[
            "recon",
            "--file",
            "/nonexistent/ch.csv",
            "--date",
            "2026-11-20",
        ],
    ));
    assert!(e.contains("/nonexistent/ch.csv"), "{e}");
    let f = channel_file(dir.path(), "bad-header.csv", "date,rrn\n2026-11-20,1\n");
    let e = fails(clearing(
        dir.path(),
        &["recon", "--file", &f, "--date", "2026-11-20"],
    ));
    assert!(e.contains("wrong header"), "{e}");
    let f = channel_file(
        dir.path(),
        "other-day.csv",
        &format!("{CHANNEL_HEADER}2026-11-19,2026-11-19T10:00:00+08:00,822584053110003,10000004,432100000010,1,,sale,5000.00,0.00\n"),
    );
    let e = fails(clearing(
        dir.path(),
        &["recon", "--file", &f, "--date", "2026-11-20"],
    ));
    assert!(
        e.contains("2026-11-19") && e.contains("--date 2026-11-20"),
        "{e}"
    );
    let e = fails(clearing(
        dir.path(),
        &["recon", "--file", &f, "--date", "20-11-2026"],
    ));
    assert!(e.contains("20-11-2026"), "{e}");
}

#[test]
fn the_demo_finds_exactly_the_breaks_its_channel_file_injected() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(dir.path(), &["demo", "--txns", "3000", "--format", "json"]);
    let injected = &v["channel_file"]["injected"];
    let counts = &v["recon"]["counts"];
    let n = |v: &Value| v.as_u64().unwrap();
    assert_eq!(n(&counts["missing_in_channel"]), n(&injected["dropped"]));
    assert_eq!(
        n(&counts["amount_mismatch"]),
        n(&injected["amount_changed"])
    );
    assert_eq!(n(&counts["fee_mismatch"]), n(&injected["fee_changed"]));
    assert_eq!(
        n(&counts["duplicate_in_channel"]),
        n(&injected["duplicated"])
    );
    assert_eq!(
        n(&counts["missing_in_ledger"]),
        n(&injected["unknown_added"])
    );
    assert_eq!(
        n(&counts["status_mismatch"]),
        n(&injected["cancelled_reported"])
    );
    assert_eq!(n(&counts["held"]), n(&injected["near_cutoff_left_out"]));
    assert!(n(&counts["matched"]) > 2000);
}

#[test]
fn recon_reads_the_fixed_width_layout_when_asked() {
    let dir = loaded();
    let _ = ok(clearing(
        dir.path(),
        &[
            "ingest",
            &fixture("transactions.jsonl").display().to_string(),
        ],
    ));
    // P20261120000008 as a UnionPay-style record: S22, STAN, MMDDhhmmss,
    // card, amount in fen, MCC, merchant, terminal, RRN, fee in fen
    let record = format!(
        "{}{}{}{:<19}{:012}8062{:<15}{:<8}{:<12}{:012}\n",
        "S22", "000010", "1120100000", "", 500000, "822584053110003", "10000004", "432100000010", 0
    );
    assert_eq!(record.trim_end().len(), 101);
    let f = channel_file(dir.path(), "ch.txt", &record);
    let v = json(
        dir.path(),
        &[
            "recon",
            "--file",
            &f,
            "--date",
            "2026-11-20",
            "--layout",
            "unionpay-fixed",
            "--format",
            "json",
        ],
    );
    assert_eq!(v["counts"]["matched"], 1, "{v}");
    assert_eq!(v["counts"]["missing_in_ledger"], 0, "{v}");
    // read as CSV, the same file has a wrong header
    let e = fails(clearing(
        dir.path(),
        &["recon", "--file", &f, "--date", "2026-11-20"],
    ));
    assert!(e.contains("wrong header"), "{e}");
}
