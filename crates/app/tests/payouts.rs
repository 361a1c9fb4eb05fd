//! SPEC §13 and §14 through the library, given / when / then, on the
//! day1 fixture (hand-computed nets in tests/fixtures/day1/README.md) and
//! on small days written here.

mod common;

use chrono::NaiveDate;
use clearing_app::core::payout::{BatchStatus, LineStatus, PayeeType};
use clearing_app::core::recon::{MatchKey, ReconType};
use clearing_app::core::resolution::Decision;
use clearing_app::core::{Cut, Fen};
use clearing_app::payout::PayoutView;
use clearing_app::resolve::Resolve;
use clearing_app::{Config, ErrorKind, Layout, ReadLedger, Recorder};
use common::*;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn fen(s: &str) -> Fen {
    Fen::parse_signed(s).unwrap()
}

fn recorder(cfg: &Config) -> Recorder {
    Recorder::open(cfg.live().unwrap()).unwrap()
}

/// The amount of a payee's line, if it has one.
fn line(v: &PayoutView, payee_id: &str) -> Option<Fen> {
    v.lines
        .iter()
        .find(|l| l.payee_id == payee_id)
        .map(|l| l.amount)
}

fn carried(v: &PayoutView, payee_id: &str) -> Option<Fen> {
    v.carried
        .iter()
        .find(|c| c.payee_id == payee_id)
        .map(|c| c.amount)
}

const M1: &str = "822584053110001";
const M3: &str = "822584053110003";

/// A sale (or refund of `original`) of the exempt hospital M3: no fee, so
/// its contribution is its amount.
fn m3(id: &str, original: Option<&str>, amount: &str, at: &str) -> String {
    let (kind, original) = match original {
        Some(o) => ("refund", format!("\"{o}\"")),
        None => ("sale", "null".to_string()),
    };
    format!(
        r#"{{"txn_id": "{id}", "type": "{kind}", "original_txn_id": {original}, "merchant_id": "{M3}", "terminal_id": "10000004", "mcc": "8062", "channel": "wechat", "amount": "{amount}", "currency": "CNY", "result": "approved", "decline_code": null, "rrn": "9{id}", "stan": null, "card": null, "occurred_at": "{at}"}}"#
    ) + "\n"
}

fn ingest(cfg: &Config, lines: &str) {
    let s = recorder(cfg)
        .ingest("t.jsonl", lines.as_bytes(), |_| {})
        .unwrap();
    assert_eq!(s.rejected.values().sum::<u64>(), 0, "{s:?}");
}

/// A ledger with the fixture's reference data and nothing else.
fn empty_day() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    load_reference(&mut recorder(&cfg));
    (dir, cfg)
}

/// Prepares, approves (someone else), exports and answers the batch of
/// `p`: every line paid but those of `failed`.
fn pay(cfg: &Config, p: &str, failed: &[&str]) -> PayoutView {
    let mut r = recorder(cfg);
    r.prepare_payout(date(p), "alice").unwrap();
    r.approve_payout(date(p), "bob").unwrap();
    let mut csv = String::new();
    r.export_payout(date(p), None, |c| {
        csv = c.to_string();
        Ok(())
    })
    .unwrap();
    let mut bank = String::from("payee_type,payee_id,amount,status,reason\n");
    for row in csv.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        let status = if failed.contains(&f[2]) {
            "failed"
        } else {
            "paid"
        };
        bank += &format!("{},{},{},{status},\n", f[1], f[2], f[5]);
    }
    r.record_bank_result(date(p), named("bank.csv", &bank), None)
        .unwrap()
        .batch
}

#[test]
fn given_a_payee_whose_refunds_exceed_its_sales_when_two_batches_follow_then_its_deficit_is_carried_then_covered(
) {
    let (_d, cfg) = empty_day();
    // Friday 11-20: 300.00 of sales, paid Monday 11-23
    ingest(
        &cfg,
        &(m3("S1", None, "100.00", "2026-11-20T10:00:00+08:00")
            + &m3("S2", None, "200.00", "2026-11-20T11:00:00+08:00")),
    );
    let first = pay(&cfg, "2026-11-23", &[]);
    assert_eq!(line(&first, M3), Some(fen("300.00")));
    // Monday 11-23: refunds of 250.00 and a sale of 50.00: −200.00
    ingest(
        &cfg,
        &(m3("R1", Some("S2"), "200.00", "2026-11-23T10:00:00+08:00")
            + &m3("R2", Some("S1"), "50.00", "2026-11-23T10:30:00+08:00")
            + &m3("S3", None, "50.00", "2026-11-23T11:00:00+08:00")),
    );
    let second = pay(&cfg, "2026-11-24", &[]);
    assert_eq!(line(&second, M3), None);
    assert_eq!(carried(&second, M3), Some(fen("-200.00")));
    // Tuesday 11-24: 500.00 of sales pays 300.00
    ingest(&cfg, &m3("S4", None, "500.00", "2026-11-24T10:00:00+08:00"));
    let third = pay(&cfg, "2026-11-25", &[]);
    assert_eq!(line(&third, M3), Some(fen("300.00")));
    assert_eq!(carried(&third, M3), None);
}

#[test]
fn given_a_batch_when_a_late_record_of_its_date_arrives_then_it_goes_to_the_next_batch() {
    let (_d, cfg) = empty_day();
    ingest(&cfg, &m3("S1", None, "100.00", "2026-11-20T10:00:00+08:00"));
    let mut r = recorder(&cfg);
    let batch = r.prepare_payout(date("2026-11-23"), "alice").unwrap();
    assert_eq!(line(&batch, M3), Some(fen("100.00")));
    drop(r);
    // a record of the 20th (payout date 11-23) recorded after the batch
    ingest(&cfg, &m3("S2", None, "40.00", "2026-11-20T12:00:00+08:00"));
    let mut r = recorder(&cfg);
    // the batch's own date prints the batch and records nothing
    assert_eq!(
        r.prepare_payout(date("2026-11-23"), "carol").unwrap(),
        batch
    );
    let next = r.prepare_payout(date("2026-11-24"), "alice").unwrap();
    assert_eq!(line(&next, M3), Some(fen("40.00")));
}

#[test]
fn given_a_failed_line_when_the_next_batch_is_prepared_then_it_is_owed_again_with_the_new_money() {
    let (_d, cfg) = empty_day();
    ingest(&cfg, &m3("S1", None, "100.00", "2026-11-20T10:00:00+08:00"));
    let first = pay(&cfg, "2026-11-23", &[M3]);
    assert_eq!(first.lines[0].status, LineStatus::Failed);
    assert_eq!(first.status, BatchStatus::Exported);
    ingest(&cfg, &m3("S2", None, "25.00", "2026-11-23T10:00:00+08:00"));
    let second = pay(&cfg, "2026-11-24", &[]);
    assert_eq!(line(&second, M3), Some(fen("125.00")));
    assert_eq!(second.lines[0].status, LineStatus::Paid);
    // once paid, nothing is owed: the next batch has no line
    let third = recorder(&cfg)
        .prepare_payout(date("2026-11-25"), "alice")
        .unwrap();
    assert!(third.lines.is_empty(), "{third:?}");
    assert_eq!(third.totals.amount, Fen::ZERO);
}

#[test]
fn given_the_fixture_day_when_its_batch_is_prepared_then_an_intermediarys_line_is_the_sum_of_its_sub_merchants_rows(
) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    recorded(&cfg);
    let p = date("2026-11-23");
    let batch = recorder(&cfg).prepare_payout(p, "alice").unwrap();
    // the settlement rows of both business dates paid by 11-23, summed by
    // their intermediary
    let l = ReadLedger::open(&cfg).unwrap();
    let mut agg = Fen::ZERO;
    let mut rows = 0;
    for d in ["2026-11-20", "2026-11-21"] {
        for m in l.settlement(date(d)).unwrap().merchants {
            if m.intermediary_id.as_deref() == Some("AGG001") && m.payout_date <= p {
                agg = agg.checked_add(m.net).unwrap();
                rows += 1;
            }
        }
    }
    assert!(rows >= 2, "M2 (D0) and M4 (T1) both count");
    assert_eq!(line(&batch, "AGG001"), Some(agg));
    assert_eq!(
        agg,
        fen("626.73"),
        "229.13 + 298.20 + 99.40 (M4's 11-21 row), by hand"
    );
    let agg_line = batch.lines.iter().find(|l| l.payee_id == "AGG001").unwrap();
    assert_eq!(agg_line.payee_type, PayeeType::Intermediary);
    // 一清 merchants are paid themselves, by hand
    assert_eq!(line(&batch, M1), Some(fen("27416.88")));
    assert_eq!(line(&batch, M3), Some(fen("5010.00")));
    assert!(line(&batch, "822584053110002").is_none());
    assert_eq!(batch.status, BatchStatus::Prepared);
    assert_eq!(batch.approved_by, None);
}

fn key(terminal: &str, rrn: &str, t: ReconType) -> MatchKey {
    MatchKey {
        terminal_id: terminal.into(),
        rrn: rrn.into(),
        txn_type: t,
    }
}

/// The fixture day reconciled against its channel file.
fn reconciled() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    recorded(&cfg);
    let file = read("channel-2026-11-20.csv");
    recorder(&cfg)
        .reconcile(
            "channel.csv",
            file.as_bytes(),
            Layout::Csv,
            date("2026-11-20"),
        )
        .unwrap();
    (dir, cfg)
}

fn resolve(cfg: &Config, k: MatchKey, decision: Decision) -> Result<Fen, clearing_app::AppError> {
    recorder(cfg)
        .resolve_break(&Resolve {
            date: date("2026-11-20"),
            key: k,
            decision,
            operator: "li",
            remark: "checked with the channel",
        })
        .map(|v| v.resolution.adjustment.unwrap_or(Fen::ZERO))
}

#[test]
fn given_the_fixtures_breaks_when_the_channel_stands_then_each_adjustment_follows_its_category_and_joins_the_batch(
) {
    let (_d, cfg) = reconciled();
    use Decision::*;
    use ReconType::*;
    let cases = [
        (key("10000001", "432100000099", Sale), "99.40"), // missing_in_ledger: 100.00 − 0.60
        (key("10000001", "432100000004", Sale), "99.40"), // status_mismatch
        (key("10000003", "432100000008", Sale), "1.00"),  // amount_mismatch: 200.24 − 199.24
        (key("10000001", "432100000007", Refund), "-14.00"), // fee_mismatch: −(2499.00 − 2485.00)
        (key("10000001", "432100000003", Sale), "-9980.00"), // missing_in_channel: −(10000 − 20)
    ];
    for (k, want) in &cases {
        assert_eq!(
            resolve(&cfg, k.clone(), Channel).unwrap(),
            fen(want),
            "{k:?}"
        );
    }
    // the ledger standing moves nothing
    assert_eq!(
        resolve(&cfg, key("10000002", "432100000002", Sale), Ledger).unwrap(),
        Fen::ZERO
    );
    let l = ReadLedger::open(&cfg).unwrap();
    let adj = l.adjustments(date("2026-11-20")).unwrap();
    assert_eq!(adj.adjustments.len(), 5);
    assert_eq!(adj.totals.amount, fen("-9794.20"));
    let merchants: Vec<&str> = adj
        .adjustments
        .iter()
        .map(|a| a.merchant_id.as_str())
        .collect();
    let mut sorted = merchants.clone();
    sorted.sort();
    assert_eq!(merchants, sorted);
    // the §7 report does not change
    let expected: serde_json::Value =
        serde_json::from_str(&read("expected_settlement_2026-11-20.json")).unwrap();
    let report = serde_json::to_value(l.settlement(date("2026-11-20")).unwrap()).unwrap();
    assert_eq!(report, expected);
    drop(l);
    // the adjustments are paid with the rows: M1 27416.88 + 99.40 + 99.40
    // − 14.00 − 9980.00; AGG001 626.73 + 1.00
    let batch = recorder(&cfg)
        .prepare_payout(date("2026-11-23"), "alice")
        .unwrap();
    assert_eq!(line(&batch, M1), Some(fen("17621.68")));
    assert_eq!(line(&batch, "AGG001"), Some(fen("627.73")));
    // the rerun of the file and the story say how the break was resolved
    let file = read("channel-2026-11-20.csv");
    let rerun = recorder(&cfg)
        .reconcile(
            "channel.csv",
            file.as_bytes(),
            Layout::Csv,
            date("2026-11-20"),
        )
        .unwrap();
    assert!(rerun.already_recorded);
    let note = &rerun.resolutions[&key("10000001", "432100000099", Sale)];
    assert_eq!((note.decision, note.operator.as_str()), (Channel, "li"));
    assert_eq!(rerun.resolutions.len(), 6);
    let mut l = ReadLedger::open(&cfg).unwrap();
    let story = serde_json::to_value(l.stories("432100000008").unwrap()).unwrap();
    let recon = &story["transactions"][0]["reconciliation"][0];
    assert_eq!(recon["resolution"]["decision"], "channel", "{recon}");
    assert_eq!(recon["resolution"]["operator"], "li");
}

/// Runs `f` on a recorder that is closed again before it returns (the
/// embedded log admits one process at a time).
fn with<T>(cfg: &Config, f: impl FnOnce(&mut Recorder) -> T) -> T {
    let mut r = recorder(cfg);
    f(&mut r)
}

fn resolve_with(
    r: &mut Recorder,
    k: MatchKey,
    d: Decision,
    remark: &str,
) -> clearing_app::AppError {
    r.resolve_break(&Resolve {
        date: date("2026-11-20"),
        key: k,
        decision: d,
        operator: "li",
        remark,
    })
    .unwrap_err()
}

#[test]
fn refusals_name_the_reason_and_change_nothing() {
    let (_d, cfg) = reconciled();
    let digest = || ReadLedger::open(&cfg).unwrap().digest().unwrap().digest;
    let p = date("2026-11-23");
    with(&cfg, |r| r.prepare_payout(p, "alice").unwrap());
    let before = digest();
    let refused = |e: clearing_app::AppError, kind: ErrorKind, words: &str| {
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(words), "{e}");
        assert_eq!(digest(), before, "after: {e}");
    };
    let e = with(&cfg, |r| r.approve_payout(p, "alice").unwrap_err());
    refused(e, ErrorKind::Conflict, "another operator");
    let e = with(&cfg, |r| {
        r.export_payout(p, None, |_| panic!("no file for an unapproved batch"))
            .unwrap_err()
    });
    refused(e, ErrorKind::Conflict, "not approved");
    let e = with(&cfg, |r| {
        r.prepare_payout(date("2026-11-20"), "alice").unwrap_err()
    });
    refused(e, ErrorKind::Conflict, "date order");
    let e = with(&cfg, |r| {
        r.record_bank_result(p, named("bank.csv", "x\n"), None)
            .unwrap_err()
    });
    refused(e, ErrorKind::Conflict, "not been exported");
    let e = with(&cfg, |r| {
        resolve_with(r, key("1", "2", ReconType::Sale), Decision::Ledger, "x")
    });
    refused(e, ErrorKind::NotFound, "no break");
    let e = with(&cfg, |r| {
        resolve_with(
            r,
            key("10000001", "432100000099", ReconType::Sale),
            Decision::Ledger,
            "  ",
        )
    });
    refused(e, ErrorKind::Input, "--remark");
    let e = with(&cfg, |r| {
        resolve_with(
            r,
            key("10000002", "432100000002", ReconType::Sale),
            Decision::Channel,
            "x",
        )
    });
    refused(e, ErrorKind::Conflict, "duplicate_in_channel");

    // a break resolved once is not resolved again
    resolve(
        &cfg,
        key("10000002", "432100000002", ReconType::Sale),
        Decision::Ledger,
    )
    .unwrap();
    let once = digest();
    let again = resolve(
        &cfg,
        key("10000002", "432100000002", ReconType::Sale),
        Decision::Ledger,
    )
    .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);
    assert!(again.to_string().contains("already resolved"), "{again}");
    assert_eq!(digest(), once);

    // the bank file: a wrong header is refused; bad lines are named and
    // change nothing
    with(&cfg, |r| {
        r.approve_payout(p, "bob").unwrap();
        r.export_payout(p, None, |_| Ok(())).unwrap();
    });
    let exported = digest();
    let e = with(&cfg, |r| {
        r.record_bank_result(p, named("bank.csv", "payee,amount\n"), None)
            .unwrap_err()
    });
    assert_eq!(e.kind(), ErrorKind::Input);
    assert!(e.to_string().contains("header"), "{e}");
    assert_eq!(digest(), exported);
    let bank = format!(
        "payee_type,payee_id,amount,status,reason\nmerchant,999,1.00,paid,\nmerchant,{M3},5010.01,paid,\n"
    );
    let (v, again) = with(&cfg, |r| {
        let v = r
            .record_bank_result(p, named("bank.csv", &bank), None)
            .unwrap();
        let again = r
            .record_bank_result(p, named("bank.csv", &bank), None)
            .unwrap();
        (v, again)
    });
    let bad: Vec<(u64, &str)> = v
        .bad_lines
        .iter()
        .map(|b| (b.line, b.payee_id.as_str()))
        .collect();
    assert_eq!(bad, [(2, "999"), (3, M3)]);
    assert!(v
        .batch
        .lines
        .iter()
        .all(|l| l.status == LineStatus::Pending));
    // the same file again is recorded once
    assert!(v.recorded && !again.recorded);
}

#[test]
fn a_replay_to_a_moment_between_prepare_and_approve_shows_the_batch_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    recorded(&cfg);
    let p = date("2026-11-23");
    recorder(&cfg).prepare_payout(p, "alice").unwrap();
    let prepared = ReadLedger::open(&cfg).unwrap().digest().unwrap();
    let mut r = recorder(&cfg);
    r.approve_payout(p, "bob").unwrap();
    r.export_payout(p, None, |_| Ok(())).unwrap();
    drop(r);
    let into = tempfile::tempdir().unwrap();
    let replayed = clearing_app::replay(
        cfg.live().unwrap(),
        &Cut::Before(prepared.log_position.clone()),
        into.path(),
        clearing_app::ReplayOptions {
            leg_events: 1_000,
            from_scratch: false,
        },
        |_, _| {},
    )
    .unwrap();
    assert_eq!(replayed.digest.digest, prepared.digest);
    let then = ReadLedger::open(&config(into.path()))
        .unwrap()
        .payout(p)
        .unwrap();
    assert_eq!(then.status, BatchStatus::Prepared);
    assert_eq!(then.approved_by, None);
    let now = ReadLedger::open(&cfg).unwrap().payout(p).unwrap();
    assert_eq!(now.status, BatchStatus::Exported);
    assert_eq!(now.approved_by.as_deref(), Some("bob"));
    assert_eq!(now.lines, then.lines);
}
