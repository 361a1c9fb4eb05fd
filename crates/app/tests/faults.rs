//! Faults swept over every write point (issue 15): a day's whole job —
//! fee schedule, registry, ingest, projection, reconciliation, two break
//! resolutions, and a payout batch prepared, approved, exported and
//! answered by the bank — is run
//! once counting the points where the ledger writes to its storage; then,
//! for each point, in a fresh ledger, that write fails (as a full or dying
//! disk fails it: an error the process handles, or the process dying there
//! with what it wrote left as it is). After each fault the whole job is
//! run again, as an operator reruns it, and the ledger must equal a clean
//! run's: the same digest (the clock is fixed), the same reports, and the
//! same reconciliation.

mod common;

use clearing_app::core::recon::{MatchKey, ReconType};
use clearing_app::core::resolution::Decision;
use clearing_app::log::faults;
use clearing_app::resolve::Resolve;
use clearing_app::{AppError, Config, Layout, ReadLedger, Recorder};
use common::*;

/// What the job leaves: the digest, the reports of both days, the
/// reconciliation's counts.
type Outcome = (String, Vec<String>);

fn job(cfg: &Config) -> Result<(), AppError> {
    {
        let mut r = Recorder::open(cfg.live()?)?;
        let (fees, holidays) = (read("fees.toml"), read("holidays.txt"));
        r.load_fees(
            named("fees.toml", &fees),
            Some(named("holidays.txt", &holidays)),
        )?;
        let (m, i) = (read("merchants.jsonl"), read("intermediaries.jsonl"));
        r.load_registry(
            named("merchants.jsonl", &m),
            Some(named("intermediaries.jsonl", &i)),
        )?;
        let txns = read("transactions.jsonl");
        r.ingest("transactions.jsonl", txns.as_bytes(), |_| {})?;
    }
    clearing_app::project(cfg.live()?)?;
    let mut r = Recorder::open(cfg.live()?)?;
    let channel = read("channel-2026-11-20.csv");
    r.reconcile(
        "channel-2026-11-20.csv",
        channel.as_bytes(),
        Layout::Csv,
        "2026-11-20".parse().unwrap(),
    )?;
    resolve(&mut r, "432100000099", Decision::Channel)?;
    resolve(&mut r, "432100000002", Decision::Ledger)?;
    let p = "2026-11-23".parse().unwrap();
    r.prepare_payout(p, "alice")?;
    r.approve_payout(p, "bob")?;
    let mut csv = String::new();
    r.export_payout(p, None, |c| {
        csv = c.to_string();
        Ok(())
    })?;
    let mut bank = String::from("payee_type,payee_id,amount,status,reason\n");
    for (i, row) in csv.lines().skip(1).enumerate() {
        let f: Vec<&str> = row.split(',').collect();
        let status = if i == 0 { "failed" } else { "paid" };
        bank += &format!("{},{},{},{status},\n", f[1], f[2], f[5]);
    }
    r.record_bank_result(p, named("bank.csv", &bank), None)?;
    Ok(())
}

/// Resolves a sale break of the 20th; a rerun finding it resolved goes on,
/// as an operator would.
fn resolve(r: &mut Recorder, rrn: &str, decision: Decision) -> Result<(), AppError> {
    let terminal = if rrn.ends_with("99") {
        "10000001"
    } else {
        "10000002"
    };
    let done = r.resolve_break(&Resolve {
        date: "2026-11-20".parse().unwrap(),
        key: MatchKey {
            terminal_id: terminal.into(),
            rrn: rrn.into(),
            txn_type: ReconType::Sale,
        },
        decision,
        operator: "li",
        remark: "checked",
    });
    match done {
        Err(e) if e.to_string().contains("already resolved") => Ok(()),
        other => other.map(|_| ()),
    }
}

fn outcome(cfg: &Config) -> Outcome {
    let l = ReadLedger::open(cfg).unwrap();
    let mut reports = Vec::new();
    for d in ["2026-11-20", "2026-11-21"] {
        let d = d.parse().unwrap();
        reports.push(serde_json::to_string(&l.settlement(d).unwrap()).unwrap());
        reports.push(serde_json::to_string(&l.risk(d).unwrap()).unwrap());
    }
    let run = l
        .projector()
        .recon_latest("2026-11-20".parse().unwrap())
        .unwrap()
        .expect("the run is recorded");
    reports.push(serde_json::to_string(&run.value).unwrap());
    let p = "2026-11-23".parse().unwrap();
    reports.push(serde_json::to_string(&l.payout(p).unwrap()).unwrap());
    let d = "2026-11-20".parse().unwrap();
    reports.push(serde_json::to_string(&l.adjustments(d).unwrap()).unwrap());
    (l.digest().unwrap().digest, reports)
}

#[test]
fn a_failure_at_any_write_point_then_a_rerun_gives_a_clean_runs_ledger() {
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = fixed_clock(clean_dir.path());
    faults::count();
    job(&clean).unwrap();
    let points = faults::reached();
    let expected = outcome(&clean);
    assert!(points >= 10, "only {points} write points");

    let mut swept = 0;
    for crash in [false, true] {
        for n in 1..=points {
            let dir = tempfile::tempdir().unwrap();
            let cfg = fixed_clock(dir.path());
            faults::arm(n, crash);
            let first = job(&cfg);
            assert!(faults::fired(), "point {n} was not reached");
            let err = first.expect_err("the job reports the failed write");
            assert!(
                err.to_string().lines().count() == 1,
                "point {n}: one line: {err}"
            );
            faults::count();
            job(&cfg).unwrap_or_else(|e| panic!("point {n} (crash {crash}): the rerun: {e}"));
            assert_eq!(outcome(&cfg), expected, "point {n} (crash {crash})");
            swept += 1;
        }
    }
    eprintln!(
        "fault points swept: {swept} ({points} write points, each as an error and as a crash)"
    );
}
