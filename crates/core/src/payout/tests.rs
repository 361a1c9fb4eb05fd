use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn payee(id: &str) -> Payee {
    Payee {
        payee_type: PayeeType::Merchant,
        payee_id: id.to_string(),
    }
}

fn taken(pairs: &[(&str, i64)]) -> BTreeMap<Payee, Fen> {
    pairs.iter().map(|(p, a)| (payee(p), Fen(*a))).collect()
}

fn batch(date: u32, lines: &[(&str, i64)]) -> PayoutBatchPrepared {
    PayoutBatchPrepared {
        payout_date: NaiveDate::from_ymd_opt(2026, 11, date).unwrap(),
        prepared_by: "alice".into(),
        log_position: Positions::new(),
        taken: Vec::new(),
        lines: lines
            .iter()
            .map(|(p, a)| PayoutLine {
                payee: payee(p),
                name: format!("{p} ltd"),
                account: format!("6222{p}"),
                amount: Fen(*a),
            })
            .collect(),
        carried: Vec::new(),
    }
}

#[test]
fn given_refunds_above_sales_when_two_batches_follow_then_the_deficit_is_carried_and_then_covered()
{
    // batch 1: the payee's refunds exceed its sales by 30.00
    let p1 = plan_batch(&taken(&[("m1", -3_000)]), []).unwrap();
    assert!(p1.lines.is_empty());
    assert_eq!(p1.carried[&payee("m1")], Fen(-3_000));
    // batch 2: 50.00 of new sales pays 20.00
    let p2 = plan_batch(&taken(&[("m1", 2_000)]), []).unwrap();
    assert_eq!(p2.lines[&payee("m1")], Fen(2_000));
    assert!(p2.carried.is_empty());
}

#[test]
fn given_a_failed_line_when_the_next_batch_is_prepared_then_it_is_paid_again_with_the_new_money() {
    let first = batch(20, &[("m1", 1_000)]);
    let failed = PayoutResultRecorded {
        payout_date: first.payout_date,
        recorded_by: None,
        file: "bank.csv".into(),
        file_sha256: "00".into(),
        lines: vec![BankLine {
            payee: payee("m1"),
            amount: Fen(1_000),
            status: BankStatus::Failed,
            reason: "account closed".into(),
        }],
        already_settled: Vec::new(),
        bad_lines: Vec::new(),
    };
    let statuses = line_statuses(&first, [&failed]);
    assert_eq!(statuses[&payee("m1")], LineStatus::Failed);
    let m1 = payee("m1");
    let plan = plan_batch(&taken(&[("m1", 1_500)]), [(&m1, Fen(1_000), statuses[&m1])]).unwrap();
    assert_eq!(plan.lines[&m1], Fen(1_500));
    // a paid line is not paid again
    let plan = plan_batch(
        &taken(&[("m1", 1_500)]),
        [(&m1, Fen(1_000), LineStatus::Paid)],
    )
    .unwrap();
    assert_eq!(plan.lines[&m1], Fen(500));
}

#[test]
fn given_a_settled_line_when_a_second_file_names_it_then_the_first_answer_stands() {
    let b = batch(20, &[("m1", 1_000)]);
    let answer = |status| PayoutResultRecorded {
        payout_date: b.payout_date,
        recorded_by: None,
        file: "bank.csv".into(),
        file_sha256: "00".into(),
        lines: vec![BankLine {
            payee: payee("m1"),
            amount: Fen(1_000),
            status,
            reason: String::new(),
        }],
        already_settled: Vec::new(),
        bad_lines: Vec::new(),
    };
    let (paid, failed) = (answer(BankStatus::Paid), answer(BankStatus::Failed));
    assert_eq!(
        line_statuses(&b, [&paid, &failed])[&payee("m1")],
        LineStatus::Paid
    );
}

#[test]
fn a_bank_file_is_checked_line_by_line_against_its_batch() {
    let b = batch(20, &[("m1", 1_000), ("m2", 2_000)]);
    let statuses = line_statuses(&b, []);
    let text = "payee_type,payee_id,amount,status,reason\n\
                merchant,m1,10.00,paid,\n\
                merchant,m9,10.00,paid,\n\
                merchant,m2,20.01,failed,x\n\
                merchant,m2,20.00,lost,x\n\
                merchant,m2,20.00,failed,account closed, try later\n";
    let (settle, settled, bad) = check_bank_file(text, &b, &statuses).unwrap();
    assert_eq!(settle.len(), 2);
    assert_eq!(settle[1].reason, "account closed, try later");
    assert!(settled.is_empty());
    let bad: Vec<(u64, &str)> = bad.iter().map(|b| (b.line, b.payee_id.as_str())).collect();
    assert_eq!(bad, [(3, "m9"), (4, "m2"), (5, "m2")]);
    let err = check_bank_file("payee,amount\n", &b, &statuses).unwrap_err();
    assert!(err.contains("header"), "{err}");
}

#[test]
fn the_export_is_the_header_then_a_row_per_line() {
    let b = batch(23, &[("m1", 1_050)]);
    assert_eq!(
        export_csv(&b),
        "payout_date,payee_type,payee_id,name,account,amount\n2026-11-23,merchant,m1,m1 ltd,6222m1,10.50\n"
    );
    assert_eq!(export_csv(&batch(23, &[])).lines().count(), 1);
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Step {
    /// A record for payee `p` at payout day `day` of `amount` fen.
    Contribute { p: usize, day: u32, amount: i64 },
    /// A batch `advance` days after the last one.
    Batch { advance: u32 },
    /// The bank's answer for payee `p` on batch `b` (taken modulo the
    /// batches so far).
    Answer { b: usize, p: usize, paid: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..8u32, -5_000..20_000i64)
            .prop_map(|(p, day, amount)| Step::Contribute { p, day, amount }),
        1 => (0..3u32).prop_map(|advance| Step::Batch { advance }),
        2 => (0..8usize, 0..3usize, any::<bool>()).prop_map(|(b, p, paid)| Step::Answer { b, p, paid }),
    ]
}

struct Batch {
    day: u32,
    prepared: PayoutBatchPrepared,
    results: Vec<PayoutResultRecorded>,
    /// What the incremental reading of §13 says each payee's sum is.
    taken: BTreeMap<Payee, Fen>,
    plan: Plan,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Over random multi-day histories, for each payee: paid + pending +
    /// failed-not-yet-batched + carried + not-yet-taken = every
    /// contribution, to the fen; each batch's sum is the new contributions
    /// plus the failed lines since the last batch plus the deficit it
    /// carried; and no line is settled twice.
    #[test]
    fn paid_owed_and_carried_add_up_to_the_contributions(steps in proptest::collection::vec(step(), 1..80)) {
        let payees = [payee("a"), payee("b"), payee("c")];
        let mut contributions: Vec<(Payee, u32, i64)> = Vec::new();
        let mut batches: Vec<Batch> = Vec::new();
        // failures recorded since the last batch was prepared
        let mut failed_since: BTreeMap<Payee, i64> = BTreeMap::new();
        for s in steps {
            match s {
                Step::Contribute { p, day, amount } => contributions.push((payees[p].clone(), day, amount)),
                Step::Batch { advance } => {
                    let day = batches.last().map_or(0, |b| b.day) + advance;
                    if batches.last().is_some_and(|b| b.day == day) {
                        continue; // the last batch's own date records nothing
                    }
                    let mut taken = BTreeMap::new();
                    for (p, d, a) in &contributions {
                        if *d <= day {
                            *taken.entry(p.clone()).or_insert(Fen::ZERO) = Fen(taken.get(p).map_or(0, |f: &Fen| f.0) + a);
                        }
                    }
                    let mut earlier = Vec::new();
                    for b in &batches {
                        let st = line_statuses(&b.prepared, &b.results);
                        for l in &b.prepared.lines {
                            earlier.push((l.payee.clone(), l.amount, st[&l.payee]));
                        }
                    }
                    let plan = plan_batch(&taken, earlier.iter().map(|(p, a, s)| (p, *a, *s))).unwrap();
                    // the incremental reading
                    for p in &payees {
                        let now = taken.get(p).map_or(0, |f| f.0);
                        let (before, carried_in) = batches.last().map_or((0, 0), |b| {
                            (b.taken.get(p).map_or(0, |f| f.0), b.plan.carried.get(p).map_or(0, |f| f.0))
                        });
                        let sum = now - before + failed_since.get(p).copied().unwrap_or(0) + carried_in;
                        let line = plan.lines.get(p).map_or(0, |f| f.0);
                        let carried = plan.carried.get(p).map_or(0, |f| f.0);
                        prop_assert_eq!(line + carried, sum, "payee {}", p);
                        prop_assert!(line >= 0 && carried <= 0 && (line == 0 || carried == 0));
                    }
                    failed_since.clear();
                    let lines: Vec<(&str, i64)> = plan.lines.iter().map(|(p, a)| (p.payee_id.as_str(), a.0)).collect();
                    let mut prepared = batch(1, &lines);
                    prepared.payout_date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(day.into());
                    batches.push(Batch { day, prepared, results: Vec::new(), taken, plan });
                }
                Step::Answer { b, p, paid } => {
                    if batches.is_empty() {
                        continue;
                    }
                    let i = b % batches.len();
                    let batch = &mut batches[i];
                    let Some(line) = batch.prepared.lines.iter().find(|l| l.payee == payees[p]) else { continue };
                    let before = line_statuses(&batch.prepared, &batch.results)[&line.payee];
                    let result = PayoutResultRecorded {
                        payout_date: batch.prepared.payout_date,
                        recorded_by: None,
                        file: "bank.csv".into(),
                        file_sha256: String::new(),
                        lines: vec![BankLine {
                            payee: line.payee.clone(),
                            amount: line.amount,
                            status: if paid { BankStatus::Paid } else { BankStatus::Failed },
                            reason: String::new(),
                        }],
                        already_settled: Vec::new(),
                        bad_lines: Vec::new(),
                    };
                    let amount = line.amount.0;
                    let payee = line.payee.clone();
                    batch.results.push(result);
                    let after = line_statuses(&batch.prepared, &batch.results)[&payee];
                    if before != LineStatus::Pending {
                        prop_assert_eq!(after, before, "a settled line changed");
                    } else if after == LineStatus::Failed {
                        *failed_since.entry(payee).or_insert(0) += amount;
                    }
                }
            }
        }
        for p in &payees {
            let total: i64 = contributions.iter().filter(|(q, _, _)| q == p).map(|(_, _, a)| a).sum();
            let (mut paid, mut pending) = (0, 0);
            for b in &batches {
                let st = line_statuses(&b.prepared, &b.results);
                for l in b.prepared.lines.iter().filter(|l| &l.payee == p) {
                    match st[p] {
                        LineStatus::Paid => paid += l.amount.0,
                        LineStatus::Pending => pending += l.amount.0,
                        LineStatus::Failed => {}
                    }
                }
            }
            let (taken, carried) = batches.last().map_or((0, 0), |b| {
                (b.taken.get(p).map_or(0, |f| f.0), b.plan.carried.get(p).map_or(0, |f| f.0))
            });
            let owed_failed = failed_since.get(p).copied().unwrap_or(0);
            let untaken = total - taken;
            prop_assert_eq!(paid + pending + owed_failed + carried + untaken, total, "payee {}", p);
        }
    }
}
