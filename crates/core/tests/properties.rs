//! Property tests of the money invariants. Every run prints its seed;
//! `CLEARING_TEST_SEED=N cargo test` replays it exactly.

mod common;

use clearing_core::fees::{sale_fee, ChannelFee};
use clearing_core::ingest::Outcome;
use clearing_core::postings::{reverse, sale_entry, sum, Route};
use clearing_core::registry::Clearing;
use clearing_core::{Channel, EventBody, Fen};
use clearing_testkit::seeded_runner;
use common::*;
use proptest::prelude::*;

const CHANNELS: [Channel; 5] = [
    Channel::DebitCard,
    Channel::CreditCard,
    Channel::Wechat,
    Channel::Alipay,
    Channel::UnionpayQr,
];

/// Half-up rounding of `amount_fen × rate_num / rate_den` in plain integers:
/// an oracle independent of the Decimal code under test.
fn oracle_fee(amount_fen: i64, rate_num: i64, rate_den: i64) -> i64 {
    let x = amount_fen as i128 * rate_num as i128;
    ((2 * x + rate_den as i128) / (2 * rate_den as i128)) as i64
}

#[test]
fn fee_is_the_half_up_rate_and_never_exceeds_the_cap() {
    let mut r = seeded_runner("fee_is_the_half_up_rate_and_never_exceeds_the_cap", 256);
    // rates as (numerator, denominator, text)
    let rates = [
        (5i64, 1000i64, "0.005"),
        (6, 1000, "0.006"),
        (38, 10_000, "0.0038"),
        (0, 1, "0"),
        (125, 100_000, "0.00125"),
    ];
    r.run(
        &(
            1i64..=1_000_000_000,
            0usize..5,
            proptest::option::of(0i64..=100_000),
        ),
        |(amount, ri, cap)| {
            let (num, den, text) = rates[ri];
            let rule = ChannelFee {
                rate: text.parse().unwrap(),
                cap: cap.map(Fen),
            };
            let fee = sale_fee(Fen(amount), &rule).unwrap();
            let expected = oracle_fee(amount, num, den);
            let expected = cap.map_or(expected, |c| expected.min(c));
            prop_assert_eq!(fee, Fen(expected));
            if let Some(c) = cap {
                prop_assert!(fee.0 <= c);
            }
            prop_assert!(fee.0 >= 0 && fee.0 <= amount);
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn postings_always_sum_to_zero() {
    let mut r = seeded_runner("postings_always_sum_to_zero", 256);
    r.run(
        &(1i64..=1_000_000_000, 0usize..5, any::<bool>(), 0i64..=1000),
        |(amount, ci, second, fee_permille)| {
            let fee = Fen(amount * fee_permille / 1000);
            let route = Route {
                merchant_id: "M".into(),
                clearing: if second {
                    Clearing::SecondParty
                } else {
                    Clearing::FirstParty
                },
                intermediary_id: second.then(|| "AGG".to_string()),
            };
            let e = sale_entry(&route, CHANNELS[ci], Fen(amount), fee).unwrap();
            prop_assert_eq!(sum(&e.postings), Ok(Fen::ZERO));
            prop_assert_eq!(sum(&e.sub_ledger), Ok(Fen::ZERO));
            prop_assert_eq!(e.sub_ledger.is_empty(), !second);
            let back = reverse(&e).unwrap();
            prop_assert_eq!(sum(&back.postings), Ok(Fen::ZERO));
            Ok(())
        },
    )
    .unwrap();
}

/// Random days: a sale, then a random stream of refunds (some too big) and
/// voids through `decide`. Refunds never exceed the sale, fees given back
/// never exceed its fee and equal it exactly once fully refunded, every
/// accepted event's postings balance.
#[test]
fn refunds_never_exceed_the_sale_and_give_back_exactly_its_fee() {
    let mut r = seeded_runner(
        "refunds_never_exceed_the_sale_and_give_back_exactly_its_fee",
        256,
    );
    let ops = proptest::collection::vec((0u8..10, 1i64..=2_000_000), 1..12);
    r.run(
        &(
            1i64..=1_000_000,
            0usize..5,
            prop_oneof![Just(M1), Just(M2), Just(M3)],
            ops,
        ),
        |(sale_fen, ci, merchant, ops)| {
            let mut l = Ledger::new();
            let amount = Fen(sale_fen).to_string();
            let s = l.accept(&sale(
                "P1",
                merchant,
                CHANNELS[ci].as_str(),
                &amount,
                "2026-11-20T10:00:00+08:00",
            ));
            let mut refunded = 0i64;
            let mut fee_back = 0i64;
            for (i, (kind, amt)) in ops.into_iter().enumerate() {
                let amt = if kind < 3 {
                    sale_fen - refunded
                } else {
                    amt.min(sale_fen * 2)
                };
                if amt <= 0 {
                    continue;
                }
                let line = if kind == 9 {
                    follow_up(
                        &format!("V{i}"),
                        "void",
                        "P1",
                        merchant,
                        &Fen(sale_fen).to_string(),
                        "2026-11-20T10:30:00+08:00",
                    )
                } else {
                    follow_up(
                        &format!("F{i}"),
                        "refund",
                        "P1",
                        merchant,
                        &Fen(amt).to_string(),
                        "2026-11-21T10:00:00+08:00",
                    )
                };
                if let Outcome::Accepted(e) = l.submit(&line) {
                    let EventBody::TransactionRecorded(t) = &e.body else {
                        unreachable!()
                    };
                    prop_assert_eq!(sum(&t.entry.postings), Ok(Fen::ZERO));
                    if t.txn_type == clearing_core::TxnType::Refund {
                        refunded += t.amount.0;
                        fee_back += t.fee.0;
                        prop_assert!(t.fee.0 >= 0, "refund fee is never negative");
                    }
                }
            }
            prop_assert!(
                refunded <= sale_fen,
                "refunds {} exceed sale {}",
                refunded,
                sale_fen
            );
            prop_assert!(fee_back <= s.fee.0);
            if refunded == sale_fen {
                prop_assert_eq!(
                    fee_back,
                    s.fee.0,
                    "a fully refunded sale gives back exactly its fee"
                );
            }
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn the_fast_local_time_of_day_agrees_with_the_full_parse() {
    use chrono::Timelike;
    use clearing_core::calendar::{local_seconds_of_day, local_time, parse_timestamp};
    let mut runner = clearing_testkit::seeded_runner("local_seconds", 2000);
    let shape = (
        0u32..24,
        0u32..60,
        0u32..60,
        0usize..4,
        -14i32..15,
        0u32..4,
        any::<bool>(),
    );
    runner
        .run(&shape, |(h, m, s, frac, oh, oq, zulu)| {
            let frac = ["", ".5", ".123", ".123456"][frac];
            let offset = if zulu {
                "Z".to_string()
            } else {
                format!(
                    "{}{:02}:{:02}",
                    if oh < 0 { '-' } else { '+' },
                    oh.abs(),
                    oq * 15
                )
            };
            let text = format!("2026-11-20T{h:02}:{m:02}:{s:02}{frac}{offset}");
            let full = parse_timestamp(&text).map(|t| local_time(t).num_seconds_from_midnight());
            prop_assert_eq!(local_seconds_of_day(&text), full, "{}", text);
            Ok(())
        })
        .unwrap();
}

#[test]
fn timestamps_are_read_as_chrono_reads_rfc_3339() {
    use clearing_core::Timestamp;
    let mut runner = clearing_testkit::seeded_runner("timestamp_fast_path", 4000);
    let shape = (
        (0i32..10_000, 0u32..14, 0u32..33),
        (0u32..25, 0u32..61, 0u32..61),
        0usize..11,
        (-24i32..25, 0u32..61, 0u8..3),
    );
    runner
        .run(&shape, |((y, mo, d), (h, mi, s), frac, (oh, om, zone))| {
            let frac = if frac == 0 {
                String::new()
            } else {
                format!(".{}", &"1234567890"[..frac])
            };
            let offset = match zone {
                0 => "Z".to_string(),
                _ => format!(
                    "{}{:02}:{:02}",
                    if oh < 0 { '-' } else { '+' },
                    oh.abs(),
                    om
                ),
            };
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{offset}");
            let ours = Timestamp::parse(&text).map(|t| t.at());
            let chrono = chrono::DateTime::parse_from_rfc3339(&text).ok();
            prop_assert_eq!(ours, chrono, "{}", text);
            if let Some(t) = Timestamp::parse(&text) {
                prop_assert_eq!(t.as_str(), text.as_str());
            }
            Ok(())
        })
        .unwrap();
}
