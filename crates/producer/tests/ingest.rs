//! Ingest on the embedded log: every line ends as an event, a counted
//! duplicate or a dead letter; the write model survives restarts and is
//! rebuilt from the log when its own state is behind.

use std::path::Path;
use std::sync::Arc;

use clearing_core::{Event, EventBody, Timestamp};
use clearing_log::embedded::EmbeddedLog;
use clearing_log::{EventLog, Topic, TopicNames};
use clearing_producer::{
    fees, ingest, load_fees, load_registry, IngestSummary, Input, ProducerError, Writer,
};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/day1");

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURE).join(name)).unwrap()
}

fn clock() -> Timestamp {
    Timestamp::parse("2026-11-21T09:00:00.000+08:00").unwrap()
}

/// The embedded log of `dir` and a writer on it.
fn open(dir: &Path) -> (Arc<EmbeddedLog>, Writer) {
    let log = Arc::new(EmbeddedLog::open(dir, TopicNames::with_prefix("t")).unwrap());
    let writer = Writer::open(log.clone(), dir).unwrap();
    (log, writer)
}

fn setup(dir: &Path) -> (Arc<EmbeddedLog>, Writer) {
    let (log, mut wm) = open(dir);
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
    (log, wm)
}

fn run(_log: &EmbeddedLog, wm: &mut Writer, text: &str) -> IngestSummary {
    ingest(
        wm,
        "transactions.jsonl",
        Input::File(text.as_bytes()),
        &clock,
        |_| {},
    )
    .unwrap()
}

fn all(log: &EmbeddedLog, topic: Topic) -> Vec<Event> {
    log.read(topic, 0, 0, usize::MAX)
        .unwrap()
        .iter()
        .map(|d| Event::decode(&d.payload).unwrap())
        .collect()
}

#[test]
fn every_line_is_an_event_a_duplicate_or_a_masked_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut wm) = setup(dir.path());
    let text = read("transactions.jsonl");
    let before = log.end(Topic::Events);
    let s = run(&log, &mut wm, &text);
    let non_blank = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    assert_eq!(s.accepted + s.duplicates + s.rejected_total(), non_blank);
    assert_eq!(log.end(Topic::Events) - before, s.accepted);
    let dead = all(&log, Topic::Rejected);
    assert_eq!(dead.len() as u64, s.rejected_total());
    for e in &dead {
        let EventBody::RecordRejected(r) = &e.body else {
            panic!("{e:?}")
        };
        assert!(
            !r.raw.contains("6228480012345678"),
            "full PAN in a dead letter: {}",
            r.raw
        );
        // the line number points at the raw line in the file
        let line = text.lines().nth(r.line as usize - 1).unwrap();
        assert_eq!(
            clearing_core::mask::mask_raw_line(
                &line.replace("6228480012345678", "622848******5678")
            ),
            r.raw
        );
    }
    // the conflicting resend of line 1 carried the full PAN: masked
    let conflict = dead.iter().find_map(|e| match &e.body {
        EventBody::RecordRejected(r)
            if r.reason == clearing_core::ingest::Reason::ConflictingDuplicate =>
        {
            Some(r)
        }
        _ => None,
    });
    assert!(conflict.unwrap().raw.contains("622848******5678"));
    // no event holds a full PAN either
    for d in log.read(Topic::Events, 0, 0, usize::MAX).unwrap() {
        assert!(!String::from_utf8_lossy(&d.payload).contains("6228480012345678"));
    }
}

#[test]
fn a_rerun_after_restart_is_all_duplicates_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let text = read("transactions.jsonl");
    let first = {
        let (log, mut wm) = setup(dir.path());
        run(&log, &mut wm, &text)
    };
    let (log, mut wm) = open(dir.path());
    let end = log.end(Topic::Events);
    let again = run(&log, &mut wm, &text);
    assert_eq!(again.accepted, 0);
    assert_eq!(again.duplicates, first.accepted + first.duplicates);
    assert_eq!(log.end(Topic::Events), end, "nothing published twice");
}

#[test]
fn a_lost_write_model_commit_is_recovered_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let text = read("transactions.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    let (first_half, second_half) = lines.split_at(8);
    let snapshot = tempfile::tempdir().unwrap();
    {
        let (log, mut wm) = setup(dir.path());
        run(&log, &mut wm, &first_half.join("\n"));
    }
    // keep the write model as it stood after the first half…
    clearing_testkit::copy_dir(&dir.path().join("writer"), &snapshot.path().join("writer"))
        .unwrap();
    {
        let (log, mut wm) = open(dir.path());
        run(&log, &mut wm, &second_half.join("\n"));
    }
    // …and put it back, as if the second half's commits had never reached disk
    std::fs::remove_dir_all(dir.path().join("writer")).unwrap();
    clearing_testkit::copy_dir(&snapshot.path().join("writer"), &dir.path().join("writer"))
        .unwrap();
    let (log, mut wm) = open(dir.path());
    let end = log.end(Topic::Events);
    let again = run(&log, &mut wm, &text);
    assert_eq!(
        again.accepted, 0,
        "the write model caught up from the log first"
    );
    assert_eq!(log.end(Topic::Events), end);
    // the reversal of P…07 (line 16, second half) is known although the
    // restored write model never stored it: it came from the log
    let refund = lines[6]
        .replace("F20261120000001", "F20261120000077")
        .replace("P20261120000001", "P20261120000007")
        .replace("2500.00", "1.00");
    let s = run(&log, &mut wm, &refund);
    assert_eq!(
        s.rejected.get("original_not_cancellable"),
        Some(&1),
        "{s:?}"
    );
}

#[test]
fn a_write_model_deleted_outright_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let text = read("transactions.jsonl");
    let first = {
        let (log, mut wm) = setup(dir.path());
        run(&log, &mut wm, &text)
    };
    std::fs::remove_dir_all(dir.path().join("writer")).unwrap();
    let (log, mut wm) = open(dir.path());
    let again = run(&log, &mut wm, &text);
    assert_eq!(
        (again.accepted, again.duplicates),
        (0, first.accepted + first.duplicates)
    );
}

#[test]
fn ingest_refuses_to_start_without_a_fee_schedule_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut wm) = open(dir.path());
    let err = ingest(
        &mut wm,
        "x",
        Input::File(read("transactions.jsonl").as_bytes()),
        &clock,
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, ProducerError::NoFeeSchedule), "{err}");
    assert_eq!(log.end(Topic::Events) + log.end(Topic::Rejected), 0);
}

#[test]
fn blank_lines_are_skipped_and_line_numbers_still_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut wm) = setup(dir.path());
    let s = run(&log, &mut wm, "\n   \n{broken\n\r\n");
    assert_eq!((s.accepted, s.duplicates, s.rejected_total()), (0, 0, 1));
    let dead = all(&log, Topic::Rejected);
    let EventBody::RecordRejected(r) = &dead[0].body else {
        panic!()
    };
    assert_eq!((r.line, r.raw.as_str()), (3, "{broken"));
}

/// A reconciliation's events, as a run would record them.
fn run_events(n: u64) -> Vec<Event> {
    use clearing_core::recon::{
        zero_counts, Category, Finding, MatchKey, ReconType, ReconciliationBreak, ReconciliationRun,
    };
    let date = "2026-11-20".parse().unwrap();
    let sha = "ab".repeat(32);
    let mut events: Vec<Event> = (0..n)
        .map(|index| {
            Event::reconciliation_break(
                ReconciliationBreak {
                    business_date: date,
                    file_sha256: sha.clone(),
                    index,
                    finding: Finding {
                        category: Category::MissingInLedger,
                        key: MatchKey {
                            terminal_id: "T1".into(),
                            rrn: format!("{index:012}").into(),
                            txn_type: ReconType::Sale,
                        },
                        merchant_id: None,
                        txn_id: None,
                        line: Some(index + 2),
                        channel_amount: None,
                        channel_fee: None,
                        ledger_amount: None,
                        ledger_fee: None,
                        ledger_status: None,
                    },
                },
                &clock(),
            )
        })
        .collect();
    events.push(Event::reconciliation_run(
        ReconciliationRun {
            business_date: date,
            file: "f".into(),
            file_sha256: sha,
            layout: "csv".into(),
            lines: n,
            bad_lines: 0,
            counts: zero_counts(),
            breaks: n,
            held: Vec::new(),
        },
        &clock(),
    ));
    events
}

#[test]
fn a_multi_event_step_stopped_half_way_and_run_again_records_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let events = run_events(5);
    {
        let (_log, mut w) = open(dir.path());
        // the first commit of the run made it; the process died before the rest
        for e in events[..2].iter().cloned() {
            w.stage(e);
        }
        w.commit().unwrap();
    }
    let (log, mut w) = open(dir.path());
    clearing_producer::record_events(&mut w, events.clone()).unwrap();
    let ids: Vec<String> = all(&log, Topic::Events)
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    let expected: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids, expected, "every event of the step once, in order");
}

#[test]
fn a_step_that_records_no_transaction_leaves_them_unread_and_they_still_decide_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = read("transactions.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    let (first_half, second_half) = lines.split_at(lines.len() / 2);
    let whole = {
        let other = tempfile::tempdir().unwrap();
        let (log, mut w) = setup(other.path());
        run(&log, &mut w, &text)
    };
    {
        let (log, mut w) = setup(dir.path());
        run(&log, &mut w, &(first_half.join("\n") + "\n"));
    }
    {
        let (_log, mut w) = open(dir.path());
        clearing_producer::record_events(&mut w, run_events(3)).unwrap();
        assert!(
            !w.txns_loaded(),
            "recording a reconciliation run read every transaction"
        );
    }
    let second = {
        let (log, mut w) = open(dir.path());
        run(&log, &mut w, &(second_half.join("\n") + "\n"))
    };
    let (log, mut w) = open(dir.path());
    let end = log.end(Topic::Events);
    let again = run(&log, &mut w, &text);
    assert!(second.accepted > 0);
    assert_eq!(again.accepted, 0, "a transaction was taken for new");
    assert_eq!(again.duplicates, whole.accepted + whole.duplicates);
    assert_eq!(log.end(Topic::Events), end, "nothing published twice");
}

/// A sale of the fixture's first merchant, `txn_id` `S{i}`.
fn sale_line(i: usize, amount: &str) -> String {
    format!(
        r#"{{"txn_id": "S{i:08}", "type": "sale", "original_txn_id": null, "merchant_id": "822584053110001", "terminal_id": "10000001", "mcc": "5812", "channel": "wechat", "amount": "{amount}", "currency": "CNY", "result": "approved", "decline_code": null, "rrn": "{:012}", "stan": "000001", "card": null, "occurred_at": "2026-11-20T10:00:00+08:00"}}"#,
        i
    )
}

#[test]
fn decisions_across_batches_see_every_line_before_them_in_file_order() {
    let batch = clearing_producer::INGEST_BATCH_LINES_MAX;
    let dir = tempfile::tempdir().unwrap();
    let (log, mut wm) = setup(dir.path());
    let mut lines: Vec<String> = (0..2 * batch + 100)
        .map(|i| sale_line(i, "10.00"))
        .collect();
    // In the second batch: a copy of a sale of the first (a duplicate) and
    // a void of the first batch's last sale; in the third: a sale id of
    // the second batch with other content.
    lines[batch + 5] = sale_line(3, "10.00");
    lines[batch + 6] = sale_line(batch - 1, "10.00")
        .replace(&format!("\"S{:08}\"", batch - 1), "\"V1\"")
        .replace(
            "\"sale\", \"original_txn_id\": null",
            &format!("\"void\", \"original_txn_id\": \"S{:08}\"", batch - 1),
        );
    lines[2 * batch + 10] = sale_line(batch + 7, "11.00");
    let text = lines.join("\n");
    let before = log.end(Topic::Events);
    let s = run(&log, &mut wm, &text);
    assert_eq!(s.duplicates, 1);
    assert_eq!(
        s.rejected.get("conflicting_duplicate"),
        Some(&1),
        "{:?}",
        s.rejected
    );
    assert_eq!(s.rejected_total(), 1);
    assert_eq!(s.accepted, lines.len() as u64 - 2);
    let ids: Vec<String> = all(&log, Topic::Events)
        .into_iter()
        .skip(before as usize)
        .map(|e| match e.body {
            EventBody::TransactionRecorded(t) => t.txn_id,
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..lines.len())
        .filter(|&i| i != batch + 5 && i != 2 * batch + 10)
        .map(|i| {
            if i == batch + 6 {
                "V1".to_string()
            } else {
                format!("S{i:08}")
            }
        })
        .collect();
    assert_eq!(ids, expected);
}

/// Gives `lines` lines of `text`, then fails.
struct FailsAfter<'a> {
    text: &'a [u8],
    lines: usize,
}

impl std::io::Read for FailsAfter<'_> {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        unreachable!("read through BufRead")
    }
}

impl std::io::BufRead for FailsAfter<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.lines == 0 {
            return Err(std::io::Error::other("disk gone"));
        }
        let end = self
            .text
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.text.len(), |p| p + 1);
        Ok(&self.text[..end])
    }
    fn consume(&mut self, n: usize) {
        if self.text[..n].ends_with(b"\n") {
            self.lines -= 1;
        }
        self.text = &self.text[n..];
    }
}

#[test]
fn a_read_error_stops_ingest_with_the_batches_before_it_recorded() {
    let batch = clearing_producer::INGEST_BATCH_LINES_MAX;
    let dir = tempfile::tempdir().unwrap();
    let (log, mut wm) = setup(dir.path());
    let text: String = (0..batch + 50)
        .map(|i| sale_line(i, "10.00") + "\n")
        .collect();
    let before = log.end(Topic::Events);
    let input = FailsAfter {
        text: text.as_bytes(),
        lines: batch + 10,
    };
    let err = ingest(
        &mut wm,
        "transactions.jsonl",
        Input::File(input),
        &clock,
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, ProducerError::Read { line, .. } if line == (batch + 10) as u64),
        "{err}"
    );
    assert_eq!(log.end(Topic::Events) - before, batch as u64);
    // The rest is recorded when the same file is run again.
    drop((wm, log));
    let (log, mut wm) = open(dir.path());
    let s = run(&log, &mut wm, &text);
    assert_eq!((s.accepted, s.duplicates), (50, batch as u64));
}
