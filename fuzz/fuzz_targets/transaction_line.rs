//! A transaction line, decided against the day1 fixture's reference data:
//! never a panic, and an accepted record's event reads back as it was.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use clearing_core::calendar::Calendar;
use clearing_core::ingest::{decide, Outcome, TxnState};
use clearing_core::registry::{plan_registry_load, Reference, RegistryChange, VersionedFees};
use clearing_core::{Event, Timestamp};
use libfuzzer_sys::fuzz_target;

const FEES: &str = include_str!("../../tests/fixtures/day1/fees.toml");
const MERCHANTS: &str = include_str!("../../tests/fixtures/day1/merchants.jsonl");
const INTERMEDIARIES: &str = include_str!("../../tests/fixtures/day1/intermediaries.jsonl");

fn world() -> &'static (Reference, VersionedFees) {
    static WORLD: OnceLock<(Reference, VersionedFees)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let schedule = clearing_producer::fees::parse_fees("fees.toml", FEES).unwrap();
        let fees = VersionedFees {
            version: 1,
            schedule,
            calendar: Calendar::default(),
        };
        let mut reference = Reference {
            fees: Some(fees.clone()),
            ..Reference::default()
        };
        let lines = |t: &str| clearing_producer::numbered_lines(t);
        for change in plan_registry_load(&reference, &lines(MERCHANTS), &lines(INTERMEDIARIES)).unwrap() {
            match change {
                RegistryChange::IntermediaryRegistered(v) | RegistryChange::IntermediaryUpdated(v) => {
                    reference.put_intermediary(v.version, v.value)
                }
                RegistryChange::MerchantRegistered(v) | RegistryChange::MerchantUpdated(v) => {
                    reference.put_merchant(v.version, v.value)
                }
            }
        }
        (reference, fees)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let (reference, fees) = world();
    let txns: HashMap<String, TxnState> = HashMap::new();
    let at = Timestamp::parse("2026-11-21T09:00:00.000+08:00").unwrap();
    if let Outcome::Accepted(event) = decide(reference, fees, &txns, &at, line) {
        let back = Event::decode(&event.encode()).expect("an accepted record's event decodes");
        assert_eq!(back, *event, "an accepted record reads back as it was recorded");
    }
});
