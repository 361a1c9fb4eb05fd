//! Payouts and break resolutions (SPEC §13, §14) through the `clearing`
//! binary: the operator's daily sequence with every JSON shape, refusals
//! as one line and exit 1, hledger's balances after a batch and its bank
//! result, and the same day on Kafka.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{fails, fixture, BIN};
use serde_json::Value;

/// A data dir, on the embedded log or on the test broker.
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

    fn kafka(test: &str) -> Ledger {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!("t{}-{}-{test}", std::process::id(), nanos % 1_000_000_000);
        Ledger {
            dir: tempfile::tempdir().unwrap(),
            kafka: Some((clearing_testkit::test_broker(), prefix)),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(self.dir.path().join("ledger"))
            .env_remove("CLEARING_KAFKA")
            .env_remove("CLEARING_DATA_DIR")
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
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let out = self.ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// The fixture day, reconciled against its channel file.
    fn reconciled(&self) {
        let f = |n: &str| fixture(n).display().to_string();
        self.ok(&[
            "fees",
            "load",
            &f("fees.toml"),
            "--holidays",
            &f("holidays.txt"),
        ]);
        self.ok(&[
            "registry",
            "load",
            "--merchants",
            &f("merchants.jsonl"),
            "--intermediaries",
            &f("intermediaries.jsonl"),
        ]);
        self.ok(&["ingest", &f("transactions.jsonl")]);
        self.ok(&["project"]);
        self.json(&[
            "recon",
            "--file",
            &f("channel-2026-11-20.csv"),
            "--date",
            "2026-11-20",
        ]);
    }

    fn resolve(&self, terminal: &str, rrn: &str, t: &str, decision: &str) -> Output {
        self.run(&[
            "recon",
            "resolve",
            "--date",
            "2026-11-20",
            "--terminal",
            terminal,
            "--rrn",
            rrn,
            "--txn-type",
            t,
            "--decision",
            decision,
            "--operator",
            "li.wei",
            "--remark",
            "checked with the channel",
            "--format",
            "json",
        ])
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

/// The operator's day after reconciliation: resolve, prepare, approve,
/// export, the bank's answer (the first line failed). Returns the payout
/// report, the adjustments report and the export.
fn daily_sequence(l: &Ledger) -> (Value, Value, String) {
    l.reconciled();
    let r: Value = serde_json::from_slice(
        &l.resolve("10000001", "432100000099", "sale", "channel")
            .stdout,
    )
    .unwrap();
    assert_eq!(r["adjustment"], "99.40", "{r}");
    assert_eq!(r["decision"], "channel");
    assert_eq!(r["payout_date"], "2026-11-23");
    let r: Value = serde_json::from_slice(
        &l.resolve("10000002", "432100000002", "sale", "ledger")
            .stdout,
    )
    .unwrap();
    assert_eq!(r["decision"], "ledger", "{r}");
    assert!(r.get("adjustment").is_none());
    let p = "2026-11-23";
    let prepared = l.json(&["payout", "prepare", "--date", p, "--operator", "zhang.min"]);
    assert_eq!(prepared["status"], "prepared");
    assert_eq!(prepared["approved_by"], Value::Null);
    let approved = l.json(&["payout", "approve", "--date", p, "--operator", "wang.fang"]);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approved_by"], "wang.fang");
    let out = l.path("payout.csv");
    let exported = l.json(&["payout", "export", "--date", p, "--out", &out]);
    assert_eq!(exported["status"], "exported");
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut bank = String::from("payee_type,payee_id,amount,status,reason\n");
    for (i, row) in csv.lines().skip(1).enumerate() {
        let f: Vec<&str> = row.split(',').collect();
        let status = if i == 0 {
            "failed,account frozen"
        } else {
            "paid,"
        };
        bank += &format!("{},{},{},{status}\n", f[1], f[2], f[5]);
    }
    let bank_file = l.path("bank.csv");
    std::fs::write(&bank_file, bank).unwrap();
    let result = l.json(&["payout", "result", "--date", p, "--file", &bank_file]);
    assert_eq!(
        keys(&result),
        [
            "already_settled",
            "bad_lines",
            "batch",
            "failed",
            "file_sha256",
            "paid",
            "payout_date",
            "recorded"
        ]
    );
    assert_eq!(
        (result["failed"].as_u64(), result["recorded"].as_bool()),
        (Some(1), Some(true))
    );
    let report = l.json(&["report", "payout", "--date", p]);
    let adjustments = l.json(&["report", "adjustments", "--date", "2026-11-20"]);
    (report, adjustments, csv)
}

#[test]
fn the_operators_day_prints_every_json_shape_of_sections_13_and_14() {
    let l = Ledger::embedded();
    let (report, adjustments, csv) = daily_sequence(&l);
    assert_eq!(
        keys(&report),
        [
            "approved_by",
            "carried",
            "lines",
            "payout_date",
            "prepared_by",
            "status",
            "totals"
        ]
    );
    assert_eq!(report["status"], "exported");
    assert_eq!(report["prepared_by"], "zhang.min");
    let lines = report["lines"].as_array().unwrap();
    for line in lines {
        assert_eq!(keys(line), ["amount", "payee_id", "payee_type", "status"]);
    }
    let ids: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["payee_type"].as_str().unwrap(),
                l["payee_id"].as_str().unwrap(),
                l["amount"].as_str().unwrap(),
            )
        })
        .collect();
    // by hand (tests/fixtures/day1/README.md): M1 27416.88 + the 99.40
    // adjustment; M3 5010.00; AGG001 229.13 + 298.20 + 99.40; sorted by
    // payee_type then payee_id
    assert_eq!(
        ids,
        [
            ("intermediary", "AGG001", "626.73"),
            ("merchant", "822584053110001", "27516.28"),
            ("merchant", "822584053110003", "5010.00"),
        ]
    );
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "paid", "paid"]);
    assert_eq!(
        report["totals"],
        serde_json::json!({"lines": 3, "amount": "33153.01"})
    );
    assert_eq!(report["carried"], serde_json::json!([]));
    assert_eq!(
        csv.lines().next().unwrap(),
        "payout_date,payee_type,payee_id,name,account,amount"
    );
    assert_eq!(
        csv.lines().nth(1).unwrap(),
        "2026-11-23,intermediary,AGG001,某某聚合,6222020200999999,626.73"
    );
    assert_eq!(
        adjustments,
        serde_json::json!({
            "business_date": "2026-11-20",
            "adjustments": [{
                "merchant_id": "822584053110001", "terminal_id": "10000001",
                "rrn": "432100000099", "txn_type": "sale", "category": "missing_in_ledger",
                "amount": "99.40", "operator": "li.wei", "remark": "checked with the channel"
            }],
            "totals": {"amount": "99.40"}
        })
    );
    // the rerun of the reconciliation says which breaks are resolved
    let rerun = l.json(&[
        "recon",
        "--file",
        &fixture("channel-2026-11-20.csv").display().to_string(),
        "--date",
        "2026-11-20",
    ]);
    let resolved: Vec<&Value> = rerun["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b.get("resolution").is_some())
        .collect();
    assert_eq!(resolved.len(), 2, "{rerun}");
    assert_eq!(resolved[0]["resolution"]["operator"], "li.wei");
    let table = l.ok(&[
        "recon",
        "--file",
        &fixture("channel-2026-11-20.csv").display().to_string(),
        "--date",
        "2026-11-20",
    ]);
    assert!(table.contains("resolved: channel by li.wei"), "{table}");
    // the failed line is owed again in the next batch
    let next = l.json(&[
        "payout",
        "prepare",
        "--date",
        "2026-11-24",
        "--operator",
        "zhang.min",
    ]);
    assert_eq!(
        next["lines"],
        serde_json::json!([{"payee_type": "intermediary", "payee_id": "AGG001", "amount": "626.73", "status": "pending"}])
    );
}

#[test]
fn refusals_are_one_line_and_exit_1_and_bad_bank_lines_are_named() {
    let l = Ledger::embedded();
    l.reconciled();
    let p = "2026-11-23";
    l.ok(&["payout", "prepare", "--date", p, "--operator", "zhang.min"]);
    let said = |out: Output, words: &str| {
        assert_eq!(out.status.code(), Some(1));
        let line = fails(out);
        assert!(line.contains(words), "{line}");
    };
    said(
        l.run(&["payout", "approve", "--date", p, "--operator", "zhang.min"]),
        "another operator",
    );
    said(
        l.run(&["payout", "export", "--date", p, "--out", &l.path("x.csv")]),
        "not approved",
    );
    assert!(!Path::new(&l.path("x.csv")).exists());
    said(
        l.run(&[
            "payout",
            "prepare",
            "--date",
            "2026-11-20",
            "--operator",
            "a",
        ]),
        "date order",
    );
    said(l.resolve("1", "2", "sale", "ledger"), "no break");
    said(
        l.resolve("10000002", "432100000002", "sale", "channel"),
        "duplicate_in_channel",
    );
    said(
        l.run(&[
            "recon",
            "resolve",
            "--date",
            "2026-11-20",
            "--terminal",
            "10000001",
            "--rrn",
            "432100000099",
            "--txn-type",
            "sale",
            "--decision",
            "ledger",
            "--operator",
            "li",
            "--remark",
            " ",
        ]),
        "--remark",
    );
    assert!(l
        .resolve("10000002", "432100000002", "sale", "ledger")
        .status
        .success());
    said(
        l.resolve("10000002", "432100000002", "sale", "ledger"),
        "already resolved",
    );
    l.ok(&["payout", "approve", "--date", p, "--operator", "wang.fang"]);
    l.ok(&["payout", "export", "--date", p, "--out", &l.path("x.csv")]);
    let bad_header = l.path("bad-header.csv");
    std::fs::write(&bad_header, "payee,amount,status\n").unwrap();
    said(
        l.run(&["payout", "result", "--date", p, "--file", &bad_header]),
        "header",
    );
    let bank = l.path("bank.csv");
    std::fs::write(
        &bank,
        "payee_type,payee_id,amount,status,reason\nmerchant,999,1.00,paid,\nmerchant,822584053110003,5010.00,maybe,\n",
    )
    .unwrap();
    let out = l.run(&[
        "payout", "result", "--date", p, "--file", &bank, "--format", "json",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 2") && stderr.contains("\"999\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 3") && stderr.contains("822584053110003"),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bad_lines"].as_array().unwrap().len(), 2);
    let report = l.json(&["report", "payout", "--date", p]);
    assert!(report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["status"] == "pending"));
}

/// hledger's balance of each account, in fen.
fn balances(journal: &str) -> BTreeMap<String, i64> {
    let out = Command::new("hledger")
        .args(["-f", journal, "balance", "--flat", "-N", "-O", "csv"])
        .output()
        .expect("hledger (deploy/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split("\",\"").map(|c| c.trim_matches('"')).collect();
            let fen = cols[1].trim_end_matches(" CNY").replace([',', '.'], "");
            (cols[0].to_string(), fen.parse().unwrap())
        })
        .collect()
}

#[test]
fn after_a_batch_and_its_bank_result_hledger_finds_every_payable_equal_to_what_is_still_owed() {
    let l = Ledger::embedded();
    let (report, _, _) = daily_sequence(&l);
    // the journals of both business dates and of the payout date
    let mut journal = String::new();
    for d in ["2026-11-20", "2026-11-21", "2026-11-23"] {
        let f = l.path(&format!("{d}.journal"));
        l.ok(&["export", "hledger", "--date", d, "--out", &f]);
        journal += &std::fs::read_to_string(&f)
            .unwrap()
            .replace("commodity 1,000.00 CNY", "");
    }
    let all = l.path("all.journal");
    std::fs::write(&all, format!("commodity 1,000.00 CNY\n{journal}")).unwrap();
    let b = balances(&all);
    assert!(
        journal.contains("* payout merchant 822584053110001"),
        "payouts are in the journal"
    );
    assert!(
        journal.contains("* adjustment missing_in_ledger"),
        "adjustments are in the journal"
    );
    // what is still owed: the failed line; every other payee is paid up
    let mut owed: BTreeMap<String, i64> = BTreeMap::new();
    for line in report["lines"].as_array().unwrap() {
        let account = match line["payee_type"].as_str().unwrap() {
            "merchant" => format!(
                "liabilities:merchant_payable:{}",
                line["payee_id"].as_str().unwrap()
            ),
            _ => format!(
                "liabilities:intermediary_payable:{}",
                line["payee_id"].as_str().unwrap()
            ),
        };
        let amount: i64 = line["amount"]
            .as_str()
            .unwrap()
            .replace('.', "")
            .parse()
            .unwrap();
        owed.insert(
            account,
            if line["status"] == "failed" {
                amount
            } else {
                0
            },
        );
    }
    let payables: BTreeMap<String, i64> = b
        .iter()
        .filter(|(a, _)| a.contains("_payable:") && !a.starts_with("intermediary:"))
        .map(|(a, v)| (a.clone(), -v))
        .collect();
    let owed_nonzero: BTreeMap<String, i64> = owed.into_iter().filter(|(_, v)| *v != 0).collect();
    assert_eq!(payables, owed_nonzero, "hledger balances: {b:?}");
    assert_eq!(owed_nonzero.len(), 1);
}

#[test]
fn the_same_day_on_kafka_gives_the_same_payout_and_adjustment_reports() {
    let embedded = daily_sequence(&Ledger::embedded());
    let kafka = Ledger::kafka("payouts");
    let on_kafka = daily_sequence(&kafka);
    assert_eq!(on_kafka.0, embedded.0);
    assert_eq!(on_kafka.1, embedded.1);
    assert_eq!(on_kafka.2, embedded.2);
    // the batch is rebuilt from the topic alone
    let into = kafka.path("replayed");
    kafka.ok(&["replay", "--until", "end", "--into", &into]);
    let mut c = Command::new(BIN);
    c.args(["--data-dir", &into]);
    c.args([
        "--kafka",
        &kafka.kafka.as_ref().unwrap().0,
        "--topic-prefix",
        &kafka.kafka.as_ref().unwrap().1,
    ]);
    let out = c
        .args([
            "report",
            "payout",
            "--date",
            "2026-11-23",
            "--format",
            "json",
        ])
        .env_remove("CLEARING_KAFKA")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(replayed, embedded.0);
}

#[test]
fn the_demo_ends_by_resolving_a_break_of_each_kind_and_paying_the_day_out() {
    let dir = tempfile::tempdir().unwrap();
    let v = common::json(dir.path(), &["demo", "--format", "json", "--txns", "3000"]);
    let found: Vec<&str> = v["recon"]["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["category"].as_str().unwrap())
        .collect();
    let mut kinds: Vec<&str> = v["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["category"].as_str().unwrap())
        .collect();
    kinds.sort();
    let mut expected: Vec<&str> = found.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(kinds, expected, "one resolution per kind of break found");
    assert!(kinds.len() >= 5, "{kinds:?}");
    for r in v["resolutions"].as_array().unwrap() {
        let channel = r["category"] != "duplicate_in_channel";
        assert_eq!(r["decision"], if channel { "channel" } else { "ledger" });
        assert_eq!(r.get("adjustment").is_some(), channel, "{r}");
    }
    let adjustments = v["adjustments"]["adjustments"].as_array().unwrap();
    assert_eq!(adjustments.len(), kinds.len() - 1);
    let batch = &v["payout"];
    assert_eq!(batch["status"], "exported");
    assert_ne!(batch["prepared_by"], batch["approved_by"]);
    let lines = batch["lines"].as_array().unwrap();
    let failed = lines.iter().filter(|l| l["status"] == "failed").count();
    let paid = lines.iter().filter(|l| l["status"] == "paid").count();
    assert_eq!((failed, paid), (1, lines.len() - 1));
    assert_eq!(v["bank_result"]["failed"], 1);
    let cents = |x: &Value| {
        clearing_core::Fen::parse_signed(x.as_str().unwrap())
            .unwrap()
            .0
    };
    let sum: i64 = lines.iter().map(|l| cents(&l["amount"])).sum();
    assert_eq!(sum, cents(&batch["totals"]["amount"]));
}
