//! A channel clearing file in the `unionpay-fixed` layout: every line validated or
//! reported bad, never a panic.
#![no_main]

use clearing_recon::reader::{ChannelReader, Parsed};
use clearing_recon::Layout;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let date = "2026-11-20".parse().unwrap();
    let Ok(mut r) = ChannelReader::new("fuzz.dat", data, Layout::UnionpayFixed, date) else {
        return;
    };
    let mut n = 0u64;
    while let Ok(Some(line)) = r.next_line() {
        n += 1;
        if let Parsed::Line(l) = line {
            assert!(l.amount.0 > 0, "amounts are positive");
        }
        assert!(n <= data.len() as u64 + 1, "more lines than bytes");
    }
});
