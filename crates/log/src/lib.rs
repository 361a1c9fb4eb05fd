//! The event-log port and its embedded adapter.
//!
//! Layout: `Topic`, `Record`, `Delivered` and the `EventLog` trait are the
//! port every other crate codes against (positions are core's `Position`
//! and `Positions`); `embedded` implements it on sled in the data directory
//! (the default when no broker is configured). The Kafka adapter
//! (`clearing-kafka`) implements the same trait in a crate of its own, so
//! that crates needing only the port do not build librdkafka. `store`
//! holds how every sled store of the ledger is opened and how projections
//! keep their positions. A log stores opaque bytes under a key: it knows
//! nothing about events.

pub mod embedded;
pub mod faults;
pub mod frames;
pub mod store;

pub use clearing_core::position::{Position, Positions};

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
    /// The partition the record must go to, when the writer chose it (it
    /// chains each partition's events); `None`: the log's partitioner.
    pub partition: Option<u32>,
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
    /// The embedded log's files could not be read or written.
    #[error("embedded log: {0}")]
    File(String),
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

/// What `start_append` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// Durable already: the positions.
    Done(Vec<Position>),
    /// Handed over: `finish_append` waits for it.
    InFlight,
}

/// The event-log port.
pub trait EventLog: Send + Sync {
    /// Appends records and returns once they are durable (acknowledged):
    /// their positions, in input order.
    fn append(&self, topic: Topic, records: &[Record]) -> Result<Vec<Position>, LogError>;

    /// Hands records to the log and returns before they are acknowledged
    /// when the log can work meanwhile (a broker's round trip, a file's
    /// write and sync): then `finish_append` on the same topic waits for
    /// them. One append per topic is in flight at a time, and no other
    /// append on that topic starts before it is finished. A log that
    /// cannot work meanwhile appends at once.
    fn start_append(&self, topic: Topic, records: Vec<Record>) -> Result<Started, LogError> {
        self.append(topic, &records).map(Started::Done)
    }

    /// Waits for the append `start_append` left in flight on `topic`: the
    /// positions of its records, in input order, once they are durable.
    fn finish_append(&self, topic: Topic) -> Result<Vec<Position>, LogError> {
        Err(LogError::Broker(format!(
            "no append in flight on {topic:?} ({})",
            self.describe()
        )))
    }

    /// Number of partitions of a topic.
    fn partitions(&self, topic: Topic) -> Result<u32, LogError>;

    /// The partition records with this key go to (what the writer chains
    /// them on). The embedded log has one.
    fn partition_for(&self, _topic: Topic, _key: &str) -> Result<u32, LogError> {
        Ok(0)
    }

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
        from: &Positions,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        let mut out = Vec::new();
        for p in 0..partitions {
            if out.len() >= records_max {
                break;
            }
            out.extend(self.read(topic, p, from.next(p), records_max - out.len())?);
        }
        Ok(out)
    }

    /// The offset one past the last record of each partition, when the
    /// log can say so cheaply and exactly (for progress bars; never used
    /// to decide where reading ends).
    fn end_offsets(&self, _topic: Topic) -> Result<Option<Positions>, LogError> {
        Ok(None)
    }

    /// The offset one past the last record of each partition as the log
    /// reports it, for a reader's lag (on Kafka it counts transaction
    /// markers too, so lag is 0 exactly when a reader is at the end).
    fn high_water(&self, topic: Topic) -> Result<Option<Positions>, LogError> {
        self.end_offsets(topic)
    }

    /// Whether offsets within a partition have no gaps, so that a reader
    /// can check it saw every record (the embedded log). Kafka's do not:
    /// transaction markers occupy offsets.
    fn dense_offsets(&self) -> bool {
        false
    }

    /// A human description for messages (`embedded log at DIR`, `kafka at …`).
    fn describe(&self) -> String;
}

/// A boxed log is a log: lets callers choose the adapter at run time.
impl<L: EventLog + ?Sized> EventLog for Box<L> {
    fn append(&self, topic: Topic, records: &[Record]) -> Result<Vec<Position>, LogError> {
        (**self).append(topic, records)
    }

    fn start_append(&self, topic: Topic, records: Vec<Record>) -> Result<Started, LogError> {
        (**self).start_append(topic, records)
    }

    fn finish_append(&self, topic: Topic) -> Result<Vec<Position>, LogError> {
        (**self).finish_append(topic)
    }

    fn partitions(&self, topic: Topic) -> Result<u32, LogError> {
        (**self).partitions(topic)
    }

    fn partition_for(&self, topic: Topic, key: &str) -> Result<u32, LogError> {
        (**self).partition_for(topic, key)
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
        from: &Positions,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        (**self).read_all(topic, partitions, from, records_max)
    }

    fn end_offsets(&self, topic: Topic) -> Result<Option<Positions>, LogError> {
        (**self).end_offsets(topic)
    }

    fn high_water(&self, topic: Topic) -> Result<Option<Positions>, LogError> {
        (**self).high_water(topic)
    }

    fn dense_offsets(&self) -> bool {
        (**self).dense_offsets()
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}
