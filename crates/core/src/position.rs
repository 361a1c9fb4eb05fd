//! Where things are on the log: a record's position, the positions a
//! projection has reached (or a cut of the log), and a value read from the
//! log with where and when it was recorded.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Timestamp;

/// Where a record sits in a topic: partition and offset, as in Kafka.
/// Written `PARTITION:OFFSET`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

impl Position {
    pub fn new(partition: u32, offset: u64) -> Position {
        Position { partition, offset }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_none() {
            write!(f, "{}:{}", self.partition, self.offset)
        } else {
            f.pad(&format!("{}:{}", self.partition, self.offset))
        }
    }
}

impl FromStr for Position {
    type Err = String;
    fn from_str(s: &str) -> Result<Position, String> {
        let (p, o) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not PARTITION:OFFSET"))?;
        Ok(Position {
            partition: p
                .parse()
                .map_err(|_| format!("{p:?} is not a partition number"))?,
            offset: o.parse().map_err(|_| format!("{o:?} is not an offset"))?,
        })
    }
}

impl Serialize for Position {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Position, D::Error> {
        let text: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The next offset to read per partition: where a projection stands, or
/// a cut of the log (the records before those offsets). Written
/// `0:1234,1:567`, partitions in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions(BTreeMap<u32, u64>);

impl Positions {
    pub fn new() -> Positions {
        Positions::default()
    }

    /// The next offset of a partition (0 when none is stored).
    pub fn next(&self, partition: u32) -> u64 {
        self.0.get(&partition).copied().unwrap_or(0)
    }

    /// The stored next offset of a partition, when one is stored.
    pub fn get(&self, partition: &u32) -> Option<&u64> {
        self.0.get(partition)
    }

    pub fn set(&mut self, partition: u32, next: u64) {
        self.0.insert(partition, next);
    }

    /// Notes that the record at `p` has been read: the next offset of its
    /// partition is past it, if it was not already.
    pub fn advance_past(&mut self, p: Position) {
        let next = self.0.entry(p.partition).or_insert(0);
        *next = (*next).max(p.offset + 1);
    }

    pub fn contains(&self, partition: u32) -> bool {
        self.0.contains_key(&partition)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `(partition, next offset)`, partitions in order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.0.iter().map(|(p, o)| (*p, *o))
    }

    /// The sum of the next offsets: how many records lie before them when
    /// every partition starts at 0.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `{"0": 1234, "1": 567}`, the shape `digest --format json` prints.
    pub fn as_json_map(&self) -> BTreeMap<String, u64> {
        self.iter().map(|(p, o)| (p.to_string(), o)).collect()
    }

    pub fn extend(&mut self, other: &Positions) {
        self.0.extend(other.iter());
    }
}

impl FromIterator<(u32, u64)> for Positions {
    fn from_iter<I: IntoIterator<Item = (u32, u64)>>(iter: I) -> Positions {
        Positions(iter.into_iter().collect())
    }
}

impl fmt::Display for Positions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.iter().map(|(p, o)| format!("{p}:{o}")).collect();
        f.pad(&text.join(","))
    }
}

impl FromStr for Positions {
    type Err = String;
    fn from_str(s: &str) -> Result<Positions, String> {
        let mut out = Positions::new();
        for part in s.trim().split(',') {
            let p: Position = part.trim().parse()?;
            if out.contains(p.partition) {
                return Err(format!("{s:?} names partition {} twice", p.partition));
            }
            out.set(p.partition, p.offset);
        }
        Ok(out)
    }
}

impl Serialize for Positions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Positions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Positions, D::Error> {
        let text: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
        if text.is_empty() {
            return Ok(Positions::new());
        }
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How far to read the log (a replay's `--until`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Everything the log holds.
    End,
    /// Per partition, the records before this offset.
    Before(Positions),
    /// Per partition, the records before the first event recorded after
    /// this time. With one writer, recorded times rise along a partition,
    /// so this is every event recorded up to and including the time.
    RecordedBy(Timestamp),
}

impl FromStr for Cut {
    type Err = String;
    /// `end`, positions (`0:1234,1:567`), or an RFC 3339 time.
    fn from_str(s: &str) -> Result<Cut, String> {
        let s = s.trim();
        if s == "end" {
            return Ok(Cut::End);
        }
        let looks_like_positions = s.split(',').all(|part| {
            part.trim()
                .split_once(':')
                .is_some_and(|(p, _)| p.parse::<u32>().is_ok())
        });
        if looks_like_positions {
            return s.parse().map(Cut::Before);
        }
        Timestamp::parse(s).map(Cut::RecordedBy).ok_or_else(|| {
            format!(
                "{s:?}: give `end`, an RFC 3339 time with its offset \
                 (2026-11-20T18:00:00+08:00) or positions (0:1234,1:567)"
            )
        })
    }
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::End => f.pad("end"),
            Cut::Before(p) => fmt::Display::fmt(p, f),
            Cut::RecordedBy(t) => fmt::Display::fmt(t, f),
        }
    }
}

/// A value read from the log, with where and when it was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recorded<T> {
    pub position: Position,
    pub recorded_at: Timestamp,
    pub value: T,
}

impl<T> Recorded<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Recorded<U> {
        Recorded {
            position: self.position,
            recorded_at: self.recorded_at,
            value: f(self.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_refuse_what_is_not_one() {
        let p: Positions = "0:1234,1:567".parse().unwrap();
        assert_eq!(p.next(1), 567);
        assert_eq!(p.next(7), 0);
        assert_eq!(p.to_string(), "0:1234,1:567");
        assert!("0:1,0:2".parse::<Positions>().is_err());
        assert!("0:x".parse::<Positions>().is_err());
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"0:1234,1:567\"");
    }

    #[test]
    fn a_cut_is_the_end_positions_or_a_time() {
        assert_eq!("end".parse::<Cut>(), Ok(Cut::End));
        assert!(matches!("0:5".parse::<Cut>(), Ok(Cut::Before(_))));
        assert!(matches!(
            "2026-11-20T18:00:00+08:00".parse::<Cut>(),
            Ok(Cut::RecordedBy(_))
        ));
        assert!("0:5,0:6".parse::<Cut>().unwrap_err().contains("twice"));
        assert!("yesterday".parse::<Cut>().is_err());
    }
}
