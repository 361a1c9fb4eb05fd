//! `clearing serve` (SPEC §12) as a process on loopback: bodies equal to
//! the commands' JSON route by route, 401/403 by role on every route, the
//! token's name as the operator, maker-checker across two tokens, 413, 429,
//! 400 naming the field, the commands still working beside it, SIGTERM,
//! and the same on Kafka.

mod common;

use std::path::Path;
use std::process::Command;

use common::service::{call, reconciled_day, serve, token};
use common::{clearing, fixture, json, ok};
use serde_json::Value;

struct Tokens {
    viewer: String,
    operator: String,
    approver: String,
    admin: String,
}

fn tokens(file: &Path) -> Tokens {
    Tokens {
        viewer: token(file, "vic", "viewer"),
        operator: token(file, "olga", "operator"),
        approver: token(file, "bob", "approver"),
        admin: token(file, "ada", "admin"),
    }
}

fn value(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn every_read_route_answers_what_its_command_prints_and_every_route_checks_the_role() {
    let dir = reconciled_day();
    let file = dir.path().join("tokens.toml");
    let t = tokens(&file);
    let text = std::fs::read_to_string(&file).unwrap();
    for tok in [&t.viewer, &t.operator, &t.approver, &t.admin] {
        assert!(!text.contains(tok.as_str()), "only digests are stored");
    }
    let s = serve(dir.path(), &file, &[], &[]);
    let d = dir.path();
    // route by route against the command, on the same ledger
    let same = [
        (
            "/v1/settlement/2026-11-20",
            vec!["report", "settlement", "--date", "2026-11-20"],
        ),
        (
            "/v1/risk/2026-11-20",
            vec!["report", "risk", "--date", "2026-11-20"],
        ),
        ("/v1/txn/432100000007", vec!["txn", "show", "432100000007"]),
        (
            "/v1/merchants/822584053110001/statement/2026-11-20",
            vec![
                "merchant",
                "statement",
                "822584053110001",
                "--date",
                "2026-11-20",
            ],
        ),
        (
            "/v1/adjustments/2026-11-20",
            vec!["report", "adjustments", "--date", "2026-11-20"],
        ),
    ];
    for (path, args) in &same {
        let (code, body) = call(&s, "GET", path, Some(&t.viewer), "");
        assert_eq!(code, 200, "{path}: {body}");
        let mut args = args.clone();
        args.extend(["--format", "json"]);
        assert_eq!(value(&body), json(d, &args), "{path}");
    }
    // 401 without a token or with an unknown one, on every route
    let routes = [
        ("GET", "/v1/settlement/2026-11-20"),
        ("GET", "/v1/risk/2026-11-20"),
        ("GET", "/v1/txn/432100000007"),
        ("GET", "/v1/merchants/822584053110001/statement/2026-11-20"),
        ("GET", "/v1/digest"),
        ("GET", "/v1/adjustments/2026-11-20"),
        ("GET", "/v1/payouts/2026-11-23"),
        ("POST", "/v1/transactions"),
        ("POST", "/v1/recon/2026-11-20"),
        ("POST", "/v1/recon/2026-11-20/resolve"),
        ("POST", "/v1/payouts/2026-11-23/prepare"),
        ("POST", "/v1/payouts/2026-11-23/approve"),
        ("POST", "/v1/payouts/2026-11-23/export"),
        ("POST", "/v1/payouts/2026-11-23/result"),
        ("GET", "/v1/recon/2026-11-20"),
        ("POST", "/v1/fees"),
        ("POST", "/v1/registry"),
        ("GET", "/metrics"),
    ];
    for (m, path) in routes {
        assert_eq!(call(&s, m, path, None, "").0, 401, "{m} {path}");
        assert_eq!(
            call(&s, m, path, Some("not-a-token"), "").0,
            401,
            "{m} {path}"
        );
    }
    // 403 for the roles that may not
    let operate = [
        "/v1/transactions",
        "/v1/recon/2026-11-20",
        "/v1/recon/2026-11-20/resolve",
        "/v1/payouts/2026-11-23/prepare",
        "/v1/payouts/2026-11-23/export",
        "/v1/payouts/2026-11-23/result",
    ];
    for path in operate {
        for who in [&t.viewer, &t.approver] {
            let (code, body) = call(&s, "POST", path, Some(who), "");
            assert_eq!(code, 403, "{path}: {body}");
            assert!(value(&body)["error"].as_str().unwrap().contains("may not"));
        }
    }
    for who in [&t.viewer, &t.operator] {
        assert_eq!(
            call(&s, "POST", "/v1/payouts/2026-11-23/approve", Some(who), "").0,
            403
        );
    }
    // 400 naming the field
    let (code, body) = call(&s, "GET", "/v1/settlement/20261120", Some(&t.viewer), "");
    assert_eq!(code, 400);
    assert!(
        value(&body)["error"].as_str().unwrap().starts_with("date:"),
        "{body}"
    );
    let (code, body) = call(
        &s,
        "POST",
        "/v1/recon/2026-11-20/resolve",
        Some(&t.operator),
        r#"{"terminal_id":"10000002","rrn":"432100000002","txn_type":"sale","decision":"maybe","remark":"x"}"#,
    );
    assert_eq!(code, 400);
    assert!(
        value(&body)["error"]
            .as_str()
            .unwrap()
            .starts_with("decision:"),
        "{body}"
    );
    // the token's name is the operator; maker-checker across two tokens
    let (code, body) = call(
        &s,
        "POST",
        "/v1/recon/2026-11-20/resolve",
        Some(&t.operator),
        r#"{"terminal_id":"10000002","rrn":"432100000002","txn_type":"sale","decision":"ledger","remark":"sent twice"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(value(&body)["operator"], "olga");
    let (code, _) = call(
        &s,
        "POST",
        "/v1/recon/2026-11-20/resolve",
        Some(&t.operator),
        r#"{"terminal_id":"10000002","rrn":"432100000002","txn_type":"sale","decision":"ledger","remark":"again"}"#,
    );
    assert_eq!(code, 409);
    let (code, body) = call(
        &s,
        "POST",
        "/v1/payouts/2026-11-23/prepare",
        Some(&t.admin),
        "",
    );
    assert_eq!(
        (code, value(&body)["prepared_by"].clone()),
        (200, Value::from("ada"))
    );
    let (code, body) = call(
        &s,
        "POST",
        "/v1/payouts/2026-11-23/approve",
        Some(&t.admin),
        "",
    );
    assert_eq!(code, 409, "{body}");
    let (code, body) = call(
        &s,
        "POST",
        "/v1/payouts/2026-11-23/approve",
        Some(&t.approver),
        "",
    );
    assert_eq!(
        (code, value(&body)["approved_by"].clone()),
        (200, Value::from("bob"))
    );
    let (code, csv) = call(
        &s,
        "POST",
        "/v1/payouts/2026-11-23/export",
        Some(&t.operator),
        "",
    );
    assert_eq!(code, 200);
    assert!(
        csv.starts_with("payout_date,payee_type,payee_id,name,account,amount\n"),
        "{csv}"
    );
    let (_, body) = call(&s, "GET", "/v1/payouts/2026-11-23", Some(&t.viewer), "");
    assert_eq!(
        value(&body),
        json(
            d,
            &[
                "report",
                "payout",
                "--date",
                "2026-11-23",
                "--format",
                "json"
            ]
        )
    );
    let (_, body) = call(&s, "GET", "/v1/digest", Some(&t.viewer), "");
    assert_eq!(value(&body), json(d, &["digest", "--format", "json"]));
    // the commands work beside the service, and what they record shows up
    let extra = dir.path().join("late.jsonl");
    std::fs::write(&extra, r#"{"txn_id": "L1", "type": "sale", "original_txn_id": null, "merchant_id": "822584053110003", "terminal_id": "10000004", "mcc": "8062", "channel": "wechat", "amount": "1.00", "currency": "CNY", "result": "approved", "decline_code": null, "rrn": "77", "stan": null, "card": null, "occurred_at": "2026-11-20T12:00:00+08:00"}"#).unwrap();
    ok(clearing(d, &["ingest", &extra.display().to_string()]));
    let (_, body) = call(&s, "GET", "/v1/txn/L1", Some(&t.viewer), "");
    assert_eq!(value(&body)["transactions"][0]["txn_id"], "L1", "{body}");
    // between requests the service follows the log by itself: a record
    // made by a command is applied (and counted) before any request asks,
    // so the scrape finds no lag (it would find 1 offset otherwise)
    let late = std::fs::read_to_string(&extra)
        .unwrap()
        .replace("\"L1\"", "\"L2\"")
        .replace("\"77\"", "\"78\"");
    std::fs::write(&extra, late).unwrap();
    ok(clearing(d, &["ingest", &extra.display().to_string()]));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (_, text) = call(&s, "GET", "/metrics", Some(&t.viewer), "");
    let end = json(d, &["digest", "--format", "json"])["log_position"].clone();
    assert!(
        text.contains(
            r#"clearing_projection_lag_offsets{topic="clearing.events",partition="0"} 0"#
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"clearing_projection_next_offset{{topic="clearing.events",partition="0"}} {}"#,
            end.as_str().unwrap().trim_start_matches("0:")
        )),
        "{end} {text}"
    );
    let applied = |kind: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "clearing_events_applied_total{{type=\"{kind}\"}} "
                ))
            })
            .map(|v| v.parse::<u64>().unwrap())
    };
    assert!(applied("SaleRecorded") >= Some(2), "{text}");
    // a full card number posted to the service is masked before anything
    // answers it: the summary, the story, the metrics never hold it
    let full = "6228480012345678";
    let carded = std::fs::read_to_string(&extra)
        .unwrap()
        .replace("\"L2\"", "\"L3\"")
        .replace("\"78\"", "\"79\"")
        .replace("\"card\": null", &format!("\"card\": \"{full}\""));
    let broken = carded.replace("\"amount\": \"1.00\"", "\"amount\": \"x\"");
    let body = format!("{carded}\n{}", broken.replace("L3", "L4"));
    let (code, summary) = call(&s, "POST", "/v1/transactions", Some(&t.operator), &body);
    assert_eq!(code, 200, "{summary}");
    let (_, story) = call(&s, "GET", "/v1/txn/L3", Some(&t.viewer), "");
    assert!(story.contains("622848******5678"), "{story}");
    let (_, text) = call(&s, "GET", "/metrics", Some(&t.viewer), "");
    for answer in [&summary, &story, &text] {
        assert!(!answer.contains(full), "{answer}");
    }
    // the date's latest run, as a rerun of its file prints it
    let (code, body) = call(&s, "GET", "/v1/recon/2026-11-20", Some(&t.viewer), "");
    assert_eq!(code, 200, "{body}");
    let f = fixture("channel-2026-11-20.csv").display().to_string();
    let rerun = value(&ok(clearing(
        d,
        &[
            "recon",
            "--file",
            &f,
            "--date",
            "2026-11-20",
            "--format",
            "json",
        ],
    )));
    assert_eq!(value(&body), rerun);
    // reference loads are the admin's
    let fees = std::fs::read_to_string(fixture("fees.toml")).unwrap();
    let body = serde_json::json!({ "fees": fees }).to_string();
    assert_eq!(
        call(&s, "POST", "/v1/fees", Some(&t.operator), &body).0,
        403
    );
    let (code, loaded) = call(&s, "POST", "/v1/fees", Some(&t.admin), &body);
    assert_eq!(code, 200, "{loaded}");
    assert_eq!(
        value(&loaded)["changed"],
        true,
        "no holidays: another calendar"
    );
    let (code, body) = call(
        &s,
        "POST",
        "/v1/registry",
        Some(&t.admin),
        r#"{"intermediaries": 1}"#,
    );
    assert_eq!(code, 400);
    assert!(
        value(&body)["error"]
            .as_str()
            .unwrap()
            .starts_with("merchants:"),
        "{body}"
    );
    // metrics: any token; Prometheus text with the routes answered
    assert_eq!(call(&s, "GET", "/metrics", None, "").0, 401);
    let (code, text) = call(&s, "GET", "/metrics", Some(&t.viewer), "");
    assert_eq!(code, 200);
    let samples: Vec<(String, f64)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample: {l}"));
            (
                name.to_string(),
                v.parse::<f64>().unwrap_or_else(|_| panic!("value: {l}")),
            )
        })
        .collect();
    let sample = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert!(
        sample(r#"clearing_http_requests_total{route="/v1/settlement/{date}",status="200"}"#)
            >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(r#"clearing_http_requests_total{route="/v1/payouts/{date}/approve",status="409"}"#)
            >= Some(1.0)
    );
    assert_eq!(
        sample(r#"clearing_payout_lines{status="pending"}"#),
        Some(3.0),
        "{text}"
    );
    assert!(text.contains("clearing_build_info{version="), "{text}");
    let breaks = |c: &str, r: &str| {
        sample(&format!(
            "clearing_reconciliation_breaks{{category=\"{c}\",resolution=\"{r}\"}}"
        ))
    };
    assert_eq!(
        breaks("duplicate_in_channel", "ledger"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        breaks("missing_in_channel", "unresolved"),
        Some(5.0),
        "{text}"
    );
    assert!(
        text.contains("clearing_http_request_duration_seconds_bucket{route="),
        "{text}"
    );
    assert!(
        !text.contains("822584053110001"),
        "no merchant id as a label"
    );
    // the OpenAPI document lists every route with its method
    let (code, doc) = call(&s, "GET", "/v1/openapi.json", None, "");
    assert_eq!(code, 200);
    let doc = value(&doc);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (m, path) in routes {
        let template = path
            .replace("2026-11-20", "{date}")
            .replace("2026-11-23", "{date}")
            .replace("432100000007", "{id}")
            .replace("822584053110001", "{id}");
        let op = &doc["paths"][&template][m.to_lowercase()];
        assert!(op.is_object(), "{m} {template} is not in the document");
        assert!(op["responses"]["403"].is_object(), "{m} {template}");
    }
    // the dashboard comes from the binary and reads only documented routes
    let (code, page) = call(&s, "GET", "/", None, "");
    assert_eq!(code, 200);
    assert!(page.starts_with("<!doctype html>"), "{page}");
    for outside in ["src=\"http", "href=\"http", "src=\"//", "@import"] {
        assert!(!page.contains(outside), "the page loads {outside}…");
    }
    for used in [
        "/v1/settlement/",
        "/v1/risk/",
        "/v1/recon/",
        "/v1/payouts/",
        "/v1/txn/",
    ] {
        assert!(page.contains(used), "{used}");
        assert!(
            doc["paths"]
                .as_object()
                .unwrap()
                .keys()
                .any(|p| p.starts_with(used)),
            "{used} is not in the OpenAPI document"
        );
    }
    // unauthenticated health
    assert_eq!(call(&s, "GET", "/healthz", None, "").0, 200);
    assert_eq!(call(&s, "GET", "/readyz", None, "").0, 200);
    // SIGTERM stops it cleanly
    let mut child = s.child.into_inner();
    terminate(child.id());
    assert!(child.wait().unwrap().success());
}

/// SIGTERM to a process.
fn terminate(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_body_over_the_limit_is_413_and_requests_past_the_rate_are_429() {
    let dir = reconciled_day();
    let file = dir.path().join("tokens.toml");
    let t = tokens(&file);
    let s = serve(
        dir.path(),
        &file,
        &[],
        &["--body-limit-bytes", "1000", "--requests-per-minute", "20"],
    );
    let big = "x".repeat(5000);
    assert_eq!(
        call(&s, "POST", "/v1/transactions", Some(&t.operator), &big).0,
        413
    );
    let mut codes = Vec::new();
    for _ in 0..25 {
        codes.push(call(&s, "GET", "/v1/digest", Some(&t.viewer), "").0);
    }
    assert!(codes[..19].iter().all(|c| *c == 200), "{codes:?}");
    assert_eq!(*codes.last().unwrap(), 429);
    // another token has its own rate
    assert_eq!(call(&s, "GET", "/v1/digest", Some(&t.admin), "").0, 200);
}

#[test]
fn on_kafka_the_service_answers_what_the_commands_print() {
    let dir = tempfile::tempdir().unwrap();
    let broker = clearing_testkit::test_broker();
    let prefix = format!("serve{}", std::process::id());
    let k = [
        "--kafka",
        broker.as_str(),
        "--topic-prefix",
        prefix.as_str(),
        "--partitions",
        "4",
    ];
    let run = |args: &[&str]| {
        let mut all = k.to_vec();
        all.extend_from_slice(args);
        ok(clearing(dir.path(), &all))
    };
    let f = |n: &str| fixture(n).display().to_string();
    run(&[
        "fees",
        "load",
        &f("fees.toml"),
        "--holidays",
        &f("holidays.txt"),
    ]);
    run(&[
        "registry",
        "load",
        "--merchants",
        &f("merchants.jsonl"),
        "--intermediaries",
        &f("intermediaries.jsonl"),
    ]);
    let file = dir.path().join("tokens.toml");
    let t = tokens(&file);
    let s = serve(dir.path(), &file, &k, &[]);
    // transactions posted to the service are recorded on the topic
    let body = std::fs::read_to_string(fixture("transactions.jsonl")).unwrap();
    let (code, summary) = call(&s, "POST", "/v1/transactions", Some(&t.operator), &body);
    assert_eq!(code, 200, "{summary}");
    assert_eq!(value(&summary), common::expected("expected_ingest.json"));
    let (_, report) = call(&s, "GET", "/v1/settlement/2026-11-20", Some(&t.viewer), "");
    assert_eq!(
        value(&report),
        common::expected("expected_settlement_2026-11-20.json")
    );
    let cli = run(&[
        "report",
        "settlement",
        "--date",
        "2026-11-20",
        "--format",
        "json",
    ]);
    assert_eq!(value(&report), value(&cli));
    // what the service ingested is counted by outcome and reject reason
    let (_, text) = call(&s, "GET", "/metrics", Some(&t.viewer), "");
    assert!(
        text.contains("clearing_ingest_lines_total{outcome=\"accepted\"} 16"),
        "{text}"
    );
    assert!(
        text.contains("clearing_rejects_total{reason=\"invalid_json\"} 1"),
        "{text}"
    );
}

/// `bench --serve` drives a real service from another process: every
/// figure is there, every read answered, every posted line accounted for
/// (accepted, duplicate or rejected), and no time is asserted.
#[test]
fn the_service_benchmark_drives_every_route_it_reports() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(common::BIN)
        .args(["bench", "--serve", "--txns", "3000", "--merchants", "50"])
        .args(["--serve-secs", "1", "--clients", "2", "--post-txns", "700"])
        .args(["--post-lines", "200", "--format", "json", "--work-dir"])
        .arg(work.path())
        .env_remove("CLEARING_KAFKA")
        .output()
        .unwrap();
    let fig = value(&ok(out));
    for route in ["settlement", "story", "statement"] {
        assert!(fig[route]["requests"].as_u64().unwrap() > 0, "{fig}");
        assert!(fig[route]["p99_ms"].as_f64().unwrap() >= fig[route]["p50_ms"].as_f64().unwrap());
    }
    let post = &fig["post_transactions"];
    let posted = std::fs::read_to_string(work.path().join("next-day/transactions.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    let counted = ["accepted", "duplicates", "rejected"]
        .iter()
        .map(|k| post[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(counted, posted, "{fig}");
    assert!(
        post["accepted"].as_u64().unwrap() > posted * 9 / 10,
        "{fig}"
    );
    assert_eq!(post["posts"].as_u64(), Some(posted.div_ceil(200)), "{fig}");
}
