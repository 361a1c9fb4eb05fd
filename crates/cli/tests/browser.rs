//! The dashboard in a real browser: Debian's chromium, headless, driven by
//! playwright-core (both installed by `deploy/test.sh`) through
//! `tests/browser/dashboard.cjs`. An operator signs in and reads the
//! settlement totals, resolves a break and prepares the batch through the
//! page; an approver signs in and approves it; the API then reports what
//! the page did. Screenshots of each screen go to `target/screenshots/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::service::{reconciled_day, serve, token};
use serde_json::Value;

fn get(url: &str, token: &str) -> Value {
    let body = ureq::get(url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_operator_and_an_approver_work_the_day_through_the_dashboard_in_chromium() {
    let node_path = std::env::var("CLEARING_TEST_NODE_PATH").expect(
        "CLEARING_TEST_NODE_PATH is not set: run ./deploy/test.sh, which installs playwright-core and chromium",
    );
    let dir = reconciled_day();
    let d = dir.path();
    let tokens = d.join("tokens.toml");
    let olga = token(&tokens, "olga", "operator");
    let bob = token(&tokens, "bob", "approver");
    let service = serve(d, &tokens, &[], &[]);
    let url = service.url.clone();
    let shots = screenshots();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/dashboard.cjs");
    let out = Command::new("node")
        .arg(&script)
        .args([&url, &olga, &bob])
        .arg(&shots)
        .args(["2026-11-20", "2026-11-23"])
        .env("NODE_PATH", &node_path)
        .output()
        .expect("node (Debian's nodejs, or the machine's)");
    assert!(
        out.status.success(),
        "the browser run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    // the page showed the API's totals
    let s = get(&format!("{url}/v1/settlement/2026-11-20"), &olga);
    assert_eq!(seen["total_net"], s["totals"]["net"], "{seen}");
    assert_eq!(seen["total_sales"], s["totals"]["sales_amount"]);
    let risk = get(&format!("{url}/v1/risk/2026-11-20"), &olga);
    assert_eq!(seen["flagged"], risk["flagged"].as_array().unwrap().len());
    assert_eq!(
        seen["exposure_bars"],
        risk["exposure"].as_array().unwrap().len()
    );
    // the break resolved through the page is resolved, by the operator
    let run = get(&format!("{url}/v1/recon/2026-11-20"), &olga);
    let r = &seen["resolved"];
    let b = run["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["terminal_id"] == r["terminal_id"]
                && b["rrn"] == r["rrn"]
                && b["txn_type"] == r["txn_type"]
        })
        .unwrap_or_else(|| panic!("{r} not among {run}"));
    assert_eq!(b["resolution"]["decision"], "ledger", "{b}");
    assert_eq!(b["resolution"]["operator"], "olga");
    assert_eq!(b["resolution"]["remark"], "checked on the dashboard");
    // prepared by one token, approved by the other
    let batch = get(&format!("{url}/v1/payouts/2026-11-23"), &bob);
    assert_eq!(batch["prepared_by"], "olga");
    assert_eq!(batch["approved_by"], "bob");
    assert!(seen["approved"]
        .as_str()
        .unwrap()
        .contains("approved by bob"));
    assert_eq!(seen["story_txn"], "P20261120000001");
    // nothing from outside the service, no full card number on screen
    assert_eq!(seen["outside"], serde_json::json!([]));
    // the fixture's only full card number (its first line) is masked
    let shown = seen["shown"].as_str().unwrap();
    assert!(shown.contains("432100000007"), "the story is on the page");
    assert!(
        !shown.contains("6228480012345678"),
        "a full card number is shown"
    );
    for shot in ["dashboard.png", "breaks.png", "payout.png", "story.png"] {
        let bytes = std::fs::read(shots.join(shot)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{shot}"
        );
    }
}
