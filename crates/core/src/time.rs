//! Moments in time as the ledger reads and writes them: RFC 3339 with an
//! offset, parsed once where they enter and kept with the text they came
//! in, so that an event says exactly what its input said.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An RFC 3339 moment with its offset (`Z` allowed), and its text.
#[derive(Clone, Debug)]
pub struct Timestamp {
    at: DateTime<FixedOffset>,
    text: Box<str>,
}

impl Timestamp {
    /// Parses RFC 3339 with a mandatory offset; `None` for anything else.
    pub fn parse(text: &str) -> Option<Timestamp> {
        Some(Timestamp {
            at: parse_rfc3339(text)?,
            text: text.into(),
        })
    }

    /// A moment as this ledger writes its own times: to the millisecond,
    /// in the given offset.
    pub fn from_datetime(at: DateTime<FixedOffset>) -> Timestamp {
        let text = at.to_rfc3339_opts(SecondsFormat::Millis, false);
        // Parsed back, so that the moment is exactly what the text says.
        let at = parse_rfc3339(&text).expect("chrono writes RFC 3339");
        Timestamp {
            at,
            text: text.into(),
        }
    }

    pub fn at(&self) -> DateTime<FixedOffset> {
        self.at
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The local (UTC+08:00) calendar date of the moment.
    pub fn local_date(&self) -> NaiveDate {
        self.at
            .with_timezone(&crate::calendar::china_offset())
            .date_naive()
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Timestamp) -> bool {
        self.text == other.text
    }
}

impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Timestamp) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By moment; two spellings of one moment by their text.
impl Ord for Timestamp {
    fn cmp(&self, other: &Timestamp) -> Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl std::hash::Hash for Timestamp {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.text.hash(h)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.text)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;
    fn from_str(s: &str) -> Result<Timestamp, String> {
        Timestamp::parse(s).ok_or_else(|| {
            format!("{s:?} is not an RFC 3339 time with offset (2026-11-20T18:00:00+08:00)")
        })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
        Timestamp::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time with an offset"))
        })
    }
}

/// RFC 3339 with an offset. The usual shape
/// (`YYYY-MM-DDThh:mm:ss[.fff…](Z|±hh:mm)`) is read directly: every event
/// carries two of these; anything else goes through chrono, whose reading
/// is the definition (the fast path accepts a subset and agrees with it).
pub fn parse_rfc3339(s: &str) -> Option<DateTime<FixedOffset>> {
    fast(s.as_bytes()).or_else(|| DateTime::parse_from_rfc3339(s).ok())
}

fn fast(b: &[u8]) -> Option<DateTime<FixedOffset>> {
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let (h, m, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if sec > 59 {
        // A leap second: chrono's reading decides.
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(start..i)? * 10u32.pow(9 - n as u32);
    }
    let offset = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (digits(i + 1..i + 3)?, digits(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 3600 + om * 60) as i32;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let local = date.and_hms_nano_opt(h, m, sec, nanos)?;
    let offset = FixedOffset::east_opt(offset)?;
    let utc = local.checked_sub_signed(chrono::Duration::seconds(i64::from(
        offset.local_minus_utc(),
    )))?;
    Some(DateTime::from_naive_utc_and_offset(utc, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_reading_agrees_with_chrono() {
        for s in [
            "2026-11-20T21:15:03+08:00",
            "2026-11-20T21:15:03Z",
            "2026-11-20T21:15:03.1+08:00",
            "2026-11-20T21:15:03.123456789-05:30",
            "2026-02-28T00:00:00+00:00",
            "2024-02-29T23:59:59.999Z",
        ] {
            assert_eq!(
                fast(s.as_bytes()),
                DateTime::parse_from_rfc3339(s).ok(),
                "{s}"
            );
            assert!(fast(s.as_bytes()).is_some(), "{s}");
        }
        for s in [
            "2026-02-30T00:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T21:15:03",
            "2026-11-20T21:15:03.+08:00",
            "2026-11-20T21:15:03+0800",
            "2026-11-20 21:15:03Z",
        ] {
            assert_eq!(fast(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn keeps_the_text_and_orders_by_moment() {
        let a = Timestamp::parse("2026-11-20T13:00:00Z").unwrap();
        let b = Timestamp::parse("2026-11-20T21:00:00+08:00").unwrap();
        assert_eq!(a.at(), b.at());
        assert_ne!(a, b);
        assert_eq!(a.as_str(), "2026-11-20T13:00:00Z");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "\"2026-11-20T13:00:00Z\""
        );
        let c = Timestamp::parse("2026-11-20T21:00:00.001+08:00").unwrap();
        assert!(b < c && a < c);
        assert!(Timestamp::parse("yesterday").is_none());
        let own = Timestamp::from_datetime(c.at());
        assert_eq!(own.as_str(), "2026-11-20T21:00:00.001+08:00");
    }
}
