//! `YYYY-MM-DD` dates on the wire, formatted and parsed without chrono's
//! format machinery: every event carries two or three of them.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serializer};

fn write(d: NaiveDate, buf: &mut [u8; 10]) -> &str {
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        // Out of the 4-digit range no business date can be; keep it exact.
        return "";
    }
    let y = y as u32;
    let digits = [
        y / 1000,
        y / 100 % 10,
        y / 10 % 10,
        y % 10,
        10,
        m / 10,
        m % 10,
        10,
        day / 10,
        day % 10,
    ];
    for (b, v) in buf.iter_mut().zip(digits) {
        *b = if v == 10 { b'-' } else { b'0' + v as u8 };
    }
    std::str::from_utf8(buf).expect("ASCII")
}

pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    match write(*d, &mut [0; 10]) {
        "" => s.collect_str(d),
        text => s.serialize_str(text),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let text: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
    parse(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a YYYY-MM-DD date")))
}

/// Parses `YYYY-MM-DD` strictly.
pub fn parse(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_impossible_dates() {
        let d = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        assert_eq!(write(d, &mut [0; 10]), "2026-02-03");
        assert_eq!(parse("2026-02-03"), Some(d));
        assert_eq!(parse("2026-02-30"), None);
        assert_eq!(parse("2026-2-03"), None);
        assert_eq!(parse("2026-02-0x"), None);
    }
}
