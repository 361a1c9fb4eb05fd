//! Every field at its extremes (issue 15): the last value accepted is
//! accepted and reads back whole, the first beyond it is rejected with the
//! reason SPEC §11 gives and the field named.

mod common;

use clearing_core::ingest::{Reason, ID_CHARS_MAX, TEXT_CHARS_MAX};
use clearing_core::Event;
use common::*;
use serde_json::json;

const AT: &str = "2026-11-20T10:00:00+08:00";

/// The record accepted by a fresh ledger, as its event reads back.
fn accepted(line: &str) -> clearing_core::events::TxnRecorded {
    let mut l = Ledger::new();
    let t = l.accept(line);
    // what was accepted decodes from its encoding as it was
    let event = match l.submit(line) {
        clearing_core::ingest::Outcome::Duplicate => Event::decode(
            &Event::transaction(
                t.clone(),
                clearing_core::Timestamp::parse(AT).unwrap(),
                &clearing_core::Timestamp::parse(AT).unwrap(),
            )
            .encode(),
        )
        .unwrap(),
        other => panic!("a resend is a duplicate: {other:?}"),
    };
    match event.body {
        clearing_core::EventBody::TransactionRecorded(back) => {
            assert_eq!(*back, t);
            t
        }
        other => panic!("{other:?}"),
    }
}

fn rejected(line: &str) -> (Reason, Option<&'static str>) {
    Ledger::new().reject(line)
}

fn with(over: &[(&str, Option<serde_json::Value>)]) -> String {
    txn("X1", "sale", M1, "credit_card", "100.00", AT, over)
}

#[test]
fn amounts_at_their_bounds() {
    for ok in ["0.01", "10000000.00", "10000000", "0.1"] {
        accepted(&with(&[("amount", Some(json!(ok)))]));
    }
    for bad in ["0.00", "10000000.01", "0.001", "-0.01", "1e3", ""] {
        assert_eq!(
            rejected(&with(&[("amount", Some(json!(bad)))])),
            (Reason::InvalidAmount, Some("amount")),
            "{bad}"
        );
    }
}

#[test]
fn times_at_the_ends_of_the_business_range() {
    for ok in [
        "2000-01-01T00:00:00+08:00",
        "1999-12-31T16:00:00Z",
        "2099-11-30T23:59:59.999+08:00",
    ] {
        let t = accepted(&with(&[("occurred_at", Some(json!(ok)))]));
        assert!(t.business_date.format("%Y").to_string().len() == 4);
    }
    for bad in [
        "1999-12-31T23:59:59+08:00",
        "2099-12-01T00:00:00+08:00",
        "9999-12-31T23:59:59+08:00",
        "0001-01-01T00:00:00Z",
    ] {
        assert_eq!(
            rejected(&with(&[("occurred_at", Some(json!(bad)))])),
            (Reason::InvalidTimestamp, Some("occurred_at")),
            "{bad}"
        );
    }
}

#[test]
fn a_record_refused_for_its_year_is_accepted_once_corrected() {
    let mut l = Ledger::new();
    assert_eq!(
        l.reject(&with(&[(
            "occurred_at",
            Some(json!("9999-11-20T10:00:00+08:00"))
        )])),
        (Reason::InvalidTimestamp, Some("occurred_at"))
    );
    // only accepted records own a txn_id: the corrected resend is judged afresh
    l.accept(&with(&[]));
}

#[test]
fn identifiers_at_their_longest_and_beyond() {
    let longest = "A".repeat(ID_CHARS_MAX);
    let t = accepted(&with(&[
        ("txn_id", Some(json!(longest))),
        (
            "rrn",
            Some(json!(format!("R{}", "9".repeat(ID_CHARS_MAX - 1)))),
        ),
    ]));
    assert_eq!(t.txn_id.len(), ID_CHARS_MAX);
    for field in ["txn_id", "terminal_id", "rrn", "merchant_id"] {
        let too_long = "7".repeat(ID_CHARS_MAX + 1);
        assert_eq!(
            rejected(&with(&[(field, Some(json!(too_long)))])),
            (Reason::InvalidField, Some(field)),
            "{field} too long"
        );
        for bad in ["a b", "a\u{0}b", "号码", "a;b", "a\"b"] {
            assert_eq!(
                rejected(&with(&[(field, Some(json!(bad)))])),
                (Reason::InvalidField, Some(field)),
                "{field} {bad:?}"
            );
        }
    }
    let longest_ok = "a-Z_0.9:/".repeat(8)[..ID_CHARS_MAX].to_string();
    accepted(&with(&[("txn_id", Some(json!(longest_ok)))]));
}

#[test]
fn optional_texts_at_their_longest_and_beyond() {
    for field in ["stan", "decline_code", "mcc"] {
        let longest = "1".repeat(TEXT_CHARS_MAX);
        accepted(&with(&[(field, Some(json!(longest)))]));
        let too_long = "1".repeat(TEXT_CHARS_MAX + 1);
        assert_eq!(
            rejected(&with(&[(field, Some(json!(too_long)))])),
            (Reason::InvalidField, Some(field)),
            "{field}"
        );
        assert_eq!(
            rejected(&with(&[(field, Some(json!("a\nb")))])),
            (Reason::InvalidField, Some(field)),
            "{field} with a newline"
        );
    }
}

#[test]
fn cards_of_every_length_and_shape() {
    let card = |c: serde_json::Value| accepted(&with(&[("card", Some(c))])).card;
    assert_eq!(
        card(json!("62284800123")),
        Some("62284800123".into()),
        "11 digits: not a card"
    );
    assert_eq!(card(json!("622848001234")), Some("622848**1234".into()));
    assert_eq!(
        card(json!("6228480012345671234")),
        Some("622848*********1234".into())
    );
    assert_eq!(
        card(json!("62284800123456712345")),
        Some("62284800123456712345".into()),
        "20 digits"
    );
    assert_eq!(
        card(json!("6228 4800 1234 5678")),
        Some("622848******5678".into())
    );
    assert_eq!(
        card(json!("6228-4800-1234-5678")),
        Some("622848******5678".into())
    );
    for not_a_string in [
        json!(6228480012345678u64),
        json!(["6228480012345678"]),
        json!({"pan": 1}),
        json!(true),
    ] {
        let mut l = Ledger::new();
        match l.submit(&with(&[("card", Some(not_a_string.clone()))])) {
            clearing_core::ingest::Outcome::Rejected(r) => {
                assert_eq!((r.reason, r.field), (Reason::InvalidField, Some("card")));
                assert!(!r.detail.contains("6228480012345678"), "{}", r.detail);
                assert!(r.mask_all, "every digit run of the line is masked");
            }
            other => panic!("{not_a_string}: {other:?}"),
        }
    }
}

#[test]
fn registry_fields_at_their_extremes() {
    use clearing_core::registry::{parse_intermediary, parse_merchant, REGISTRY_TEXT_CHARS_MAX};
    let merchant = |over: &[(&str, serde_json::Value)]| {
        let mut v = json!({"merchant_id": "M1", "name": "张记面馆", "mcc": "5812",
            "clearing": "first_party", "intermediary_id": null, "settlement_cycle": "T1",
            "fee_plan": "standard", "terminals": ["T1"], "settlement_account": "6222020200112233001"});
        for (k, val) in over {
            v[*k] = val.clone();
        }
        parse_merchant(1, &v.to_string())
    };
    assert!(merchant(&[("merchant_id", json!("9".repeat(ID_CHARS_MAX)))]).is_ok());
    assert!(merchant(&[("name", json!("名".repeat(REGISTRY_TEXT_CHARS_MAX)))]).is_ok());
    for (field, bad) in [
        ("merchant_id", json!("9".repeat(ID_CHARS_MAX + 1))),
        ("merchant_id", json!("M 1")),
        ("name", json!("名".repeat(REGISTRY_TEXT_CHARS_MAX + 1))),
        ("name", json!("a\u{7}b")),
        ("terminals", json!(["T 1"])),
        ("fee_plan", json!("std plan")),
        ("settlement_account", json!("1\n2")),
    ] {
        let e = merchant(&[(field, bad.clone())]).unwrap_err();
        assert_eq!(e.field, field, "{bad}: {e}");
    }
    let e = parse_intermediary(
        3,
        r#"{"intermediary_id":"AGG 1","name":"x","settlement_account":"1"}"#,
    )
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "intermediary_id"));
}
