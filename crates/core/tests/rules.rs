//! Given/when/then tests of every SPEC rule the core owns (§2–§6, §11).

mod common;

use chrono::{NaiveDate, NaiveTime};
use clearing_core::calendar::{business_date, parse_timestamp, Calendar, SettlementCycle};
use clearing_core::events::RowDelta;
use clearing_core::fees::{refund_fee, sale_fee, ChannelFee, RefundState};
use clearing_core::ingest::{Outcome, Reason};
use clearing_core::postings::sum;
use clearing_core::registry::{plan_registry_load, Clearing, Reference};
use clearing_core::risk::RiskFlag;
use clearing_core::settlement::{add_delta, settlement_report};
use clearing_core::{Fen, TxnResult};
use common::*;
use serde_json::json;

const DAY: &str = "2026-11-20"; // a Friday

fn at(time: &str) -> String {
    format!("{DAY}T{time}+08:00")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

// ---- §4.2 fees: the seed figures --------------------------------------

#[test]
fn credit_card_sale_of_10000_pays_60() {
    let mut l = Ledger::new();
    let t = l.accept(&sale("P1", M1, "credit_card", "10000.00", &at("10:00:00")));
    assert_eq!(t.fee, fen("60.00"));
    let rule = t.fee_rule.unwrap();
    assert_eq!(
        (rule.plan.as_str(), rule.rate.to_string(), rule.cap),
        ("standard", "0.006".to_string(), None)
    );
}

#[test]
fn wechat_and_alipay_sales_of_10000_pay_38() {
    let mut l = Ledger::new();
    assert_eq!(
        l.accept(&sale("P1", M1, "wechat", "10000.00", &at("10:00:00")))
            .fee,
        fen("38.00")
    );
    assert_eq!(
        l.accept(&sale("P2", M1, "alipay", "10000.00", &at("10:00:00")))
            .fee,
        fen("38.00")
    );
}

#[test]
fn debit_card_sale_of_10000_is_capped_at_20() {
    let mut l = Ledger::new();
    // 10,000.00 × 0.5% = 50.00, above the 20.00 cap
    assert_eq!(
        l.accept(&sale("P1", M1, "debit_card", "10000.00", &at("10:00:00")))
            .fee,
        fen("20.00")
    );
    // below the cap the rate applies: 1,000.00 × 0.5% = 5.00
    assert_eq!(
        l.accept(&sale("P2", M1, "debit_card", "1000.00", &at("10:00:00")))
            .fee,
        fen("5.00")
    );
}

#[test]
fn unionpay_qr_is_charged_the_credit_card_rate() {
    let mut l = Ledger::new();
    let qr = l.accept(&sale("P1", M1, "unionpay_qr", "10000.00", &at("10:00:00")));
    let cc = l.accept(&sale("P2", M1, "credit_card", "10000.00", &at("10:00:00")));
    assert_eq!(qr.fee, cc.fee);
    assert_eq!(qr.fee, fen("60.00"));
}

#[test]
fn exempt_merchant_pays_nothing() {
    let mut l = Ledger::new();
    for (i, ch) in [
        "debit_card",
        "credit_card",
        "wechat",
        "alipay",
        "unionpay_qr",
    ]
    .iter()
    .enumerate()
    {
        let t = l.accept(&sale(&format!("P{i}"), M3, ch, "10000.00", &at("10:00:00")));
        assert_eq!(t.fee, Fen::ZERO, "{ch}");
    }
}

#[test]
fn fee_rounds_half_up_to_the_fen() {
    let rule = |r: &str| ChannelFee {
        rate: rate(r),
        cap: None,
    };
    // 12.50 × 0.0038 = 0.0475: half up gives 0.05 (banker's rounding would give 0.04)
    assert_eq!(sale_fee(fen("12.50"), &rule("0.0038")), Ok(fen("0.05")));
    // 0.83 × 0.006 = 0.00498 → 0.00
    assert_eq!(sale_fee(fen("0.83"), &rule("0.006")), Ok(fen("0.00")));
    // 8.33 × 0.006 = 0.04998 → 0.05
    assert_eq!(sale_fee(fen("8.33"), &rule("0.006")), Ok(fen("0.05")));
    // 131.58 × 0.0038 = 0.500004 → 0.50
    assert_eq!(sale_fee(fen("131.58"), &rule("0.0038")), Ok(fen("0.50")));
}

#[test]
fn net_is_amount_minus_fee_in_the_postings() {
    let mut l = Ledger::new();
    let t = l.accept(&sale("P1", M1, "credit_card", "128.50", &at("10:00:00")));
    // 128.50 × 0.006 = 0.771 → 0.77; net 127.73
    assert_eq!(t.fee, fen("0.77"));
    let payable = t
        .entry
        .postings
        .iter()
        .find(|p| p.account.contains("merchant_payable"))
        .unwrap();
    assert_eq!(payable.amount, fen("-127.73"));
}

#[test]
fn registered_plan_applies_even_with_another_mcc() {
    let mut l = Ledger::new();
    // M1 is a restaurant (5812) on the standard plan; the record claims a hospital MCC
    let t = l.accept(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "1000.00",
        &at("10:00:00"),
        &[("mcc", Some("8062".into()))],
    ));
    assert_eq!(t.fee, fen("6.00"));
    assert_eq!(t.flags, vec![RiskFlag::MccMismatch]);
}

// ---- §4.1 business date and payout date -----------------------------

#[test]
fn business_date_turns_at_the_cutoff() {
    let cutoff = NaiveTime::from_hms_opt(23, 0, 0).unwrap();
    let bd = |s: &str| business_date(parse_timestamp(s).unwrap(), cutoff);
    assert_eq!(bd("2026-11-20T22:59:59+08:00"), date("2026-11-20"));
    assert_eq!(bd("2026-11-20T23:00:00+08:00"), date("2026-11-21"));
    assert_eq!(bd("2026-11-20T23:59:59+08:00"), date("2026-11-21"));
    assert_eq!(bd("2026-11-21T00:00:00+08:00"), date("2026-11-21"));
    // Z times are converted to +08:00 first: 15:00Z is 23:00 local
    assert_eq!(bd("2026-11-20T14:59:59Z"), date("2026-11-20"));
    assert_eq!(bd("2026-11-20T15:00:00Z"), date("2026-11-21"));
    // another offset: 10:00 at -05:00 is 23:00 local
    assert_eq!(bd("2026-11-20T10:00:00-05:00"), date("2026-11-21"));
}

#[test]
fn t1_pays_the_next_working_day_and_d0_the_business_date() {
    let cal =
        Calendar::parse("2026-10-01\n2026-10-02\n2026-10-05\n2026-10-06\n2026-10-07\n").unwrap();
    let pay = |d: &str, c| cal.payout_date(date(d), c).unwrap();
    // Friday → Monday
    assert_eq!(pay("2026-11-20", SettlementCycle::T1), date("2026-11-23"));
    // Saturday business date (a 23:00 Friday sale) → Monday
    assert_eq!(pay("2026-11-21", SettlementCycle::T1), date("2026-11-23"));
    // Wednesday before Golden Week → Thursday 10-08
    assert_eq!(pay("2026-09-30", SettlementCycle::T1), date("2026-10-08"));
    // D0 pays on the business date even on a Saturday or a holiday
    assert_eq!(pay("2026-11-21", SettlementCycle::D0), date("2026-11-21"));
    assert_eq!(pay("2026-10-01", SettlementCycle::D0), date("2026-10-01"));
}

#[test]
fn sale_at_23_00_counts_on_the_next_business_date_and_pays_accordingly() {
    let mut l = Ledger::new();
    let t = l.accept(&sale("P1", M1, "credit_card", "100.00", &at("23:00:00")));
    assert_eq!(t.business_date, date("2026-11-21"));
    assert_eq!(t.settlement.unwrap().payout_date, date("2026-11-23"));
    let d0 = l.accept(&sale("P2", M2, "credit_card", "100.00", &at("23:00:00")));
    assert_eq!(d0.settlement.unwrap().payout_date, date("2026-11-21"));
}

// ---- §4.3 void, reversal, refund ------------------------------------

#[test]
fn void_cancels_the_whole_sale_on_its_business_date() {
    let mut l = Ledger::new();
    let s = l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    let v = l.accept(&follow_up(
        "V1",
        "void",
        "P1",
        M1,
        "100.00",
        &at("11:00:00"),
    ));
    let (_, sd) = s.row_delta().unwrap();
    let (row, vd) = v.row_delta().unwrap();
    assert_eq!(row, s.settlement.as_ref().unwrap());
    let mut total = RowDelta::default();
    add_delta(&mut total, &sd).unwrap();
    add_delta(&mut total, &vd).unwrap();
    assert_eq!(total, RowDelta::default(), "amount and fee both drop out");
    // the void's postings exactly reverse the sale's
    let both: Vec<_> = s
        .entry
        .postings
        .iter()
        .chain(&v.entry.postings)
        .cloned()
        .collect();
    for acct in s.entry.postings.iter().map(|p| &p.account) {
        let net: i64 = both
            .iter()
            .filter(|p| &p.account == acct)
            .map(|p| p.amount.0)
            .sum();
        assert_eq!(net, 0, "{acct}");
    }
}

#[test]
fn void_and_reversal_are_allowed_only_once() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    l.accept(&follow_up(
        "V1",
        "void",
        "P1",
        M1,
        "100.00",
        &at("11:00:00"),
    ));
    assert_eq!(
        l.reject(&follow_up(
            "V2",
            "void",
            "P1",
            M1,
            "100.00",
            &at("11:01:00")
        ))
        .0,
        Reason::OriginalNotCancellable
    );
    assert_eq!(
        l.reject(&follow_up(
            "R1",
            "reversal",
            "P1",
            M1,
            "100.00",
            &at("11:02:00")
        ))
        .0,
        Reason::OriginalNotCancellable
    );
}

#[test]
fn reversal_behaves_as_a_void() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M2, "wechat", "12.50", &at("10:00:00")));
    let r = l.accept(&follow_up(
        "R1",
        "reversal",
        "P1",
        M2,
        "12.50",
        &at("10:00:05"),
    ));
    assert_eq!(
        r.row_delta().unwrap().1,
        RowDelta {
            sales_count: -1,
            sales_amount: fen("-12.50"),
            fee: fen("-0.05"),
            ..RowDelta::default()
        }
    );
}

#[test]
fn void_on_another_business_date_is_refused_judged_from_the_void_time() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("22:55:00")));
    // 23:05 belongs to the next business date
    let (reason, field) = l.reject(&follow_up(
        "V1",
        "void",
        "P1",
        M1,
        "100.00",
        &at("23:05:00"),
    ));
    assert_eq!(
        (reason, field),
        (Reason::OriginalNotCancellable, Some("occurred_at"))
    );
    // a refund is fine on a later date
    l.accept(&follow_up(
        "F1",
        "refund",
        "P1",
        M1,
        "100.00",
        &at("23:05:00"),
    ));
}

#[test]
fn void_of_a_declined_or_partly_refunded_sale_is_refused() {
    let mut l = Ledger::new();
    l.accept(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "50.00",
        &at("10:00:00"),
        &[
            ("result", Some("declined".into())),
            ("decline_code", Some("51".into())),
        ],
    ));
    assert_eq!(
        l.reject(&follow_up("V1", "void", "P1", M1, "50.00", &at("10:01:00")))
            .0,
        Reason::OriginalNotCancellable
    );
    l.accept(&sale("P2", M1, "credit_card", "100.00", &at("10:00:00")));
    l.accept(&follow_up(
        "F2",
        "refund",
        "P2",
        M1,
        "10.00",
        &at("10:30:00"),
    ));
    assert_eq!(
        l.reject(&follow_up(
            "V2",
            "void",
            "P2",
            M1,
            "100.00",
            &at("10:31:00")
        ))
        .0,
        Reason::OriginalNotCancellable
    );
}

#[test]
fn refund_of_a_declined_voided_or_reversed_sale_is_refused() {
    let mut l = Ledger::new();
    l.accept(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "50.00",
        &at("10:00:00"),
        &[("result", Some("declined".into()))],
    ));
    assert_eq!(
        l.reject(&follow_up(
            "F1",
            "refund",
            "P1",
            M1,
            "50.00",
            &at("12:00:00")
        ))
        .0,
        Reason::OriginalNotCancellable
    );
    l.accept(&sale("P2", M1, "credit_card", "50.00", &at("10:00:00")));
    l.accept(&follow_up(
        "R2",
        "reversal",
        "P2",
        M1,
        "50.00",
        &at("10:00:01"),
    ));
    assert_eq!(
        l.reject(&follow_up(
            "F2",
            "refund",
            "P2",
            M1,
            "50.00",
            &at("12:00:00")
        ))
        .0,
        Reason::OriginalNotCancellable
    );
}

#[test]
fn refunds_never_add_up_to_more_than_the_sale() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    l.accept(&follow_up(
        "F1",
        "refund",
        "P1",
        M1,
        "60.00",
        &at("11:00:00"),
    ));
    let (reason, field) = l.reject(&follow_up(
        "F2",
        "refund",
        "P1",
        M1,
        "40.01",
        &at("11:10:00"),
    ));
    assert_eq!(
        (reason, field),
        (Reason::RefundExceedsOriginal, Some("amount"))
    );
    l.accept(&follow_up(
        "F3",
        "refund",
        "P1",
        M1,
        "40.00",
        &at("11:20:00"),
    ));
    assert_eq!(
        l.reject(&follow_up(
            "F4",
            "refund",
            "P1",
            M1,
            "0.01",
            &at("11:30:00")
        ))
        .0,
        Reason::RefundExceedsOriginal
    );
}

#[test]
fn refund_fee_is_proportional_and_the_completing_refund_takes_the_rest() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00"))); // fee 0.60
                                                                         // 0.60 × 33.33 / 100 = 0.19998 → 0.20, twice
    assert_eq!(
        l.accept(&follow_up(
            "F1",
            "refund",
            "P1",
            M1,
            "33.33",
            &at("11:00:00")
        ))
        .fee,
        fen("0.20")
    );
    assert_eq!(
        l.accept(&follow_up(
            "F2",
            "refund",
            "P1",
            M1,
            "33.33",
            &at("11:01:00")
        ))
        .fee,
        fen("0.20")
    );
    // the completing refund gives back exactly what is left: 0.60 − 0.40
    let last = l.accept(&follow_up(
        "F3",
        "refund",
        "P1",
        M1,
        "33.34",
        &at("11:02:00"),
    ));
    assert_eq!(last.fee, fen("0.20"));
    let row = last.row_delta().unwrap().1;
    assert_eq!(
        row,
        RowDelta {
            refund_count: 1,
            refund_amount: fen("33.34"),
            fee: fen("-0.20"),
            ..RowDelta::default()
        }
    );
}

#[test]
fn partial_refund_fee_is_capped_at_the_fee_left_and_never_negative() {
    // sale 1.00 at 0.006 → fee 0.006 → 0.01
    let state = RefundState {
        sale_amount: fen("1.00"),
        sale_fee: fen("0.01"),
        refunded_amount: Fen::ZERO,
        refunded_fee: Fen::ZERO,
    };
    // 0.01 × 0.50 / 1.00 = 0.005 → 0.01 (half up), the whole fee
    assert_eq!(refund_fee(state, fen("0.50")), Ok(fen("0.01")));
    let after = RefundState {
        refunded_amount: fen("0.50"),
        refunded_fee: fen("0.01"),
        ..state
    };
    // 0.01 × 0.49 = 0.0049 → 0.00; nothing is left anyway
    assert_eq!(refund_fee(after, fen("0.49")), Ok(Fen::ZERO));
    // a second half would round to 0.01 again, but only 0.00 is left
    let half_fee_left = RefundState {
        refunded_amount: fen("0.25"),
        refunded_fee: fen("0.01"),
        ..state
    };
    assert_eq!(refund_fee(half_fee_left, fen("0.50")), Ok(Fen::ZERO));
    // the completing refund gives back exactly the remainder: zero, not negative
    let rest = RefundState {
        refunded_amount: fen("0.99"),
        refunded_fee: fen("0.01"),
        ..state
    };
    assert_eq!(refund_fee(rest, fen("0.01")), Ok(Fen::ZERO));
}

#[test]
fn refund_may_come_on_the_sales_own_date_and_counts_on_its_own_date() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    let same_day = l.accept(&follow_up(
        "F1",
        "refund",
        "P1",
        M1,
        "10.00",
        &at("18:00:00"),
    ));
    assert_eq!(
        same_day.settlement.unwrap().business_date,
        date("2026-11-20")
    );
    let later = l.accept(&follow_up(
        "F2",
        "refund",
        "P1",
        M1,
        "10.00",
        "2026-11-25T09:00:00+08:00",
    ));
    let row = later.settlement.unwrap();
    assert_eq!(
        (row.business_date, row.payout_date),
        (date("2026-11-25"), date("2026-11-26"))
    );
}

#[test]
fn declined_void_or_refund_is_recorded_and_moves_nothing() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    let v = l.accept(&txn(
        "V1",
        "void",
        M1,
        "credit_card",
        "100.00",
        &at("10:01:00"),
        &[
            ("original_txn_id", Some("P1".into())),
            ("result", Some("declined".into())),
        ],
    ));
    assert!(v.settlement.is_none() && v.entry.postings.is_empty());
    // the sale is still there to be voided for real
    l.accept(&follow_up(
        "V2",
        "void",
        "P1",
        M1,
        "100.00",
        &at("10:02:00"),
    ));
}

#[test]
fn declined_sale_is_recorded_with_its_code_and_moves_nothing() {
    let mut l = Ledger::new();
    let t = l.accept(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "1.00",
        &at("10:00:00"),
        &[
            ("result", Some("declined".into())),
            ("decline_code", Some("51".into())),
        ],
    ));
    assert_eq!(
        (t.result, t.decline_code.as_deref()),
        (TxnResult::Declined, Some("51"))
    );
    assert!(t.settlement.is_none() && t.entry.postings.is_empty() && t.fee == Fen::ZERO);
}

#[test]
fn void_and_refund_are_not_cross_checked_against_the_sale() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    // the void says another amount and channel: it still cancels the whole sale
    let v = l.accept(&txn(
        "V1",
        "void",
        M1,
        "wechat",
        "1.00",
        &at("10:01:00"),
        &[("original_txn_id", Some("P1".into()))],
    ));
    assert_eq!(v.row_delta().unwrap().1.sales_amount, fen("-100.00"));
}

#[test]
fn unknown_original_covers_missing_rejected_later_and_non_sales() {
    let mut l = Ledger::new();
    assert_eq!(
        l.reject(&follow_up(
            "F1",
            "refund",
            "NOPE",
            M1,
            "1.00",
            &at("10:00:00")
        ))
        .0,
        Reason::UnknownOriginal
    );
    // a rejected sale owns nothing
    l.reject(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "100.00",
        &at("10:00:00"),
        &[("currency", Some("USD".into()))],
    ));
    assert_eq!(
        l.reject(&follow_up(
            "F2",
            "refund",
            "P1",
            M1,
            "1.00",
            &at("10:01:00")
        ))
        .0,
        Reason::UnknownOriginal
    );
    // naming a refund, not a sale
    l.accept(&sale("P2", M1, "credit_card", "100.00", &at("10:00:00")));
    l.accept(&follow_up(
        "F3",
        "refund",
        "P2",
        M1,
        "1.00",
        &at("10:01:00"),
    ));
    assert_eq!(
        l.reject(&follow_up(
            "F4",
            "refund",
            "F3",
            M1,
            "1.00",
            &at("10:02:00")
        ))
        .0,
        Reason::UnknownOriginal
    );
    // a sale that has not arrived yet
    assert_eq!(
        l.reject(&follow_up("V5", "void", "P5", M1, "1.00", &at("10:03:00")))
            .0,
        Reason::UnknownOriginal
    );
    l.accept(&sale("P5", M1, "credit_card", "1.00", &at("10:00:00")));
}

// ---- §4.4 idempotency -----------------------------------------------

#[test]
fn identical_resend_is_a_duplicate_whatever_the_key_order_spacing_or_pan_form() {
    let mut l = Ledger::new();
    let line = txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "100.00",
        &at("10:00:00"),
        &[("card", Some("6228480012345678".into()))],
    );
    l.accept(&line);
    assert_eq!(l.submit(&line), Outcome::Duplicate);
    // keys reversed, different spacing, card already masked: same content
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line).unwrap();
    let mut parts: Vec<String> = v
        .iter()
        .map(|(k, val)| {
            let val = if k == "card" {
                json!("622848******5678")
            } else {
                val.clone()
            };
            format!("{} :  {}", json!(k), val)
        })
        .collect();
    parts.reverse();
    assert_eq!(
        l.submit(&format!("{{ {} }}", parts.join(" , "))),
        Outcome::Duplicate
    );
}

#[test]
fn same_txn_id_with_other_content_is_a_conflicting_duplicate() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    let (reason, field) = l.reject(&sale("P1", M1, "credit_card", "100.01", &at("10:00:00")));
    assert_eq!(
        (reason, field),
        (Reason::ConflictingDuplicate, Some("txn_id"))
    );
    // an extra key is other content too
    assert_eq!(
        l.reject(&txn(
            "P1",
            "sale",
            M1,
            "credit_card",
            "100.00",
            &at("10:00:00"),
            &[("note", Some("x".into()))]
        ))
        .0,
        Reason::ConflictingDuplicate
    );
}

#[test]
fn identical_resend_of_an_accepted_void_or_refund_is_a_duplicate() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    let v = follow_up("V1", "void", "P1", M1, "100.00", &at("10:01:00"));
    l.accept(&v);
    assert_eq!(
        l.submit(&v),
        Outcome::Duplicate,
        "not original_not_cancellable: the duplicate check comes first"
    );
}

#[test]
fn rejected_records_own_no_txn_id() {
    let mut l = Ledger::new();
    let bad = txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "100.00",
        &at("10:00:00"),
        &[("currency", Some("USD".into()))],
    );
    assert_eq!(l.reject(&bad).0, Reason::UnsupportedCurrency);
    // identical resend: rejected again with its reason, not a duplicate
    assert_eq!(l.reject(&bad).0, Reason::UnsupportedCurrency);
    // corrected resend: judged afresh and accepted
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
}

// ---- §11 every reason code, and the check order ----------------------

#[test]
fn invalid_json_for_broken_lines_and_non_objects() {
    let mut l = Ledger::new();
    for line in [
        "{\"txn_id\":",
        "[1,2]",
        "\"sale\"",
        "42",
        "null",
        "not json",
    ] {
        assert_eq!(l.reject(line), (Reason::InvalidJson, None), "{line}");
    }
}

#[test]
fn missing_field_for_absent_or_null_required_keys() {
    let mut l = Ledger::new();
    for field in [
        "txn_id",
        "type",
        "merchant_id",
        "terminal_id",
        "channel",
        "amount",
        "currency",
        "result",
        "rrn",
        "occurred_at",
    ] {
        let absent = txn(
            "P1",
            "sale",
            M1,
            "credit_card",
            "1.00",
            &at("10:00:00"),
            &[(field, None)],
        );
        assert_eq!(l.reject(&absent), (Reason::MissingField, Some(field)));
        let null = txn(
            "P1",
            "sale",
            M1,
            "credit_card",
            "1.00",
            &at("10:00:00"),
            &[(field, Some(serde_json::Value::Null))],
        );
        assert_eq!(l.reject(&null), (Reason::MissingField, Some(field)));
    }
    for kind in ["void", "reversal", "refund"] {
        let line = txn("V1", kind, M1, "credit_card", "1.00", &at("10:00:00"), &[]);
        assert_eq!(
            l.reject(&line),
            (Reason::MissingField, Some("original_txn_id"))
        );
    }
    // optional fields may be absent
    l.accept(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "1.00",
        &at("10:00:00"),
        &[
            ("mcc", None),
            ("stan", None),
            ("card", None),
            ("decline_code", None),
        ],
    ));
}

#[test]
fn invalid_field_for_vocabularies_types_and_missing_plan_entries() {
    let mut l = Ledger::new();
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("type", json!("purchase")),
        ("channel", json!("paypal")),
        ("result", json!("ok")),
        ("txn_id", json!(17)),
        ("merchant_id", json!(["x"])),
        ("mcc", json!(5812)),
        ("card", json!(true)),
        ("currency", json!(156)),
        ("occurred_at", json!(1700000000)),
        ("rrn", json!("")),
    ];
    for (field, value) in cases {
        let line = txn(
            "P1",
            "sale",
            M1,
            "credit_card",
            "1.00",
            &at("10:00:00"),
            &[(field, Some(value.clone()))],
        );
        assert_eq!(
            l.reject(&line),
            (Reason::InvalidField, Some(field)),
            "{field} = {value}"
        );
    }
    // M4's plan prices only wallets
    let line = sale("P2", M4, "credit_card", "1.00", &at("10:00:00"));
    assert_eq!(l.reject(&line), (Reason::InvalidField, Some("channel")));
    l.accept(&sale("P3", M4, "wechat", "1.00", &at("10:00:00")));
}

#[test]
fn invalid_amount_for_numbers_signs_exponents_spaces_precision_and_range() {
    let mut l = Ledger::new();
    let bad: Vec<serde_json::Value> = vec![
        json!(128.5),
        json!(100),
        json!("-1.00"),
        json!("+1.00"),
        json!("1e3"),
        json!(" 1.00"),
        json!("1.00 "),
        json!("1.234"),
        json!("0.00"),
        json!("0"),
        json!("10000000.01"),
        json!("1,00"),
        json!(""),
        json!({"v": 1}),
    ];
    for value in bad {
        let line = txn(
            "P1",
            "sale",
            M1,
            "credit_card",
            "1.00",
            &at("10:00:00"),
            &[("amount", Some(value.clone()))],
        );
        assert_eq!(
            l.reject(&line),
            (Reason::InvalidAmount, Some("amount")),
            "{value}"
        );
    }
    l.accept(&sale("P1", M1, "credit_card", "0.01", &at("10:00:00")));
    l.accept(&sale(
        "P2",
        M1,
        "credit_card",
        "10000000.00",
        &at("10:00:00"),
    ));
    l.accept(&sale("P3", M1, "credit_card", "7", &at("10:00:00")));
    l.accept(&sale("P4", M1, "credit_card", "7.5", &at("10:00:00")));
}

#[test]
fn unsupported_currency_and_invalid_timestamp() {
    let mut l = Ledger::new();
    for cur in ["USD", "cny", "RMB", ""] {
        let line = txn(
            "P1",
            "sale",
            M1,
            "credit_card",
            "1.00",
            &at("10:00:00"),
            &[("currency", Some(cur.into()))],
        );
        assert_eq!(
            l.reject(&line),
            (Reason::UnsupportedCurrency, Some("currency")),
            "{cur}"
        );
    }
    for ts in [
        "2026-11-20T10:00:00",
        "2026-11-20 10:00:00",
        "2026-02-30T10:00:00+08:00",
        "yesterday",
        "2026-11-20",
    ] {
        let line = txn("P1", "sale", M1, "credit_card", "1.00", ts, &[]);
        assert_eq!(
            l.reject(&line),
            (Reason::InvalidTimestamp, Some("occurred_at")),
            "{ts}"
        );
    }
    l.accept(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "1.00",
        "2026-11-20T02:00:00Z",
        &[],
    ));
}

#[test]
fn unknown_merchant() {
    let mut l = Ledger::new();
    assert_eq!(
        l.reject(&sale(
            "P1",
            "822584099999999",
            "credit_card",
            "1.00",
            &at("10:00:00")
        )),
        (Reason::UnknownMerchant, Some("merchant_id"))
    );
}

#[test]
fn check_order_puts_the_earlier_defect_first() {
    let mut l = Ledger::new();
    let with = |over: &[(&str, Option<serde_json::Value>)]| {
        txn(
            "P9",
            "sale",
            "822584099999999",
            "credit_card",
            "1.00",
            &at("10:00:00"),
            over,
        )
    };
    // missing_field beats invalid_amount, currency, timestamp and merchant
    assert_eq!(
        l.reject(&with(&[
            ("rrn", None),
            ("amount", Some(json!(1))),
            ("currency", Some("USD".into()))
        ]))
        .0,
        Reason::MissingField
    );
    // invalid_field beats invalid_amount
    assert_eq!(
        l.reject(&with(&[
            ("channel", Some("x".into())),
            ("amount", Some(json!(1)))
        ]))
        .0,
        Reason::InvalidField
    );
    // invalid_amount beats unsupported_currency
    assert_eq!(
        l.reject(&with(&[
            ("amount", Some(json!("1e3"))),
            ("currency", Some("USD".into()))
        ]))
        .0,
        Reason::InvalidAmount
    );
    // unsupported_currency beats invalid_timestamp
    assert_eq!(
        l.reject(&with(&[
            ("currency", Some("USD".into())),
            ("occurred_at", Some("x".into()))
        ]))
        .0,
        Reason::UnsupportedCurrency
    );
    // invalid_timestamp beats unknown_merchant
    assert_eq!(
        l.reject(&with(&[("occurred_at", Some("x".into()))])).0,
        Reason::InvalidTimestamp
    );
    // unknown_merchant beats unknown_original
    let refund = txn(
        "F9",
        "refund",
        "822584099999999",
        "credit_card",
        "1.00",
        &at("10:00:00"),
        &[("original_txn_id", Some("NOPE".into()))],
    );
    assert_eq!(l.reject(&refund).0, Reason::UnknownMerchant);
    // a plan without the channel (invalid_field) beats invalid_amount
    let m4 = txn(
        "P8",
        "sale",
        M4,
        "credit_card",
        "1.00",
        &at("10:00:00"),
        &[("amount", Some(json!(1)))],
    );
    assert_eq!(l.reject(&m4).0, Reason::InvalidField);
    // conflicting_duplicate beats invalid_field
    l.accept(&sale("P1", M1, "credit_card", "1.00", &at("10:00:00")));
    assert_eq!(
        l.reject(&txn(
            "P1",
            "sale",
            M1,
            "paypal",
            "1.00",
            &at("10:00:00"),
            &[]
        ))
        .0,
        Reason::ConflictingDuplicate
    );
    // original_not_cancellable beats refund_exceeds_original
    l.accept(&follow_up("V1", "void", "P1", M1, "1.00", &at("10:01:00")));
    assert_eq!(
        l.reject(&follow_up(
            "F1",
            "refund",
            "P1",
            M1,
            "5.00",
            &at("10:02:00")
        ))
        .0,
        Reason::OriginalNotCancellable
    );
}

// ---- §4 masking -----------------------------------------------------

#[test]
fn full_pan_is_masked_on_ingest_and_carried_for_dead_letter_masking() {
    let mut l = Ledger::new();
    let t = l.accept(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "1.00",
        &at("10:00:00"),
        &[("card", Some("6228480012345678".into()))],
    ));
    assert_eq!(t.card.as_deref(), Some("622848******5678"));
    match l.submit(&txn(
        "P2",
        "sale",
        M1,
        "credit_card",
        "1.00",
        &at("10:00:00"),
        &[
            ("card", Some("6228480012345678".into())),
            ("currency", Some("USD".into())),
        ],
    )) {
        Outcome::Rejected(r) => assert_eq!(r.card.as_deref(), Some("6228480012345678")),
        other => panic!("{other:?}"),
    }
}

// ---- §6 risk flags and §3.1 routing -----------------------------------

#[test]
fn risk_flags_mark_but_do_not_stop_clearing() {
    let mut l = Ledger::new();
    let unbound = l.accept(&txn(
        "P1",
        "sale",
        M1,
        "credit_card",
        "10.00",
        &at("10:00:00"),
        &[("terminal_id", Some("99999999".into()))],
    ));
    assert_eq!(unbound.flags, vec![RiskFlag::TerminalUnbound]);
    assert!(
        unbound.settlement.is_some(),
        "flagged transactions still clear"
    );
    // 跳商户: M1's sale on M2's terminal settles to M1 at M1's plan
    let jump = l.accept(&txn(
        "P2",
        "sale",
        M1,
        "credit_card",
        "10.00",
        &at("10:00:00"),
        &[
            ("terminal_id", Some("10000003".into())),
            ("mcc", Some("5411".into())),
        ],
    ));
    assert_eq!(
        jump.flags,
        vec![RiskFlag::TerminalMerchantMismatch, RiskFlag::MccMismatch]
    );
    assert_eq!(jump.settlement.unwrap().merchant_id, M1);
    let clean = l.accept(&txn(
        "P3",
        "sale",
        M1,
        "credit_card",
        "10.00",
        &at("10:00:00"),
        &[("mcc", Some("5812".into()))],
    ));
    assert!(clean.flags.is_empty());
    // flags are computed for declined records too
    let declined = l.accept(&txn(
        "P4",
        "sale",
        M1,
        "credit_card",
        "10.00",
        &at("10:00:00"),
        &[
            ("terminal_id", Some("99999999".into())),
            ("result", Some("declined".into())),
        ],
    ));
    assert_eq!(declined.flags, vec![RiskFlag::TerminalUnbound]);
}

#[test]
fn first_party_credits_the_merchant_and_second_party_the_intermediary() {
    let mut l = Ledger::new();
    let first = l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    let accounts: Vec<(&str, Fen)> = first
        .entry
        .postings
        .iter()
        .map(|p| (p.account.as_str(), p.amount))
        .collect();
    assert_eq!(
        accounts,
        vec![
            ("assets:channel_receivable:credit_card", fen("100.00")),
            (
                "liabilities:merchant_payable:822584053110001",
                fen("-99.40")
            ),
            ("income:fees", fen("-0.60")),
        ]
    );
    assert!(first.entry.sub_ledger.is_empty());
    let second = l.accept(&sale("P2", M2, "alipay", "200.00", &at("10:00:00")));
    assert!(second
        .entry
        .postings
        .iter()
        .any(|p| p.account == "liabilities:intermediary_payable:AGG001"
            && p.amount == fen("-199.24")));
    assert_eq!(second.entry.sub_ledger.len(), 2);
    assert!(second.entry.sub_ledger.iter().any(|p| p.account
        == "intermediary:AGG001:merchant_payable:822584053110002"
        && p.amount == fen("-199.24")));
    for t in [&first, &second] {
        assert_eq!(sum(&t.entry.postings), Ok(Fen::ZERO));
        assert_eq!(sum(&t.entry.sub_ledger), Ok(Fen::ZERO));
    }
    let row = second.settlement.unwrap();
    assert_eq!(
        (
            row.clearing,
            row.intermediary_id.as_deref(),
            row.payout_date
        ),
        (Clearing::SecondParty, Some("AGG001"), date("2026-11-20"))
    );
}

// ---- §7 settlement report -------------------------------------------

#[test]
fn settlement_report_nets_sales_refunds_and_fees_per_merchant() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00"))); // 0.60
    l.accept(&sale("P2", M1, "wechat", "200.00", &at("10:00:00"))); // 0.76
    l.accept(&sale("P3", M1, "credit_card", "50.00", &at("10:00:00"))); // 0.30, voided
    l.accept(&follow_up("V3", "void", "P3", M1, "50.00", &at("10:10:00")));
    l.accept(&follow_up(
        "F1",
        "refund",
        "P1",
        M1,
        "100.00",
        &at("11:00:00"),
    )); // gives back 0.60
    l.accept(&sale("P4", M3, "credit_card", "10.00", &at("10:00:00"))); // exempt
    l.accept(&sale("P5", M3, "credit_card", "10.00", &at("10:00:00")));
    l.accept(&follow_up("V5", "void", "P5", M3, "10.00", &at("10:00:01")));
    // a merchant with only a voided sale has no activity
    l.accept(&sale("P6", M2, "wechat", "10.00", &at("10:00:00")));
    l.accept(&follow_up("V6", "void", "P6", M2, "10.00", &at("10:00:01")));
    let rows = l
        .recorded
        .iter()
        .filter_map(|t| t.row_delta().map(|(k, d)| (k.clone(), d)));
    let mut summed: std::collections::BTreeMap<_, RowDelta> = Default::default();
    for (k, d) in rows {
        add_delta(summed.entry(k).or_default(), &d).unwrap();
    }
    let report = settlement_report(date(DAY), summed).unwrap();
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(
        v,
        json!({"business_date":"2026-11-20","merchants":[
            {"merchant_id":M1,"clearing":"first_party","intermediary_id":null,"payout_date":"2026-11-23",
             "sales_count":2,"sales_amount":"300.00","refund_count":1,"refund_amount":"100.00","fee":"0.76","net":"199.24"},
            {"merchant_id":M3,"clearing":"first_party","intermediary_id":null,"payout_date":"2026-11-23",
             "sales_count":1,"sales_amount":"10.00","refund_count":0,"refund_amount":"0.00","fee":"0.00","net":"10.00"}],
          "totals":{"sales_amount":"310.00","refund_amount":"100.00","fee":"0.76","net":"209.24"}})
    );
}

#[test]
fn a_day_of_only_refunds_gives_a_negative_net() {
    let mut l = Ledger::new();
    l.accept(&sale("P1", M1, "credit_card", "100.00", &at("10:00:00")));
    l.accept(&follow_up(
        "F1",
        "refund",
        "P1",
        M1,
        "40.00",
        "2026-11-24T10:00:00+08:00",
    ));
    let rows: Vec<_> = l
        .recorded
        .iter()
        .filter_map(|t| t.row_delta().map(|(k, d)| (k.clone(), d)))
        .collect();
    let report = settlement_report(date("2026-11-24"), rows).unwrap();
    assert_eq!(report.merchants.len(), 1);
    // 0.60 × 40 / 100 = 0.24 given back: net = 0 − 40.00 − (−0.24)
    assert_eq!(
        (report.merchants[0].fee, report.merchants[0].net),
        (fen("-0.24"), fen("-39.76"))
    );
    assert_eq!(report.merchants[0].payout_date, date("2026-11-25"));
}

// ---- §3.1 registry ----------------------------------------------------

#[test]
fn registry_load_refuses_a_terminal_bound_twice_naming_line_and_field() {
    let line = |id: &str, terminals: &str| {
        (
            0,
            format!(
                r#"{{"merchant_id":"{id}","name":"n","mcc":"5812","clearing":"first_party","intermediary_id":null,"settlement_cycle":"T1","fee_plan":"standard","terminals":{terminals},"settlement_account":"1"}}"#
            ),
        )
    };
    let mut a = line("A", r#"["T1"]"#);
    a.0 = 1;
    let mut b = line("B", r#"["T2","T1"]"#);
    b.0 = 2;
    let err = plan_registry_load(&Reference::default(), &[a.clone(), b], &[]).unwrap_err();
    assert_eq!((err.error.line, err.error.field.as_str()), (2, "terminals"));
    // moving a terminal between two merchants updated in one file is fine
    let mut b2 = line("B", r#"["T1"]"#);
    b2.0 = 2;
    let mut a2 = line("A", r#"[]"#);
    a2.0 = 1;
    assert!(plan_registry_load(&Reference::default(), &[a2, b2], &[]).is_ok());
}

#[test]
fn registry_load_requires_an_intermediary_exactly_for_second_party() {
    let m = |clearing: &str, inter: &str| {
        vec![(
            3,
            format!(
                r#"{{"merchant_id":"A","name":"n","mcc":"5812","clearing":"{clearing}","intermediary_id":{inter},"settlement_cycle":"T1","fee_plan":"standard","terminals":[],"settlement_account":"1"}}"#
            ),
        )]
    };
    let e = plan_registry_load(&Reference::default(), &m("second_party", "null"), &[]).unwrap_err();
    assert_eq!(
        (e.error.line, e.error.field.as_str()),
        (3, "intermediary_id")
    );
    let e = plan_registry_load(&Reference::default(), &m("first_party", "\"AGG001\""), &[])
        .unwrap_err();
    assert_eq!(e.error.field, "intermediary_id");
    let e = plan_registry_load(&Reference::default(), &m("second_party", "\"AGG404\""), &[])
        .unwrap_err();
    assert!(
        e.error.reason.contains("not a registered intermediary"),
        "{}",
        e.error.reason
    );
}
