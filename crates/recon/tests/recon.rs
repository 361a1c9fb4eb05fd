//! Reconciliation runs on the embedded log: one test per category and per
//! precedence rule of SPEC §11, the held pool across days, bad lines,
//! reruns and the fixed-width layout.
//!
//! Merchant 822584053110001 is on the standard plan: credit card 0.6%, so a
//! 100.00 sale carries a 0.60 fee. Its terminals are 10000001 and 10000002.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use clearing_core::recon::{Category, ReconType};
use clearing_core::{Fen, Timestamp};
use clearing_log::embedded::EmbeddedLog;
use clearing_log::{EventLog, Topic, TopicNames};
use clearing_producer::{fees, ingest, load_fees, load_registry, record_events, Input, Writer};
use clearing_projector::Projector;
use clearing_recon::{reconcile, Layout, ReconError, Report};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/day1");
const HEADER: &str =
    "business_date,occurred_at,merchant_id,terminal_id,rrn,stan,card,txn_type,amount,fee\n";
const M: &str = "822584053110001";

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURE).join(name)).unwrap()
}

fn clock() -> Timestamp {
    Timestamp::parse("2026-11-22T09:00:00.000+08:00").unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// sled releases a store's lock from a background thread after the store
/// is dropped: a reopen right after may find it still held for a moment.
fn open_projector(dir: &Path) -> Projector {
    let start = std::time::Instant::now();
    loop {
        match Projector::open(dir) {
            Ok(p) => return p,
            Err(e) if start.elapsed() < std::time::Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("opening the projections: {e}"),
        }
    }
}

struct Ledger {
    dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
    wm: Writer,
}

impl Ledger {
    fn new() -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EmbeddedLog::open(dir.path(), TopicNames::with_prefix("t")).unwrap());
        let mut wm = Writer::open(log.clone(), dir.path()).unwrap();
        let schedule = fees::parse_fees("fees.toml", &read("fees.toml")).unwrap();
        let calendar = fees::parse_holidays("holidays.txt", &read("holidays.txt")).unwrap();
        load_fees(&mut wm, schedule, calendar, &clock()).unwrap();
        let (m, i) = (read("merchants.jsonl"), read("intermediaries.jsonl"));
        load_registry(
            &mut wm,
            ("merchants.jsonl", &m),
            Some(("intermediaries.jsonl", &i)),
            &clock(),
        )
        .unwrap();
        Ledger { dir, log, wm }
    }

    fn ingest(&mut self, lines: &[String]) {
        let text = lines.join("\n");
        let s = ingest(
            &mut self.wm,
            "t",
            Input::File(text.as_bytes()),
            &clock,
            |_| {},
        )
        .unwrap();
        assert!(s.rejected.is_empty(), "{s:?}");
    }

    fn recon_as(&mut self, d: &str, file: &str, layout: Layout) -> Result<Report, ReconError> {
        let mut p = open_projector(self.dir.path());
        p.catch_up(&*self.log, |_| {}).unwrap();
        let cutoff = self.wm.reference().cutoff().unwrap();
        let r = reconcile(
            &p,
            cutoff,
            "channel.csv",
            file.as_bytes(),
            layout,
            date(d),
            &clock(),
        )
        .map(|r| {
            record_events(&mut self.wm, r.events).unwrap();
            r.report
        });
        p.catch_up(&*self.log, |_| {}).unwrap();
        r
    }

    fn recon(&mut self, d: &str, file: &str) -> Report {
        self.recon_as(d, file, Layout::Csv).unwrap()
    }

    fn events(&self) -> u64 {
        let mut n = 0;
        let mut offset = 0;
        loop {
            let r = self.log.read(Topic::Events, 0, offset, 10_000).unwrap();
            let Some(last) = r.last() else { return n };
            offset = last.position.offset + 1;
            n += r.len() as u64;
        }
    }
}

// One positional argument per field of the record a test writes.
#[allow(clippy::too_many_arguments)]
fn txn(
    id: &str,
    kind: &str,
    orig: Option<&str>,
    terminal: &str,
    rrn: &str,
    amount: &str,
    at: &str,
    result: &str,
) -> String {
    let orig = orig.map_or("null".to_string(), |o| format!("\"{o}\""));
    format!(
        r#"{{"txn_id":"{id}","type":"{kind}","original_txn_id":{orig},"merchant_id":"{M}","terminal_id":"{terminal}","channel":"credit_card","amount":"{amount}","currency":"CNY","result":"{result}","rrn":"{rrn}","occurred_at":"{at}"}}"#
    )
}

fn sale(id: &str, rrn: &str, amount: &str, at: &str) -> String {
    txn(id, "sale", None, "10000001", rrn, amount, at, "approved")
}

fn line(d: &str, rrn: &str, kind: &str, amount: &str, fee: &str) -> String {
    format!("{d},{d}T12:00:00+08:00,{M},10000001,{rrn},000001,,{kind},{amount},{fee}\n")
}

fn file(lines: &[String]) -> String {
    format!("{HEADER}{}", lines.concat())
}

fn only(r: &Report, c: Category, n: u64) {
    for (cat, count) in &r.counts {
        let want = if *cat == c { n } else { 0 };
        assert_eq!(*count, want, "{} in {:?}", cat.as_str(), r.counts);
    }
}

const D: &str = "2026-11-20";
const NOON: &str = "2026-11-20T12:00:00+08:00";

#[test]
fn a_sale_in_the_file_with_the_same_amount_and_fee_is_matched() {
    let mut l = Ledger::new();
    l.ingest(&[sale("S1", "000000000001", "100.00", NOON)]);
    let r = l.recon(
        D,
        &file(&[line(D, "000000000001", "sale", "100.00", "0.60")]),
    );
    only(&r, Category::Matched, 1);
    assert!(r.breaks.is_empty());
}

#[test]
fn a_refund_matches_with_the_fee_it_gives_back() {
    let mut l = Ledger::new();
    l.ingest(&[
        sale("S1", "000000000001", "100.00", NOON),
        txn(
            "F1",
            "refund",
            Some("S1"),
            "10000001",
            "000000000002",
            "50.00",
            "2026-11-20T13:00:00+08:00",
            "approved",
        ),
    ]);
    let r = l.recon(
        D,
        &file(&[
            line(D, "000000000001", "sale", "100.00", "0.60"),
            line(D, "000000000002", "refund", "50.00", "0.30"),
        ]),
    );
    only(&r, Category::Matched, 2);
}

#[test]
fn a_line_the_ledger_never_recorded_is_missing_in_ledger() {
    let mut l = Ledger::new();
    let r = l.recon(D, &file(&[line(D, "000000000009", "sale", "1.00", "0.01")]));
    only(&r, Category::MissingInLedger, 1);
    assert_eq!(r.breaks[0].key.rrn, "000000000009");
}

#[test]
fn a_sale_the_channel_does_not_report_is_missing_in_channel() {
    let mut l = Ledger::new();
    l.ingest(&[sale("S1", "000000000001", "100.00", NOON)]);
    let r = l.recon(D, &file(&[]));
    only(&r, Category::MissingInChannel, 1);
    assert_eq!(r.breaks[0].txn_id.as_deref(), Some("S1"));
}

#[test]
fn a_different_amount_is_an_amount_mismatch_counted_once_per_pair() {
    let mut l = Ledger::new();
    l.ingest(&[sale("S1", "000000000001", "100.00", NOON)]);
    let r = l.recon(
        D,
        &file(&[line(D, "000000000001", "sale", "100.01", "0.60")]),
    );
    only(&r, Category::AmountMismatch, 1);
    assert_eq!(r.breaks[0].channel_amount, Some(Fen(10001)));
    assert_eq!(r.breaks[0].ledger_amount, Some(Fen(10000)));
}

#[test]
fn a_different_fee_is_a_fee_mismatch() {
    let mut l = Ledger::new();
    l.ingest(&[sale("S1", "000000000001", "100.00", NOON)]);
    let r = l.recon(
        D,
        &file(&[line(D, "000000000001", "sale", "100.00", "0.61")]),
    );
    only(&r, Category::FeeMismatch, 1);
}

#[test]
fn declined_voided_and_reversed_sales_in_the_file_are_status_mismatches() {
    let mut l = Ledger::new();
    l.ingest(&[
        txn(
            "S1",
            "sale",
            None,
            "10000001",
            "000000000001",
            "100.00",
            NOON,
            "declined",
        ),
        sale("S2", "000000000002", "100.00", NOON),
        txn(
            "V2",
            "void",
            Some("S2"),
            "10000001",
            "000000000003",
            "100.00",
            "2026-11-20T12:05:00+08:00",
            "approved",
        ),
        sale("S3", "000000000004", "100.00", NOON),
        txn(
            "R3",
            "reversal",
            Some("S3"),
            "10000001",
            "000000000005",
            "100.00",
            "2026-11-20T12:05:00+08:00",
            "approved",
        ),
    ]);
    let r = l.recon(
        D,
        &file(&[
            line(D, "000000000001", "sale", "100.00", "0.60"),
            line(D, "000000000002", "sale", "100.00", "0.60"),
            line(D, "000000000004", "sale", "100.00", "0.60"),
        ]),
    );
    only(&r, Category::StatusMismatch, 3);
}

#[test]
fn voided_sales_absent_from_the_file_are_not_breaks() {
    let mut l = Ledger::new();
    l.ingest(&[
        sale("S2", "000000000002", "100.00", NOON),
        txn(
            "V2",
            "void",
            Some("S2"),
            "10000001",
            "000000000003",
            "100.00",
            "2026-11-20T12:05:00+08:00",
            "approved",
        ),
        txn(
            "S1",
            "sale",
            None,
            "10000001",
            "000000000001",
            "100.00",
            NOON,
            "declined",
        ),
    ]);
    let r = l.recon(D, &file(&[]));
    only(&r, Category::Matched, 0);
}

#[test]
fn a_repeated_key_is_a_duplicate_and_the_first_copy_is_classified_normally() {
    let mut l = Ledger::new();
    l.ingest(&[sale("S1", "000000000001", "100.00", NOON)]);
    let r = l.recon(
        D,
        &file(&[
            line(D, "000000000001", "sale", "100.00", "0.60"),
            line(D, "000000000001", "sale", "100.00", "0.60"),
        ]),
    );
    assert_eq!(r.counts[&Category::Matched], 1);
    assert_eq!(r.counts[&Category::DuplicateInChannel], 1);
    assert_eq!(r.breaks.len(), 1);
    assert_eq!(
        r.breaks[0].line,
        Some(3),
        "the second copy, on line 3, is the duplicate"
    );
}

#[test]
fn duplicate_comes_before_missing_in_ledger() {
    let mut l = Ledger::new();
    let r = l.recon(
        D,
        &file(&[
            line(D, "000000000009", "sale", "1.00", "0.01"),
            line(D, "000000000009", "sale", "1.00", "0.01"),
        ]),
    );
    assert_eq!(r.counts[&Category::MissingInLedger], 1);
    assert_eq!(r.counts[&Category::DuplicateInChannel], 1);
}

#[test]
fn status_comes_before_amount_and_amount_before_fee() {
    let mut l = Ledger::new();
    l.ingest(&[
        sale("S2", "000000000002", "100.00", NOON),
        txn(
            "V2",
            "void",
            Some("S2"),
            "10000001",
            "000000000003",
            "100.00",
            "2026-11-20T12:05:00+08:00",
            "approved",
        ),
        sale("S4", "000000000004", "100.00", NOON),
    ]);
    let r = l.recon(
        D,
        &file(&[
            line(D, "000000000002", "sale", "99.00", "0.01"),
            line(D, "000000000004", "sale", "99.00", "0.01"),
        ]),
    );
    assert_eq!(r.counts[&Category::StatusMismatch], 1);
    assert_eq!(r.counts[&Category::AmountMismatch], 1);
    assert_eq!(r.counts[&Category::FeeMismatch], 0);
}

#[test]
fn the_key_includes_the_transaction_type() {
    let mut l = Ledger::new();
    l.ingest(&[sale("S1", "000000000001", "100.00", NOON)]);
    let r = l.recon(
        D,
        &file(&[line(D, "000000000001", "refund", "100.00", "0.60")]),
    );
    assert_eq!(r.counts[&Category::MissingInLedger], 1);
    assert_eq!(r.counts[&Category::MissingInChannel], 1);
}

#[test]
fn only_the_last_ten_minutes_before_cutoff_are_held() {
    let mut l = Ledger::new();
    l.ingest(&[
        sale("S1", "000000000001", "100.00", "2026-11-20T22:49:59+08:00"),
        sale("S2", "000000000002", "100.00", "2026-11-20T22:50:00+08:00"),
        sale("S3", "000000000003", "100.00", "2026-11-20T22:59:59+08:00"),
        // 23:00 already belongs to the 21st
        sale("S4", "000000000004", "100.00", "2026-11-20T23:00:00+08:00"),
    ]);
    let r = l.recon(D, &file(&[]));
    assert_eq!(r.counts[&Category::MissingInChannel], 1);
    assert_eq!(r.counts[&Category::Held], 2);
    let held: Vec<&str> = r.held.iter().map(|h| h.key.rrn.as_str()).collect();
    assert_eq!(held, ["000000000002", "000000000003"]);
    assert!(
        r.breaks.iter().all(|b| b.category != Category::Held),
        "held is not a break"
    );
}

#[test]
fn a_near_cutoff_sale_in_todays_file_is_matched_not_held() {
    let mut l = Ledger::new();
    l.ingest(&[sale(
        "S1",
        "000000000001",
        "100.00",
        "2026-11-20T22:55:00+08:00",
    )]);
    let r = l.recon(
        D,
        &file(&[line(D, "000000000001", "sale", "100.00", "0.60")]),
    );
    only(&r, Category::Matched, 1);
    assert!(r.held.is_empty());
}

const D2: &str = "2026-11-21";

#[test]
fn held_today_and_in_tomorrows_file_is_matched_tomorrow() {
    let mut l = Ledger::new();
    l.ingest(&[
        sale("S1", "000000000001", "100.00", "2026-11-20T22:55:00+08:00"),
        sale("S2", "000000000002", "100.00", "2026-11-21T10:00:00+08:00"),
    ]);
    let r = l.recon(D, &file(&[]));
    only(&r, Category::Held, 1);
    // the late line carries the later file's business date
    let r = l.recon(
        D2,
        &file(&[
            line(D2, "000000000001", "sale", "100.00", "0.60"),
            line(D2, "000000000002", "sale", "100.00", "0.60"),
        ]),
    );
    only(&r, Category::Matched, 2);
    assert_eq!(r.carried_in, 1);
}

#[test]
fn held_today_and_missing_tomorrow_is_missing_in_channel_tomorrow() {
    let mut l = Ledger::new();
    l.ingest(&[sale(
        "S1",
        "000000000001",
        "100.00",
        "2026-11-20T22:55:00+08:00",
    )]);
    l.recon(D, &file(&[]));
    let r = l.recon(D2, &file(&[]));
    only(&r, Category::MissingInChannel, 1);
    assert_eq!(r.breaks[0].txn_id.as_deref(), Some("S1"));
    assert!(r.held.is_empty(), "an item is held once, never twice");
}

#[test]
fn held_items_survive_a_restart_because_they_are_events() {
    let mut l = Ledger::new();
    l.ingest(&[sale(
        "S1",
        "000000000001",
        "100.00",
        "2026-11-20T22:55:00+08:00",
    )]);
    l.recon(D, &file(&[]));
    // a fresh process: reopen everything from the data dir, and rebuild the
    // projections from the log alone
    let Ledger { dir, log, wm } = l;
    drop((log, wm));
    std::fs::remove_dir_all(dir.path().join("projections")).unwrap();
    let log = Arc::new(EmbeddedLog::open(dir.path(), TopicNames::with_prefix("t")).unwrap());
    let wm = Writer::open(log.clone(), dir.path()).unwrap();
    let mut l = Ledger { dir, log, wm };
    let r = l.recon(
        D2,
        &file(&[line(D2, "000000000001", "sale", "100.00", "0.60")]),
    );
    only(&r, Category::Matched, 1);
}

#[test]
fn bad_lines_are_reported_with_line_and_field_counted_and_do_not_stop_the_run() {
    let mut l = Ledger::new();
    l.ingest(&[
        sale("S1", "000000000001", "100.00", NOON),
        sale("S2", "000000000002", "100.00", NOON),
    ]);
    let text = format!(
        "{HEADER}{}{D},{NOON},{M},10000001,000000000003,1,,purchase,1.00,0.01\n{D},{NOON},{M},10000001,000000000004,1,,sale,-1.00,0.01\n{D},{NOON},{M},,000000000005,1,,sale,1.00,0.01\nnot,enough,fields\n{}",
        line(D, "000000000001", "sale", "100.00", "0.60"),
        line(D, "000000000002", "sale", "100.00", "0.60"),
    );
    let r = l.recon(D, &text);
    assert_eq!(r.counts[&Category::Matched], 2);
    assert_eq!(r.bad_lines, 4);
    assert_eq!(r.lines, 6);
    let bad: Vec<(u64, &str)> = r.bad.iter().map(|b| (b.line, b.field.as_str())).collect();
    assert_eq!(
        bad,
        [
            (3, "txn_type"),
            (4, "amount"),
            (5, "terminal_id"),
            (6, "line")
        ]
    );
}

#[test]
fn a_file_dated_another_day_on_most_lines_is_refused_and_records_nothing() {
    let mut l = Ledger::new();
    let before = l.events();
    let e = l
        .recon_as(
            D,
            &file(&[
                line(D2, "000000000001", "sale", "1.00", "0.01"),
                line(D2, "000000000002", "sale", "1.00", "0.01"),
                line(D, "000000000003", "sale", "1.00", "0.01"),
            ]),
            Layout::Csv,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            ReconError::WrongDate {
                other: 2,
                dated: 3,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(l.events(), before);
}

#[test]
fn a_wrong_header_is_refused() {
    let mut l = Ledger::new();
    let e = l
        .recon_as(D, "date,terminal,rrn\n", Layout::Csv)
        .unwrap_err();
    assert!(e.to_string().contains("wrong header"), "{e}");
}

#[test]
fn a_second_run_of_the_same_file_reports_the_same_result_and_records_nothing() {
    let mut l = Ledger::new();
    l.ingest(&[
        sale("S1", "000000000001", "100.00", NOON),
        sale("S2", "000000000002", "100.00", NOON),
        sale("S3", "000000000003", "100.00", "2026-11-20T22:55:00+08:00"),
    ]);
    let f = file(&[
        line(D, "000000000001", "sale", "100.00", "0.70"),
        line(D, "000000000009", "sale", "100.00", "0.60"),
    ]);
    let first = l.recon(D, &f);
    assert!(!first.already_recorded);
    let events = l.events();
    // breaks (fee_mismatch, missing_in_ledger, missing_in_channel) + run
    assert_eq!(first.breaks.len(), 3);
    let second = l.recon(D, &f);
    assert!(second.already_recorded);
    assert_eq!(l.events(), events, "nothing recorded twice");
    assert_eq!(
        (&second.counts, &second.breaks, &second.held),
        (&first.counts, &first.breaks, &first.held)
    );
    // a corrected file is a new run
    let corrected = file(&[line(D, "000000000001", "sale", "100.00", "0.60")]);
    let third = l.recon(D, &corrected);
    assert!(!third.already_recorded);
    assert_eq!(third.counts[&Category::Matched], 1);
}

#[test]
fn the_fixed_width_layout_gives_the_same_result_as_the_csv() {
    use clearing_recon::reader::fixed_record;
    let mut l = Ledger::new();
    l.ingest(&[
        sale("S1", "000000000001", "100.00", NOON),
        sale("S2", "000000000002", "100.00", NOON),
        sale("S3", "000000000003", "100.00", "2026-11-20T22:55:00+08:00"),
    ]);
    let rec = |rrn: &str, amount: i64, fee: i64| {
        fixed_record(
            ReconType::Sale,
            "1",
            "1120120000",
            "622848******5678",
            Fen(amount),
            "5812",
            M,
            "10000001",
            rrn,
            Fen(fee),
        )
        .unwrap()
            + "\n"
    };
    let fixed = [
        rec("000000000001", 10000, 60),
        rec("000000000002", 10000, 61),
        rec("000000000009", 100, 1),
        "S22 too short\n".to_string(),
    ]
    .concat();
    let csv = file(&[
        line(D, "000000000001", "sale", "100.00", "0.60"),
        line(D, "000000000002", "sale", "100.00", "0.61"),
        line(D, "000000000009", "sale", "1.00", "0.01"),
    ]);
    let mut other = Ledger::new();
    other.ingest(&[
        sale("S1", "000000000001", "100.00", NOON),
        sale("S2", "000000000002", "100.00", NOON),
        sale("S3", "000000000003", "100.00", "2026-11-20T22:55:00+08:00"),
    ]);
    let a = l.recon_as(D, &fixed, Layout::UnionpayFixed).unwrap();
    let b = other.recon(D, &csv);
    assert_eq!(a.counts, b.counts);
    assert_eq!(
        a.breaks
            .iter()
            .map(|x| (&x.category, &x.key))
            .collect::<Vec<_>>(),
        b.breaks
            .iter()
            .map(|x| (&x.category, &x.key))
            .collect::<Vec<_>>()
    );
    assert_eq!(a.bad_lines, 1);
    assert_eq!(a.bad[0].field, "line");
    assert_eq!(a.counts[&Category::Held], 1);
}
