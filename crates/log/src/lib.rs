//! The event-log port and its embedded adapter.
//!
//! Layout: `Position`, `Topic` and the `EventLog` trait are the port every
//! other crate codes against; `embedded` implements it on sled in the data
//! directory (the default when no broker is configured). The Kafka adapter
//! implements the same trait. `store` holds how every sled store of the
//! ledger is opened and how projections keep their positions. A log stores opaque bytes under a key: it
//! knows nothing about events.

use std::fmt;

pub mod embedded;
pub mod kafka;
pub mod store;

/// Where a record sits in a topic: partition and offset, as in Kafka.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

impl std::str::FromStr for Position {
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

/// The two topics of the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `P.events`: the ledger.
    Events,
    /// `P.rejected`: dead letters.
    Rejected,
}

/// Topic names derived from the configured prefix (SPEC §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicNames {
    pub events: String,
    pub rejected: String,
}

impl TopicNames {
    pub fn with_prefix(prefix: &str) -> TopicNames {
        TopicNames {
            events: format!("{prefix}.events"),
            rejected: format!("{prefix}.rejected"),
        }
    }

    /// The prefix both topic names share.
    pub fn prefix(&self) -> &str {
        self.events.strip_suffix(".events").unwrap_or(&self.events)
    }

    pub fn name(&self, topic: Topic) -> &str {
        match topic {
            Topic::Events => &self.events,
            Topic::Rejected => &self.rejected,
        }
    }
}

/// A record to append: the partition key, the payload, and headers (the
/// Kafka adapter sends them as message headers; the embedded log, which
/// only ever hands records back to this program, does not keep them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// A record read back, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub position: Position,
    pub key: String,
    pub payload: Vec<u8>,
}

/// What can go wrong talking to a log. `retryable` says whether trying the
/// same call again can help.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("embedded log at {path}: {source}")]
    Storage { path: String, source: sled::Error },
    #[error("embedded log at {path} is corrupt: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("topic {topic} has no partition {partition}")]
    NoSuchPartition { topic: String, partition: u32 },
    #[error("{0}")]
    Broker(String),
}

impl LogError {
    pub fn retryable(&self) -> bool {
        matches!(self, LogError::Broker(_))
    }
}

/// The event-log port.
pub trait EventLog: Send + Sync {
    /// Appends records and returns once they are durable (acknowledged):
    /// their positions, in input order.
    fn append(&self, topic: Topic, records: &[Record]) -> Result<Vec<Position>, LogError>;

    /// Number of partitions of a topic.
    fn partitions(&self, topic: Topic) -> Result<u32, LogError>;

    /// Reads up to `records_max` records of one partition from `offset` on.
    /// An empty answer means the reader has reached the end of the
    /// partition for now.
    fn read(
        &self,
        topic: Topic,
        partition: u32,
        offset: u64,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError>;

    /// Reads up to `records_max` records across all `partitions` of a
    /// topic, each partition from its offset in `from` (absent = 0), in
    /// offset order within each partition. An empty answer means every
    /// partition has reached its end for now.
    fn read_all(
        &self,
        topic: Topic,
        partitions: u32,
        from: &std::collections::BTreeMap<u32, u64>,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        let mut out = Vec::new();
        for p in 0..partitions {
            if out.len() >= records_max {
                break;
            }
            let offset = from.get(&p).copied().unwrap_or(0);
            out.extend(self.read(topic, p, offset, records_max - out.len())?);
        }
        Ok(out)
    }

    /// The offset one past the last record of each partition, when the
    /// log can say so cheaply and exactly (for progress bars; never used
    /// to decide where reading ends).
    fn end_offsets(
        &self,
        _topic: Topic,
    ) -> Result<Option<std::collections::BTreeMap<u32, u64>>, LogError> {
        Ok(None)
    }

    /// A human description for messages (`embedded log at DIR`, `kafka at …`).
    fn describe(&self) -> String;
}

/// A boxed log is a log: lets callers choose the adapter at run time.
impl<L: EventLog + ?Sized> EventLog for Box<L> {
    fn append(&self, topic: Topic, records: &[Record]) -> Result<Vec<Position>, LogError> {
        (**self).append(topic, records)
    }

    fn partitions(&self, topic: Topic) -> Result<u32, LogError> {
        (**self).partitions(topic)
    }

    fn read(
        &self,
        topic: Topic,
        partition: u32,
        offset: u64,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        (**self).read(topic, partition, offset, records_max)
    }

    fn read_all(
        &self,
        topic: Topic,
        partitions: u32,
        from: &std::collections::BTreeMap<u32, u64>,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        (**self).read_all(topic, partitions, from, records_max)
    }

    fn end_offsets(
        &self,
        topic: Topic,
    ) -> Result<Option<std::collections::BTreeMap<u32, u64>>, LogError> {
        (**self).end_offsets(topic)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}
