//! Property: whatever the ledger holds and whatever the channel sends,
//! every channel line lands in exactly one category, and so does every
//! ledger record the channel should report (a pair counts once, for both).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use clearing_core::recon::{
    Category, ChannelLine, HeldItem, LedgerItem, LedgerStatus, MatchKey, Matcher, ReconType,
};
use clearing_core::Fen;
use proptest::prelude::*;

fn key(t: u8, r: u8, refund: bool) -> MatchKey {
    MatchKey {
        terminal_id: format!("T{t}").into(),
        rrn: format!("R{r}").into(),
        txn_type: if refund {
            ReconType::Refund
        } else {
            ReconType::Sale
        },
    }
}

fn status(i: u8) -> LedgerStatus {
    [
        LedgerStatus::Approved,
        LedgerStatus::Approved,
        LedgerStatus::Declined,
        LedgerStatus::Voided,
        LedgerStatus::Reversed,
    ][i as usize % 5]
}

type Raw = (u8, u8, bool, i64, i64);

#[test]
fn every_record_of_both_sides_lands_in_exactly_one_category() {
    let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut runner = clearing_testkit::seeded_runner("recon_partition", 512);
    let ledger_s = proptest::collection::vec(
        (
            0u8..3,
            0u8..6,
            any::<bool>(),
            1i64..4,
            0i64..2,
            0u8..5,
            any::<bool>(),
        ),
        0..25,
    );
    let held_s = proptest::collection::vec(
        (0u8..3, 6u8..9, any::<bool>(), 1i64..4, 0i64..2, 0u8..5),
        0..5,
    );
    let lines_s =
        proptest::collection::vec((0u8..3, 0u8..9, any::<bool>(), 1i64..4, 0i64..2), 0..30);
    runner
        .run(&(ledger_s, held_s, lines_s), |(ledger, held, lines)| {
            let items: Vec<LedgerItem> = ledger
                .iter()
                .enumerate()
                .map(|(i, (t, r, refund, amount, fee, st, near))| LedgerItem {
                    txn_id: format!("L{i}").into(),
                    merchant_id: "M".into(),
                    key: key(*t, *r, *refund),
                    amount: Fen(*amount),
                    fee: Fen(*fee),
                    status: status(*st),
                    near_cutoff: *near,
                })
                .collect();
            let held_in: Vec<(HeldItem, LedgerStatus)> = held
                .iter()
                .enumerate()
                .map(|(i, (t, r, refund, amount, fee, st))| {
                    (
                        HeldItem {
                            txn_id: format!("H{i}").into(),
                            merchant_id: "M".into(),
                            key: key(*t, *r, *refund),
                            amount: Fen(*amount),
                            fee: Fen(*fee),
                            business_date: date.pred_opt().unwrap(),
                        },
                        status(*st),
                    )
                })
                .collect();
            let channel: Vec<ChannelLine> = lines
                .iter()
                .enumerate()
                .map(
                    |(i, (t, r, refund, amount, fee)): (usize, &Raw)| ChannelLine {
                        line: i as u64 + 2,
                        business_date: Some(date),
                        merchant_id: "M".into(),
                        key: key(*t, *r, *refund),
                        amount: Fen(*amount),
                        fee: Fen(*fee),
                    },
                )
                .collect();
            let expected: Vec<compact_str::CompactString> = items
                .iter()
                .filter(|i| i.status == LedgerStatus::Approved)
                .map(|i| i.txn_id.clone())
                .chain(
                    held_in
                        .iter()
                        .filter(|(_, s)| *s == LedgerStatus::Approved)
                        .map(|(h, _)| h.txn_id.clone()),
                )
                .collect();
            let mut m = Matcher::new(date, items, held_in).with_audit();
            for l in &channel {
                m.line(l);
            }
            let out = m.finish();
            let all: Vec<_> = out.breaks.iter().chain(out.settled.iter()).collect();
            // counts agree with the findings
            let mut counted: BTreeMap<Category, u64> = BTreeMap::new();
            for f in &all {
                *counted.entry(f.category).or_default() += 1;
            }
            for c in Category::ALL {
                prop_assert_eq!(out.counts[&c], counted.get(&c).copied().unwrap_or(0));
            }
            // each channel line exactly once
            let mut lines_seen: Vec<u64> = all.iter().filter_map(|f| f.line).collect();
            lines_seen.sort_unstable();
            let want: Vec<u64> = channel.iter().map(|l| l.line).collect();
            prop_assert_eq!(lines_seen, want);
            // each expected ledger record exactly once
            let mut ledger_seen: Vec<compact_str::CompactString> = all
                .iter()
                .filter(|f| {
                    !matches!(
                        f.category,
                        Category::StatusMismatch
                            | Category::MissingInLedger
                            | Category::DuplicateInChannel
                    )
                })
                .filter_map(|f| f.txn_id.clone())
                .collect();
            ledger_seen.sort();
            let mut want = expected.clone();
            want.sort();
            prop_assert_eq!(ledger_seen, want);
            // held items are this date's near-cutoff records, never carried ones
            for h in &out.held {
                prop_assert!(h.txn_id.starts_with('L'));
            }
            Ok(())
        })
        .unwrap();
}
