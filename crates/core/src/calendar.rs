//! Business dates and payout dates (SPEC §4.1, §11).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

/// UTC+08:00, the local time of every business-date rule.
pub fn china_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// Parses an RFC 3339 timestamp with a mandatory offset (`Z` allowed).
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// The first moment a transaction may have occurred at.
pub const BUSINESS_FROM: &str = "2000-01-01T00:00:00+08:00";
/// The moment from which transactions are refused: its business date,
/// payout date and every date derived from it must stay four-digit years.
pub const BUSINESS_UNTIL: &str = "2099-12-01T00:00:00+08:00";

/// Whether a moment lies in the ledger's business range.
pub fn in_business_range(t: DateTime<FixedOffset>) -> bool {
    let from = DateTime::parse_from_rfc3339(BUSINESS_FROM).expect("a valid constant");
    let until = DateTime::parse_from_rfc3339(BUSINESS_UNTIL).expect("a valid constant");
    t >= from && t < until
}

/// The business date of a moment: its local (UTC+08:00) date, plus one day
/// at or after the cutoff.
pub fn business_date(occurred_at: DateTime<FixedOffset>, cutoff: NaiveTime) -> NaiveDate {
    let local = occurred_at.with_timezone(&china_offset()).naive_local();
    if local.time() >= cutoff {
        local.date() + Days::new(1)
    } else {
        local.date()
    }
}

/// When a transaction counts as "in the last 10 minutes before cutoff" of its
/// business date (used by reconciliation's held pool).
pub fn is_near_cutoff(occurred_at: DateTime<FixedOffset>, cutoff: NaiveTime) -> bool {
    is_near_cutoff_local(local_time(occurred_at), cutoff)
}

/// The local (UTC+08:00) time of day of a moment.
pub fn local_time(occurred_at: DateTime<FixedOffset>) -> NaiveTime {
    occurred_at
        .with_timezone(&china_offset())
        .naive_local()
        .time()
}

/// Local (UTC+08:00) seconds since midnight of an RFC 3339 timestamp, read
/// without a full parse when it has the usual shape
/// (`YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`), else through `parse_timestamp`.
pub fn local_seconds_of_day(s: &str) -> Option<u32> {
    use chrono::Timelike;
    let b = s.as_bytes();
    let num = |i: usize| -> Option<i64> {
        let (a, c) = (*b.get(i)?, *b.get(i + 1)?);
        (a.is_ascii_digit() && c.is_ascii_digit()).then(|| ((a - b'0') * 10 + (c - b'0')) as i64)
    };
    let fast = || -> Option<u32> {
        if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, m, sec) = (num(11)?, num(14)?, num(17)?);
        if h > 23 || m > 59 || sec > 59 {
            return None;
        }
        let mut i = 19;
        if b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        let offset = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                let o = num(i + 1)? * 3600 + num(i + 4)? * 60;
                if *sign == b'+' {
                    o
                } else {
                    -o
                }
            }
            _ => return None,
        };
        let utc = h * 3600 + m * 60 + sec - offset;
        Some((utc + 8 * 3600).rem_euclid(86_400) as u32)
    };
    fast().or_else(|| parse_timestamp(s).map(|t| local_time(t).num_seconds_from_midnight()))
}

/// `is_near_cutoff` for a local time of day.
pub fn is_near_cutoff_local(t: NaiveTime, cutoff: NaiveTime) -> bool {
    let start = cutoff - chrono::Duration::minutes(10);
    if start <= cutoff {
        t >= start && t < cutoff
    } else {
        // cutoff within the first 10 minutes after midnight
        t >= start || t < cutoff
    }
}

crate::wire_enum! {
    /// Settlement cycle of a merchant.
    pub enum SettlementCycle {
        /// Paid on the first working day after the business date.
        T1 = "T1",
        /// Paid on the business date itself, working day or not.
        D0 = "D0",
    }
}

/// Non-working days besides Saturdays and Sundays (`holidays.txt`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Calendar {
    pub holidays: BTreeSet<NaiveDate>,
}

/// Longest run of non-working days we will walk through looking for the
/// next working day. Chinese Golden Week plus weekends is under 10 days; a
/// calendar with a longer gap is almost certainly wrong, and looping for
/// ever on one (every day a holiday) must be impossible.
const NON_WORKING_RUN_MAX: u64 = 60;

impl Calendar {
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The payout date of a business date under a cycle. `None` only when
    /// the calendar has no working day within `NON_WORKING_RUN_MAX` days.
    pub fn payout_date(
        &self,
        business_date: NaiveDate,
        cycle: SettlementCycle,
    ) -> Option<NaiveDate> {
        match cycle {
            SettlementCycle::D0 => Some(business_date),
            SettlementCycle::T1 => (1..=NON_WORKING_RUN_MAX)
                .map(|n| business_date + Days::new(n))
                .find(|d| self.is_working_day(*d)),
        }
    }

    /// Parses `holidays.txt`: one `YYYY-MM-DD` a line; blank lines and
    /// `#` comments are allowed. Errors name the line.
    pub fn parse(text: &str) -> Result<Calendar, (usize, String)> {
        let mut holidays = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let d = NaiveDate::parse_from_str(line, "%Y-%m-%d")
                .map_err(|_| (i + 1, format!("{line:?} is not a YYYY-MM-DD date")))?;
            holidays.insert(d);
        }
        Ok(Calendar { holidays })
    }
}
