//! The key schema of the projections' one sled tree, as types: every key
//! is built here and every prefix scanned is built here, so no other code
//! knows where a date or a partition sits inside a key.
//!
//! | key | value |
//! |---|---|
//! | `pos/` partition (u32 BE) | next offset to read (u64 BE), then the link of the last record applied (32 bytes, and 1 when it carried its chain hash) |
//! | `hw/` partition (u32 BE) | highest event `seq` applied per event key of that partition (LZ4 postcard, sorted by key) |
//! | `row/DATE/MERCHANT\0CLEARING\0INTERMEDIARY\0PAYOUT` | settlement row totals (JSON) |
//! | `txn/DATE/` batch's first position (u32 BE, u64 BE) | transaction index segment (LZ4 postcard) |
//! | `rk/DATE/` batch's first position | reconciliation index segment (LZ4 postcard) |
//! | `risk/DATE/` batch's first position | flagged records segment (LZ4 JSON) |
//! | `merchant/ID\0` version (u32 BE) | registry entry with its position (JSON) |
//! | `intermediary/ID\0` version (u32 BE) | intermediary with its position (JSON) |
//! | `fees/` version (u32 BE) | fee schedule with its position (JSON) |
//! | `recon/run/DATE/SHA256/` | a reconciliation run with its position (JSON) |
//! | `recon/break/DATE/SHA256/` index (u64 BE) | a break with its position (JSON) |
//! | `recon/latest/DATE` | the SHA-256 of the date's latest run |
//! | `payout/DATE/` step (`0prepared`, `1approved`, `2exported`, `3result/SHA256`) | a payout batch's events with their positions (JSON) |
//! | `resolution/DATE/TERMINAL\0RRN\0TYPE` | a break's resolution with its position (JSON) |
//! | `bad/` partition (u32 BE), offset (u64 BE) | why the event there could not be decoded |

use chrono::NaiveDate;
use clearing_core::events::RowKey;
use clearing_core::Position;

/// The per-batch segments: one value per business date and batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// The transaction index (postcard).
    Txn,
    /// What reconciliation needs of each record (postcard).
    Recon,
    /// Flagged records (JSON).
    Risk,
}

impl SegmentKind {
    pub const ALL: [SegmentKind; 3] = [SegmentKind::Txn, SegmentKind::Recon, SegmentKind::Risk];

    fn prefix(self) -> &'static str {
        match self {
            SegmentKind::Txn => "txn/",
            SegmentKind::Recon => "rk/",
            SegmentKind::Risk => "risk/",
        }
    }

    /// The kind of a stored key, and how long its `PREFIX/DATE/` part is:
    /// the part of a segment's key that does not depend on batching.
    pub fn of_key(k: &[u8]) -> Option<(SegmentKind, usize)> {
        SegmentKind::ALL.into_iter().find_map(|kind| {
            let p = kind.prefix().as_bytes();
            // `YYYY-MM-DD/`
            let date_part = p.len() + DATE_LEN + 1;
            (k.starts_with(p) && k.len() > date_part && k[date_part - 1] == b'/')
                .then_some((kind, date_part))
        })
    }
}

/// `YYYY-MM-DD`.
const DATE_LEN: usize = 10;

const POSITION: &[u8] = b"pos/";
const HIGH_WATER: &[u8] = b"hw/";
const BAD: &[u8] = b"bad/";

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// Every key of the projections.
pub enum Key<'a> {
    Position(u32),
    HighWater(u32),
    Row(&'a RowKey),
    Segment(SegmentKind, NaiveDate, Position),
    Merchant(&'a str, u32),
    Intermediary(&'a str, u32),
    Fees(u32),
    ReconRun(NaiveDate, &'a str),
    ReconBreak(NaiveDate, &'a str, u64),
    ReconLatest(NaiveDate),
    Payout(NaiveDate, PayoutStep<'a>),
    Resolution(NaiveDate, &'a clearing_core::recon::MatchKey),
    Bad(Position),
}

/// The events of a payout batch, in the order they happen.
#[derive(Clone, Copy, Debug)]
pub enum PayoutStep<'a> {
    Prepared,
    Approved,
    Exported,
    Result(&'a str),
}

impl Key<'_> {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Key::Position(p) => join(&[POSITION, &p.to_be_bytes()]),
            Key::HighWater(p) => join(&[HIGH_WATER, &p.to_be_bytes()]),
            Key::Row(k) => format!(
                "row/{}/{}\0{}\0{}\0{}",
                k.business_date,
                k.merchant_id,
                k.clearing.as_str(),
                k.intermediary_id.as_deref().unwrap_or(""),
                k.payout_date
            )
            .into_bytes(),
            Key::Segment(kind, date, first) => join(&[
                Prefix::Segments(*kind, *date).bytes().as_slice(),
                &first.partition.to_be_bytes(),
                &first.offset.to_be_bytes(),
            ]),
            Key::Merchant(id, v) => {
                join(&[&Prefix::MerchantVersions(id).bytes(), &v.to_be_bytes()])
            }
            Key::Intermediary(id, v) => {
                join(&[&Prefix::IntermediaryVersions(id).bytes(), &v.to_be_bytes()])
            }
            Key::Fees(v) => join(&[&Prefix::FeeSchedules.bytes(), &v.to_be_bytes()]),
            Key::ReconRun(date, sha) => format!("recon/run/{date}/{sha}/").into_bytes(),
            Key::ReconBreak(date, sha, i) => {
                join(&[&Prefix::ReconBreaks(*date, sha).bytes(), &i.to_be_bytes()])
            }
            Key::ReconLatest(date) => format!("recon/latest/{date}").into_bytes(),
            Key::Payout(date, step) => {
                let step = match step {
                    PayoutStep::Prepared => "0prepared".to_string(),
                    PayoutStep::Approved => "1approved".to_string(),
                    PayoutStep::Exported => "2exported".to_string(),
                    PayoutStep::Result(sha) => format!("3result/{sha}"),
                };
                join(&[&Prefix::PayoutOf(*date).bytes(), step.as_bytes()])
            }
            Key::Resolution(date, k) => join(&[
                &Prefix::ResolutionsOf(*date).bytes(),
                format!("{}\0{}\0{}", k.terminal_id, k.rrn, k.txn_type).as_bytes(),
            ]),
            Key::Bad(p) => join(&[BAD, &p.partition.to_be_bytes(), &p.offset.to_be_bytes()]),
        }
    }
}

/// Every prefix the projections are scanned by.
pub enum Prefix<'a> {
    Positions,
    HighWater,
    /// Every settlement row, every date.
    Rows,
    RowsOf(NaiveDate),
    /// Segments of a kind and date.
    Segments(SegmentKind, NaiveDate),
    /// Segments of a kind, every date.
    AllSegments(SegmentKind),
    MerchantVersions(&'a str),
    IntermediaryVersions(&'a str),
    FeeSchedules,
    ReconBreaks(NaiveDate, &'a str),
    /// The latest run of every date.
    ReconLatestAll,
    /// Every payout batch's events.
    Payouts,
    PayoutOf(NaiveDate),
    /// Every resolution.
    Resolutions,
    ResolutionsOf(NaiveDate),
    Bad,
}

impl Prefix<'_> {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Prefix::Positions => POSITION.to_vec(),
            Prefix::HighWater => HIGH_WATER.to_vec(),
            Prefix::Rows => b"row/".to_vec(),
            Prefix::RowsOf(date) => format!("row/{date}/").into_bytes(),
            Prefix::Segments(kind, date) => format!("{}{date}/", kind.prefix()).into_bytes(),
            Prefix::AllSegments(kind) => kind.prefix().as_bytes().to_vec(),
            Prefix::MerchantVersions(id) => join(&[b"merchant/", id.as_bytes(), b"\0"]),
            Prefix::IntermediaryVersions(id) => join(&[b"intermediary/", id.as_bytes(), b"\0"]),
            Prefix::FeeSchedules => b"fees/".to_vec(),
            Prefix::ReconBreaks(date, sha) => format!("recon/break/{date}/{sha}/").into_bytes(),
            Prefix::ReconLatestAll => b"recon/latest/".to_vec(),
            Prefix::Payouts => b"payout/".to_vec(),
            Prefix::PayoutOf(date) => format!("payout/{date}/").into_bytes(),
            Prefix::Resolutions => b"resolution/".to_vec(),
            Prefix::ResolutionsOf(date) => format!("resolution/{date}/").into_bytes(),
            Prefix::Bad => BAD.to_vec(),
        }
    }
}

/// The partition of a `pos/` key.
pub fn position_partition(k: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(
        k.strip_prefix(POSITION)?.try_into().ok()?,
    ))
}

/// The partition of a `hw/` key.
pub fn high_water_partition(k: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(
        k.strip_prefix(HIGH_WATER)?.try_into().ok()?,
    ))
}

/// The position of a `bad/` key.
pub fn bad_position(k: &[u8]) -> Option<Position> {
    let rest = k.strip_prefix(BAD)?;
    if rest.len() != 12 {
        return None;
    }
    Some(Position::new(
        u32::from_be_bytes(rest[..4].try_into().ok()?),
        u64::from_be_bytes(rest[4..].try_into().ok()?),
    ))
}

/// The version at the end of a registry key under `prefix`.
pub fn version_after(prefix: &[u8], k: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(k.strip_prefix(prefix)?.try_into().ok()?))
}

/// The business date of a segment key (`PREFIX/DATE/…`).
pub fn segment_date(k: &[u8]) -> Option<NaiveDate> {
    let (_, date_part) = SegmentKind::of_key(k)?;
    let text = std::str::from_utf8(&k[date_part - 1 - DATE_LEN..date_part - 1]).ok()?;
    text.parse().ok()
}

/// Keys left out of the digest: where the state stands, not what it is.
pub fn is_position(k: &[u8]) -> bool {
    k.starts_with(POSITION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_keys_say_their_kind_and_date_part() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        for kind in SegmentKind::ALL {
            let k = Key::Segment(kind, d, Position::new(1, 7)).bytes();
            let (found, len) = SegmentKind::of_key(&k).unwrap();
            assert_eq!(found, kind);
            assert_eq!(&k[..len], Prefix::Segments(kind, d).bytes().as_slice());
        }
        assert!(SegmentKind::of_key(b"row/2026-11-20/x").is_none());
        assert_eq!(
            bad_position(&Key::Bad(Position::new(3, 9)).bytes()),
            Some(Position::new(3, 9))
        );
        assert_eq!(position_partition(&Key::Position(4).bytes()), Some(4));
        assert_eq!(high_water_partition(&Key::HighWater(2).bytes()), Some(2));
    }
}
