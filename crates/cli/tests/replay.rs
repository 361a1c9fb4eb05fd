//! Replay and disputes (SPEC §9) through the `clearing` binary: a replay to
//! a moment between two events, replay against the live digest after a
//! randomized history with restarts, as-of statements around a refund,
//! a transaction's story by rrn, the dispute bundle, the hledger journal
//! checked by hledger itself, and events written by an earlier build.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The fixture day's transactions split in two files at `at` lines.
fn split_transactions(dir: &Path, at: usize) -> (String, String) {
    let text = std::fs::read_to_string(fixture("transactions.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let a = dir.join("a.jsonl");
    let b = dir.join("b.jsonl");
    std::fs::write(&a, lines[..at].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[at..].join("\n") + "\n").unwrap();
    (s(&a), s(&b))
}

fn story(dir: &Path, id: &str) -> Value {
    let v = json(dir, &["txn", "show", id, "--format", "json"]);
    assert_eq!(v["query"], id);
    v
}

fn settlement(dir: &Path, date: &str) -> Value {
    json(
        dir,
        &["report", "settlement", "--date", date, "--format", "json"],
    )
}

fn statement(dir: &Path, merchant: &str, date: &str, as_of: Option<&str>) -> Value {
    let mut args = vec![
        "merchant",
        "statement",
        merchant,
        "--date",
        date,
        "--format",
        "json",
    ];
    if let Some(t) = as_of {
        args.extend(["--as-of", t]);
    }
    json(dir, &args)
}

fn digest(dir: &Path) -> Value {
    json(dir, &["digest", "--format", "json"])
}

fn replay(dir: &Path, until: &str, into: &Path) -> Value {
    json(
        dir,
        &[
            "replay",
            "--until",
            until,
            "--into",
            &s(into),
            "--format",
            "json",
        ],
    )
}

#[test]
fn a_replay_to_a_time_between_two_events_of_one_merchant_shows_the_ledger_as_it_stood() {
    let work = tempfile::tempdir().unwrap();
    // Lines 1–5 are merchant 001's first sales; its void and refund
    // (lines 6–7) come in a second file, recorded later.
    let (a, b) = split_transactions(work.path(), 5);
    let live = loaded();
    ok(clearing(live.path(), &["ingest", &a]));
    let before = settlement(live.path(), "2026-11-20");
    let at_a = digest(live.path());
    let sale = story(live.path(), "P20261120000004");
    let t = sale["transactions"][0]["events"][0]["recorded_at"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(clearing(live.path(), &["ingest", &b]));
    let void = story(live.path(), "V20261120000001");
    let void_event = void["transactions"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "VoidRecorded")
        .unwrap()
        .clone();
    assert!(void_event["recorded_at"].as_str().unwrap() > t.as_str());
    assert_eq!(void_event["event"]["merchant_id"], "822584053110001");

    let r = work.path().join("at-t");
    let replayed = replay(live.path(), &t, &r);
    // the replay holds what the live ledger held then: same digest, same
    // report, and the void is not there yet
    assert_eq!(replayed["digest"], at_a["digest"]);
    assert_eq!(replayed["log_position"], at_a["log_position"]);
    assert_eq!(settlement(&r, "2026-11-20"), before);
    assert_ne!(settlement(live.path(), "2026-11-20"), before);
    let out = clearing(&r, &["txn", "show", "V20261120000001"]);
    assert!(fails(out).contains("no transaction"));
    assert_eq!(
        story(&r, "P20261120000004")["transactions"][0]["settlement"]["status"],
        "in_settlement"
    );
    assert_eq!(
        story(live.path(), "P20261120000004")["transactions"][0]["settlement"]["status"],
        "voided"
    );
    // the same moment in legs of one event
    let legs = work.path().join("at-t-legs");
    let again = json(
        live.path(),
        &[
            "replay",
            "--until",
            &t,
            "--into",
            &s(&legs),
            "--leg-events",
            "1",
            "--format",
            "json",
        ],
    );
    assert_eq!(again["digest"], at_a["digest"]);
    // the same moment named by position gives the same state
    let by_position = work.path().join("at-position");
    let again = replay(
        live.path(),
        at_a["log_position"].as_str().unwrap(),
        &by_position,
    );
    assert_eq!(again["digest"], at_a["digest"]);
    // a replayed dir is read-only, and a replay wants a fresh dir
    let refused = fails(clearing(&r, &["ingest", &b]));
    assert!(refused.contains("read-only"), "{refused}");
    let not_fresh = fails(clearing(
        live.path(),
        &["replay", "--until", "end", "--into", &s(&r)],
    ));
    assert!(not_fresh.contains("not empty"), "{not_fresh}");
    let bad = fails(clearing(
        live.path(),
        &[
            "replay",
            "--until",
            "yesterday",
            "--into",
            &s(&work.path().join("x")),
        ],
    ));
    assert!(bad.contains("--until"), "{bad}");
}

/// A small deterministic generator, seeded from the test seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn replay_to_the_end_equals_the_live_digest_after_a_randomized_history_with_restarts() {
    let seed = clearing_testkit::test_seed("replay_random_history");
    let mut rng = Rng(seed | 1);
    let work = tempfile::tempdir().unwrap();
    // a generated day: registry, fees and transactions of every kind
    let gen = work.path().join("gen");
    ok(clearing(
        &gen,
        &[
            "demo",
            "--txns",
            &(1000 + rng.below(1500)).to_string(),
            "--merchants",
            "60",
            "--seed",
            &rng.below(1_000_000).to_string(),
        ],
    ));
    let input = gen.join("input");
    let live = work.path().join("live");
    load_reference(&live, &input);
    let p = |n: &str| s(&input.join(n));
    // the day in random pieces, each ingested by its own process, with
    // projections brought up (or not) in between, and a state taken at a
    // random moment
    let text = std::fs::read_to_string(input.join("transactions.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    let mut piece = 0;
    let mut taken: Option<Value> = None;
    while at < lines.len() {
        let n = 1 + rng.below(lines.len() as u64 / 3) as usize;
        let end = (at + n).min(lines.len());
        let f = work.path().join(format!("piece-{piece}.jsonl"));
        std::fs::write(&f, lines[at..end].join("\n") + "\n").unwrap();
        ok(clearing(&live, &["ingest", &s(&f)]));
        if rng.below(2) == 0 {
            ok(clearing(&live, &["project"]));
        }
        if taken.is_none() && rng.below(3) == 0 {
            taken = Some(digest(&live));
        }
        at = end;
        piece += 1;
    }
    ok(clearing(
        &live,
        &[
            "recon",
            "--file",
            &p("channel-2026-11-20.csv"),
            "--date",
            "2026-11-20",
        ],
    ));
    let end = digest(&live);
    let r = work.path().join("replay-end");
    assert_eq!(replay(&live, "end", &r), end, "seed {seed}");
    assert_eq!(digest(&r), end);
    assert_eq!(
        settlement(&r, "2026-11-20"),
        settlement(&live, "2026-11-20")
    );
    // the state taken mid-way, rebuilt from its log position
    if let Some(mid) = taken {
        let m = work.path().join("replay-mid");
        let again = replay(&live, mid["log_position"].as_str().unwrap(), &m);
        assert_eq!(again["digest"], mid["digest"], "seed {seed}");
    }
    // in legs of a few events, the store closed and reopened in between
    let r2 = work.path().join("replay-end-legs");
    let legs = json(
        &live,
        &[
            "replay",
            "--until",
            "end",
            "--into",
            &s(&r2),
            "--leg-events",
            &(1 + rng.below(50)).to_string(),
            "--format",
            "json",
        ],
    );
    assert_eq!(legs, end, "seed {seed}");
}

#[test]
fn statements_as_of_before_and_after_a_refund() {
    let work = tempfile::tempdir().unwrap();
    // The refund of P…001 (and the later void the refunded sale refuses)
    // come last, recorded later.
    let text = std::fs::read_to_string(fixture("transactions.jsonl")).unwrap();
    let (refund, rest): (Vec<&str>, Vec<&str>) = text
        .lines()
        .partition(|l| l.contains("\"F20261120000001\"") || l.contains("\"V20261120000025\""));
    let a = work.path().join("a.jsonl");
    let b = work.path().join("b.jsonl");
    std::fs::write(&a, rest.join("\n") + "\n").unwrap();
    std::fs::write(&b, refund.join("\n") + "\n").unwrap();
    let live = loaded();
    ok(clearing(live.path(), &["ingest", &s(&a)]));
    let statement = |as_of| statement(live.path(), "822584053110001", "2026-11-20", as_of);
    let then = statement(None);
    let last = then["lines"].as_array().unwrap().last().unwrap().clone();
    let t = last["recorded_at"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(clearing(live.path(), &["ingest", &s(&b)]));

    let before = statement(Some(&t));
    let after = statement(None);
    assert_eq!(before["rows"], then["rows"]);
    assert_eq!(before["lines"], then["lines"]);
    assert!(!before["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["txn_id"] == "F20261120000001"));
    let refund_line = after["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["txn_id"] == "F20261120000001")
        .unwrap()
        .clone();
    assert!(refund_line["position"].as_str().unwrap().starts_with("0:"));
    assert_eq!(refund_line["effect"]["refund_amount"], "2500.00");
    // the refund of 2500.00 gave back 15.00 of fee: the net falls by 2485.00
    assert_eq!(before["rows"][0]["net"], "29901.88");
    assert_eq!(after["rows"][0]["net"], "27416.88");
    assert_eq!(after["rows"][0]["refund_count"], 1);
    // after the refund, the statement's row is the settlement report's row
    let report = settlement(live.path(), "2026-11-20");
    let row = report["merchants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["merchant_id"] == "822584053110001")
        .unwrap();
    assert_eq!(&after["rows"][0], row);
    // and the as-of statement is the statement of a replay to that moment
    let r = work.path().join("replay");
    replay(live.path(), &t, &r);
    let replayed = crate::statement(&r, "822584053110001", "2026-11-20", None);
    assert_eq!(replayed["rows"], before["rows"]);
    assert_eq!(replayed["lines"], before["lines"]);
}

#[test]
fn txn_show_by_rrn_tells_the_whole_story_with_the_registry_as_it_stood() {
    let dir = ingested();
    // a registry change after the day: merchant 001 moves to the exempt plan
    let work = tempfile::tempdir().unwrap();
    let m = merchants_moved_to_exempt(work.path());
    ok(clearing(
        dir.path(),
        &["registry", "load", "--merchants", &s(&m)],
    ));
    ok(clearing(
        dir.path(),
        &[
            "recon",
            "--file",
            &s(&fixture("channel-2026-11-20.csv")),
            "--date",
            "2026-11-20",
        ],
    ));
    // the refund's rrn leads to the sale's whole story
    let v = story(dir.path(), "432100000007");
    let txns = v["transactions"].as_array().unwrap();
    assert_eq!(txns.len(), 1);
    let t = &txns[0];
    assert_eq!(t["txn_id"], "P20261120000001");
    assert_eq!(t["fee_rule"]["plan"], "standard");
    assert_eq!(t["fee_rule"]["rate"], "0.006");
    assert_eq!(t["fee_rule"]["schedule_version"], 1);
    assert_eq!(t["business_date"], "2026-11-20");
    assert_eq!(t["payout_date"], "2026-11-23");
    assert_eq!(t["settlement"]["status"], "in_settlement");
    assert_eq!(t["settlement"]["refunded_amount"], "2500.00");
    assert_eq!(t["settlement"]["net"], "7455.00");
    let events = t["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&types[..2], ["SaleRecorded", "RefundRecorded"], "{types:?}");
    assert!(types.contains(&"ReconciliationRun"), "{types:?}");
    for e in &events[..2] {
        // the registry then, not now: version 1 on the standard plan
        assert_eq!(e["registry"]["version"], 1);
        assert_eq!(e["registry"]["value"]["fee_plan"], "standard");
        assert!(e["position"].as_str().unwrap().starts_with("0:"));
        let postings = e["event"]["body"]["entry"]["postings"].as_array().unwrap();
        let cents: i64 = postings
            .iter()
            .map(|p| {
                let a = p["amount"].as_str().unwrap().replace('.', "");
                a.parse::<i64>().unwrap()
            })
            .sum();
        assert_eq!(cents, 0, "postings sum to zero");
    }
    let recon: Vec<(&str, &str)> = t["reconciliation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["txn_id"].as_str().unwrap(),
                r["category"].as_str().unwrap(),
            )
        })
        .collect();
    // tests/fixtures/day1/README.md: the sale matches; the refund's line
    // carries another fee
    assert_eq!(
        recon,
        [
            ("P20261120000001", "matched"),
            ("F20261120000001", "fee_mismatch")
        ]
    );
    // the declined sale: why the 50.00 never arrived
    let d = &story(dir.path(), "432100000005")["transactions"][0];
    assert_eq!(d["result"], "declined");
    assert_eq!(d["decline_code"], "51");
    assert_eq!(d["settlement"]["status"], "declined");
    assert_eq!(d["settlement"]["net"], "0.00");
    // nothing by that name: one line, non-zero exit
    assert!(fails(clearing(dir.path(), &["txn", "show", "NOPE"])).contains("no transaction"));
}

#[test]
fn a_dispute_bundle_round_trips_and_proves_the_state_it_came_from() {
    use sha2::Digest;
    let dir = ingested();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("bundle.json");
    ok(clearing(
        dir.path(),
        &["export", "dispute", "432100000007", "--out", &s(&out)],
    ));
    let bytes = std::fs::read(&out).unwrap();
    let outer: Value = serde_json::from_slice(&bytes).unwrap();
    // the content hash is over the content exactly as written
    #[derive(serde::Deserialize)]
    struct Outer<'a> {
        #[serde(borrow)]
        content: &'a serde_json::value::RawValue,
        content_sha256: String,
    }
    let o: Outer = serde_json::from_slice(&bytes).unwrap();
    let sha: String = sha2::Sha256::digest(o.content.get().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, o.content_sha256);
    let content = &outer["content"];
    // what it says equals what the ledger says
    assert_eq!(content["state_digest"], digest(dir.path())["digest"]);
    assert_eq!(content["log_position"], digest(dir.path())["log_position"]);
    assert_eq!(
        content["transactions"],
        story(dir.path(), "432100000007")["transactions"]
    );
    let statement = statement(dir.path(), "822584053110001", "2026-11-20", None);
    assert_eq!(content["statements"][0], statement);
    // every event in it is an event this build reads, as recorded
    for e in content["transactions"][0]["events"].as_array().unwrap() {
        let raw = serde_json::to_vec(&e["event"]).unwrap();
        let decoded = clearing_core::Event::decode(&raw).unwrap();
        assert_eq!(decoded.event_id, e["event_id"].as_str().unwrap());
    }
    // tampering shows
    let tampered = String::from_utf8(bytes)
        .unwrap()
        .replacen("\"7455.00\"", "\"7459.00\"", 1);
    let o: Outer = serde_json::from_str(&tampered).unwrap();
    let sha: String = sha2::Sha256::digest(o.content.get().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(sha, o.content_sha256);
}

/// hledger's balance report as account → amount in fen.
fn hledger_balances(journal: &Path) -> std::collections::BTreeMap<String, i64> {
    let hledger = std::env::var("CLEARING_TEST_HLEDGER").unwrap_or_else(|_| "hledger".into());
    let out = std::process::Command::new(&hledger)
        .args(["-f", &s(journal), "balance", "--flat", "-N", "-O", "csv"])
        .output()
        .unwrap_or_else(|e| {
            panic!("running {hledger}: {e}; ./deploy/test.sh installs hledger (Debian package)")
        });
    assert!(
        out.status.success(),
        "hledger refused the journal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<String> = l
                .split("\",\"")
                .map(|c| c.trim_matches('"').to_string())
                .collect();
            let amount = cols[1].trim_end_matches(" CNY").replace([',', '.'], "");
            (cols[0].clone(), amount.parse::<i64>().unwrap())
        })
        .collect()
}

fn fen(v: &Value) -> i64 {
    v.as_str().unwrap().replace('.', "").parse().unwrap()
}

#[test]
fn hledger_balances_of_the_exported_journal_equal_the_ledgers_own_figures() {
    let dir = ingested();
    let work = tempfile::tempdir().unwrap();
    for date in ["2026-11-20", "2026-11-21"] {
        let journal = work.path().join(format!("{date}.journal"));
        ok(clearing(
            dir.path(),
            &["export", "hledger", "--date", date, "--out", &s(&journal)],
        ));
        let bal = hledger_balances(&journal);
        let report = settlement(dir.path(), date);
        let risk = json(
            dir.path(),
            &["report", "risk", "--date", date, "--format", "json"],
        );
        // each first-party merchant's payable is its net, owed
        let mut checked = 0;
        for m in report["merchants"].as_array().unwrap() {
            if m["clearing"] == "first_party" {
                let account = format!(
                    "liabilities:merchant_payable:{}",
                    m["merchant_id"].as_str().unwrap()
                );
                assert_eq!(
                    bal.get(&account).copied().unwrap_or(0),
                    -fen(&m["net"]),
                    "{date} {account}"
                );
                checked += 1;
            }
        }
        // each intermediary's payable is its exposure: its merchants' nets
        let mut exposure: std::collections::BTreeMap<String, i64> = Default::default();
        for e in risk["exposure"].as_array().unwrap() {
            *exposure
                .entry(e["intermediary_id"].as_str().unwrap().to_string())
                .or_default() += fen(&e["net"]);
        }
        for (i, net) in &exposure {
            let account = format!("liabilities:intermediary_payable:{i}");
            assert_eq!(
                bal.get(&account).copied().unwrap_or(0),
                -net,
                "{date} {account}"
            );
            checked += 1;
        }
        // fee income is the day's fee total; the channels owe the sales
        // less the refunds
        let totals = &report["totals"];
        assert_eq!(
            bal.get("income:fees").copied().unwrap_or(0),
            -fen(&totals["fee"]),
            "{date}"
        );
        let receivable: i64 = bal
            .iter()
            .filter(|(k, _)| k.starts_with("assets:channel_receivable:"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            receivable,
            fen(&totals["sales_amount"]) - fen(&totals["refund_amount"]),
            "{date}"
        );
        assert!(checked > 0, "{date}: no rows checked");
    }
}

#[test]
fn events_written_by_an_earlier_build_replay_with_the_current_code() {
    use clearing_log::embedded::EmbeddedLog;
    use clearing_log::{EventLog, Record, Topic, TopicNames};
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/schema-v1/events.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let old = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(old.path(), TopicNames::with_prefix("clearing")).unwrap();
        let records: Vec<Record> = text
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["schema_version"], 1);
                assert!(
                    v.get("seq").is_none(),
                    "written before events were numbered"
                );
                Record {
                    key: v["merchant_id"].as_str().unwrap_or("reference").to_string(),
                    payload: l.as_bytes().to_vec(),
                    headers: Vec::new(),
                    partition: None,
                }
            })
            .collect();
        log.append(Topic::Events, &records).unwrap();
        log.flush().unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let r = work.path().join("replay");
    let replayed = replay(old.path(), "end", &r);
    assert_eq!(replayed["log_position"], "0:22");
    for date in ["2026-11-20", "2026-11-21"] {
        assert_eq!(
            settlement(&r, date),
            expected(&format!("expected_settlement_{date}.json")),
            "{date}"
        );
    }
    // the story of the refunded sale, told from the old events
    let t = &story(&r, "432100000007")["transactions"][0];
    assert_eq!(t["txn_id"], "P20261120000001");
    assert_eq!(t["settlement"]["net"], "7455.00");
    assert_eq!(t["events"][0]["registry"]["version"], 1);
    assert_eq!(digest(old.path())["digest"], replayed["digest"]);
}

/// Snapshots through the binary (issue 14): the live projector writes them
/// as `--snapshot-every` says, a replay says which one it started from,
/// `--from-scratch` starts from the first event, a damaged one is named in
/// a warning and by `verify`, and every way comes to the same digest.
#[test]
fn a_replay_says_the_snapshot_it_started_from_and_a_damaged_one_is_named() {
    let work = tempfile::tempdir().unwrap();
    let (a, b) = split_transactions(work.path(), 12);
    let live = loaded();
    let every = ["--snapshot-every", "3"];
    fn with<'a>(every: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
        [every, args].concat()
    }
    ok(clearing(live.path(), &with(&every, &["ingest", &a])));
    ok(clearing(live.path(), &with(&every, &["project"])));
    let at_a = digest(live.path());
    ok(clearing(live.path(), &with(&every, &["ingest", &b])));
    ok(clearing(live.path(), &with(&every, &["project"])));
    let end = digest(live.path());
    let snaps: Vec<_> = std::fs::read_dir(live.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    assert!(snaps.len() >= 2, "{snaps:?}");

    let replay_table = |until: &str, into: &Path, extra: &[&str]| {
        let mut args = vec!["replay", "--until", until, "--into"];
        let into = s(into);
        args.push(&into);
        args.extend(extra);
        let out = clearing(live.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (ok(out).trim().to_string(), stderr)
    };
    let until_a = at_a["log_position"].as_str().unwrap();
    let (d, stderr) = replay_table(until_a, &work.path().join("r1"), &[]);
    assert_eq!(d, at_a["digest"].as_str().unwrap());
    assert!(stderr.contains("after snapshot"), "{stderr}");
    let (d, stderr) = replay_table("end", &work.path().join("r2"), &["--from-scratch"]);
    assert_eq!(d, end["digest"].as_str().unwrap());
    assert!(stderr.contains("from the first event"), "{stderr}");

    // the newest snapshot damaged: passed over, named, same digest
    let mut newest = snaps.clone();
    newest.sort();
    let newest = newest.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x20;
    std::fs::write(newest, &bytes).unwrap();
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    let (d, stderr) = replay_table("end", &work.path().join("r3"), &[]);
    assert_eq!(d, end["digest"].as_str().unwrap());
    assert!(
        stderr.contains("warning") && stderr.contains(&name),
        "{stderr}"
    );
    let verified = fails(clearing(live.path(), &["verify"]));
    assert!(verified.contains(&name), "{verified}");
}
