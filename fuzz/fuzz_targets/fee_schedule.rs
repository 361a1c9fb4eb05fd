//! A fee schedule and a holiday calendar: accepted whole or refused with
//! the line and field named, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = clearing_producer::fees::parse_fees("fees.toml", text) {
        assert!(!e.field.is_empty());
    }
    let _ = clearing_producer::fees::parse_holidays("holidays.txt", text);
});
