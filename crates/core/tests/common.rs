//! A small ledger for the core's tests: a registry, the SPEC fee schedule,
//! and the write model fold, with `submit` deciding one line at a time.
#![allow(dead_code)]

use std::collections::HashMap;

use chrono::NaiveTime;
use clearing_core::calendar::{Calendar, SettlementCycle};
use clearing_core::events::TxnRecorded;
use clearing_core::fees::{ChannelFee, FeeSchedule};
use clearing_core::ingest::{apply, decide, Outcome, Reason, TxnState};
use clearing_core::registry::{Clearing, Intermediary, Merchant, Reference, VersionedFees};
use clearing_core::{Channel, EventBody, Fen};
use rust_decimal::Decimal;

pub const M1: &str = "822584053110001"; // 一清, T1, standard, MCC 5812
pub const M2: &str = "822584053110002"; // 二清 via AGG001, D0, standard, MCC 5411
pub const M3: &str = "822584053110003"; // 一清, T1, exempt, MCC 8062
pub const M4: &str = "822584053110004"; // 一清, T1, plan "wallets_only" (no card channels)

pub fn rate(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub fn schedule() -> FeeSchedule {
    let plan = |entries: &[(Channel, &str, Option<i64>)]| {
        entries
            .iter()
            .map(|(c, r, cap)| {
                (
                    *c,
                    ChannelFee {
                        rate: rate(r),
                        cap: cap.map(Fen),
                    },
                )
            })
            .collect()
    };
    let mut plans = std::collections::BTreeMap::new();
    plans.insert(
        "standard".to_string(),
        plan(&[
            (Channel::DebitCard, "0.005", Some(2000)),
            (Channel::CreditCard, "0.006", None),
            (Channel::Wechat, "0.0038", None),
            (Channel::Alipay, "0.0038", None),
            (Channel::UnionpayQr, "0.006", None),
        ]),
    );
    plans.insert(
        "exempt".to_string(),
        plan(&[
            (Channel::DebitCard, "0", None),
            (Channel::CreditCard, "0", None),
            (Channel::Wechat, "0", None),
            (Channel::Alipay, "0", None),
            (Channel::UnionpayQr, "0", None),
        ]),
    );
    plans.insert(
        "wallets_only".to_string(),
        plan(&[
            (Channel::Wechat, "0.003", None),
            (Channel::Alipay, "0.003", None),
        ]),
    );
    FeeSchedule {
        cutoff: NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
        plans,
    }
}

fn merchant(
    id: &str,
    mcc: &str,
    clearing: Clearing,
    cycle: SettlementCycle,
    plan: &str,
    terminals: &[&str],
) -> Merchant {
    Merchant {
        merchant_id: id.to_string(),
        name: format!("merchant {id}"),
        mcc: mcc.to_string(),
        clearing,
        intermediary_id: (clearing == Clearing::SecondParty).then(|| "AGG001".to_string()),
        settlement_cycle: cycle,
        fee_plan: plan.to_string(),
        terminals: terminals.iter().map(|t| t.to_string()).collect(),
        settlement_account: "6222020200112233445".to_string(),
    }
}

pub struct Ledger {
    pub reference: Reference,
    pub fees: VersionedFees,
    pub txns: HashMap<String, TxnState>,
    pub recorded: Vec<TxnRecorded>,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger::new()
    }
}

impl Ledger {
    /// Given: the SPEC fee schedule, 2026's October holidays, four merchants.
    pub fn new() -> Ledger {
        let mut reference = Reference::default();
        reference.put_intermediary(
            1,
            Intermediary {
                intermediary_id: "AGG001".into(),
                name: "某某聚合".into(),
                settlement_account: "1".into(),
            },
        );
        reference.put_merchant(
            1,
            merchant(
                M1,
                "5812",
                Clearing::FirstParty,
                SettlementCycle::T1,
                "standard",
                &["10000001", "10000002"],
            ),
        );
        reference.put_merchant(
            1,
            merchant(
                M2,
                "5411",
                Clearing::SecondParty,
                SettlementCycle::D0,
                "standard",
                &["10000003"],
            ),
        );
        reference.put_merchant(
            1,
            merchant(
                M3,
                "8062",
                Clearing::FirstParty,
                SettlementCycle::T1,
                "exempt",
                &["10000004"],
            ),
        );
        reference.put_merchant(
            1,
            merchant(
                M4,
                "5999",
                Clearing::FirstParty,
                SettlementCycle::T1,
                "wallets_only",
                &["10000005"],
            ),
        );
        let calendar =
            Calendar::parse("2026-10-01\n2026-10-02\n2026-10-05\n2026-10-06\n2026-10-07\n")
                .unwrap();
        Ledger {
            reference,
            fees: VersionedFees {
                version: 1,
                schedule: schedule(),
                calendar,
            },
            txns: HashMap::new(),
            recorded: Vec::new(),
        }
    }

    /// When: one input line is decided (and, if accepted, applied).
    pub fn submit(&mut self, line: &str) -> Outcome {
        let outcome = decide(
            &self.reference,
            &self.fees,
            &self.txns,
            &clearing_core::Timestamp::parse("2026-11-21T09:00:00.000+08:00").unwrap(),
            line,
        );
        if let Outcome::Accepted(event) = &outcome {
            apply(&mut self.reference, &mut self.txns, event);
            if let EventBody::TransactionRecorded(t) = &event.body {
                self.recorded.push((**t).clone());
            }
        }
        outcome
    }

    /// Submits and expects acceptance; returns the recorded transaction.
    pub fn accept(&mut self, line: &str) -> TxnRecorded {
        match self.submit(line) {
            Outcome::Accepted(e) => match e.body {
                EventBody::TransactionRecorded(t) => *t,
                other => panic!("not a transaction: {other:?}"),
            },
            other => panic!("expected acceptance of {line}, got {other:?}"),
        }
    }

    /// Submits and expects a rejection; returns its reason and field.
    pub fn reject(&mut self, line: &str) -> (Reason, Option<&'static str>) {
        match self.submit(line) {
            Outcome::Rejected(r) => (r.reason, r.field),
            other => panic!("expected a rejection of {line}, got {other:?}"),
        }
    }
}

/// A transaction line; `over` replaces or removes (`None`) fields.
pub fn txn(
    id: &str,
    kind: &str,
    merchant: &str,
    channel: &str,
    amount: &str,
    at: &str,
    over: &[(&str, Option<serde_json::Value>)],
) -> String {
    let terminal = match merchant {
        M1 => "10000001",
        M2 => "10000003",
        M3 => "10000004",
        _ => "10000005",
    };
    let mut v = serde_json::json!({
        "txn_id": id, "type": kind, "original_txn_id": null, "merchant_id": merchant,
        "terminal_id": terminal, "channel": channel, "amount": amount, "currency": "CNY",
        "result": "approved", "decline_code": null, "rrn": format!("4321{id}"), "stan": "000123",
        "card": null, "occurred_at": at,
    });
    let obj = v.as_object_mut().unwrap();
    for (k, val) in over {
        match val {
            Some(val) => {
                obj.insert(k.to_string(), val.clone());
            }
            None => {
                obj.remove(*k);
            }
        }
    }
    v.to_string()
}

pub fn sale(id: &str, merchant: &str, channel: &str, amount: &str, at: &str) -> String {
    txn(id, "sale", merchant, channel, amount, at, &[])
}

pub fn follow_up(
    id: &str,
    kind: &str,
    original: &str,
    merchant: &str,
    amount: &str,
    at: &str,
) -> String {
    txn(
        id,
        kind,
        merchant,
        "credit_card",
        amount,
        at,
        &[("original_txn_id", Some(original.into()))],
    )
}

pub fn fen(s: &str) -> Fen {
    Fen::parse_signed(s).unwrap()
}
