//! Bytes on the events topic, decoded as this build decodes every schema
//! version: never a panic; what decodes encodes and decodes again to the
//! same event.
#![no_main]

use clearing_core::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = clearing_core::chain::Link::of(data);
    if let Ok(event) = Event::decode(data) {
        let again = Event::decode(&event.encode()).expect("an event this build wrote decodes");
        assert_eq!(again, event);
    }
});
