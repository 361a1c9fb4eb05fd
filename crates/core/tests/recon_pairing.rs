//! Which ledger record a channel line pairs with when several hold its key
//! (SPEC §11), and that ids of any length match and travel as plain texts.

use chrono::NaiveDate;
use clearing_core::recon::{
    Category, ChannelLine, Finding, LedgerItem, LedgerStatus, MatchKey, Matcher, ReconType,
};
use clearing_core::Fen;

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

/// Longer than the 24 bytes a text is kept inline in: it lives on the heap.
const LONG_TERMINAL: &str = "TERMINAL-0000000000000000000000000000001";
const LONG_TXN: &str = "P2026112000000000000000000000000000000000042";

fn key(terminal: &str, rrn: &str) -> MatchKey {
    MatchKey {
        terminal_id: terminal.into(),
        rrn: rrn.into(),
        txn_type: ReconType::Sale,
    }
}

fn item(txn_id: &str, key: MatchKey, status: LedgerStatus) -> LedgerItem {
    LedgerItem {
        txn_id: txn_id.into(),
        merchant_id: "822584053110001".into(),
        key,
        amount: Fen(1000),
        fee: Fen(6),
        status,
        near_cutoff: false,
    }
}

fn line(n: u64, key: MatchKey) -> ChannelLine {
    ChannelLine {
        line: n,
        business_date: Some(date()),
        merchant_id: "822584053110001".into(),
        key,
        amount: Fen(1000),
        fee: Fen(6),
    }
}

fn findings(ledger: Vec<LedgerItem>, lines: &[ChannelLine]) -> Vec<Finding> {
    let mut m = Matcher::new(date(), ledger, Vec::new()).with_audit();
    for l in lines {
        m.line(l);
    }
    let out = m.finish();
    let mut all: Vec<Finding> = out.breaks.into_iter().chain(out.settled).collect();
    all.sort_by_key(|f| (f.line, f.txn_id.clone()));
    all
}

/// Each finding as its category, line and transaction id.
fn pairs(all: &[Finding]) -> Vec<(Category, Option<u64>, Option<&str>)> {
    all.iter()
        .map(|f| (f.category, f.line, f.txn_id.as_deref()))
        .collect()
}

#[test]
fn a_line_pairs_with_the_approved_record_of_its_key_before_a_voided_one_logged_first() {
    let k = key(LONG_TERMINAL, "432107000001");
    let ledger = vec![
        item("P1", k.clone(), LedgerStatus::Voided),
        item(LONG_TXN, k.clone(), LedgerStatus::Approved),
    ];
    let all = findings(ledger, &[line(2, k.clone()), line(3, k)]);
    assert_eq!(
        pairs(&all),
        vec![
            // The voided record the channel never named is not expected.
            (Category::Matched, Some(2), Some(LONG_TXN)),
            (Category::DuplicateInChannel, Some(3), None),
        ]
    );
}

#[test]
fn a_key_named_twice_is_a_duplicate_even_with_a_ledger_record_of_it_left_unpaired() {
    let k = key("10001156", "432107000002");
    let other = key("10001156", "432107000003");
    let ledger = vec![
        item("P1", k.clone(), LedgerStatus::Approved),
        item("P2", k.clone(), LedgerStatus::Approved),
        item("P3", other.clone(), LedgerStatus::Declined),
    ];
    let all = findings(ledger, &[line(2, k.clone()), line(3, k), line(4, other)]);
    assert_eq!(
        pairs(&all),
        vec![
            // The second line names a key already seen in the file: a
            // duplicate, whatever the ledger still holds under it.
            (Category::MissingInChannel, None, Some("P2")),
            (Category::Matched, Some(2), Some("P1")),
            (Category::DuplicateInChannel, Some(3), None),
            (Category::StatusMismatch, Some(4), Some("P3")),
        ]
    );
}

#[test]
fn ids_travel_as_plain_json_texts_whatever_their_length() {
    let k = key(LONG_TERMINAL, "432107000001");
    let all = findings(vec![item(LONG_TXN, k.clone(), LedgerStatus::Approved)], &[]);
    assert_eq!(all.len(), 1);
    let v = serde_json::to_value(&all[0]).unwrap();
    assert_eq!(v["category"], "missing_in_channel");
    assert_eq!(v["terminal_id"], LONG_TERMINAL);
    assert_eq!(v["rrn"], "432107000001");
    assert_eq!(v["txn_id"], LONG_TXN);
    assert_eq!(v["merchant_id"], "822584053110001");
    let back: Finding = serde_json::from_value(v).unwrap();
    assert_eq!(back, all[0]);
}
