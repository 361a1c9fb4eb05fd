//! A registry load: the first half of the input as merchants.jsonl, the
//! rest as intermediaries.jsonl; accepted whole or refused naming the line
//! and field, never a panic.
#![no_main]

use clearing_core::registry::{plan_registry_load, Reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (m, i) = text.split_at(mid);
    let lines = clearing_producer::numbered_lines;
    if let Err(e) = plan_registry_load(&Reference::default(), &lines(m), &lines(i)) {
        assert!(e.error.line >= 1 || e.error.field == "terminals");
    }
});
