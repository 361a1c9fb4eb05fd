//! Readers positioned at the caller's offsets, polled until each partition
//! they read reports its end: one loop, for one partition or all.

use std::time::{Duration, Instant};

use clearing_log::{Delivered, LogError, Position, Positions, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::assigned_consumer_config;
use crate::{broker_err, KafkaSettings};

/// A poll that brings nothing for this long, without an end-of-partition
/// event, means the broker is not answering.
pub(crate) const READ_STALL_MAX: Duration = Duration::from_secs(30);

/// How long one poll waits for a message.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// Whether a consumer's error is one the client recovers from by itself (a
/// broker of the cluster down or moving leadership): reading goes on, and
/// only a stall of `READ_STALL_MAX` ends it.
pub(crate) fn transient(e: &KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::Resolve
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::NetworkException
                | C::NotLeaderForPartition
                | C::LeaderNotAvailable
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
        )
    )
}

/// What a cursor reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    One(u32),
    All,
}

/// A consumer assigned to the partitions of its scope.
pub(crate) struct Cursor {
    consumer: BaseConsumer,
    topic: String,
    /// Next offset per partition while still positioned there; `None`
    /// after every partition was found at its end (so that the next read
    /// assigns again and hears fresh end-of-partition events).
    next: Option<Positions>,
    /// Partitions found at their end since the last assignment.
    at_end: std::collections::BTreeSet<u32>,
}

/// A message read back, as the port hands it out.
pub(crate) fn delivered(m: &impl Message) -> Delivered {
    Delivered {
        position: Position::new(m.partition() as u32, m.offset() as u64),
        key: m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload: m.payload().unwrap_or_default().to_vec(),
    }
}

impl Cursor {
    pub(crate) fn new(
        settings: &KafkaSettings,
        topic: Topic,
        scope: Scope,
    ) -> Result<Cursor, LogError> {
        let name = settings.topics.name(topic).to_string();
        // Assigned partitions, no group membership and no commits: the
        // positions that matter are stored by the projections.
        let consumer =
            assigned_consumer_config(&settings.brokers, &format!("clearing-reader-{name}"))
                .set("enable.partition.eof", "true")
                // A reader stops at the end: the broker need not hold an
                // empty fetch long before saying so.
                .set("fetch.wait.max.ms", "10")
                .create()
                .map_err(|e| {
                    let what = match scope {
                        Scope::One(p) => format!("creating a reader of {name}/{p}"),
                        Scope::All => format!("creating a reader of every partition of {name}"),
                    };
                    broker_err(settings, &what, e)
                })?;
        Ok(Cursor {
            consumer,
            topic: name,
            next: None,
            at_end: Default::default(),
        })
    }

    /// Reads from `from` (one entry per partition read) until `records_max`
    /// records are in hand or every partition has reported its end.
    pub(crate) fn read(
        &mut self,
        settings: &KafkaSettings,
        from: &Positions,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        if self.next.as_ref() != Some(from) {
            self.assign(settings, from)?;
        }
        let partitions = from.len();
        let mut out = Vec::new();
        // When polls started coming back empty (no clock read per message).
        let mut idle_since: Option<Instant> = None;
        while out.len() < records_max && self.at_end.len() < partitions {
            match self.consumer.poll(POLL_WAIT) {
                None => {
                    if idle_since.get_or_insert_with(Instant::now).elapsed() > READ_STALL_MAX {
                        return Err(self.failed(settings, "no answer and no end of partition"));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    self.at_end.insert(p as u32);
                }
                Some(Err(e)) if transient(&e) => {
                    tracing::warn!(%e, "reading {}: the client retries", self.topic);
                    if idle_since.get_or_insert_with(Instant::now).elapsed() > READ_STALL_MAX {
                        return Err(self.failed(settings, e));
                    }
                }
                Some(Err(e)) => return Err(self.failed(settings, e)),
                Some(Ok(m)) => {
                    idle_since = None;
                    let d = delivered(&m);
                    let next = self.next.as_mut().expect("positioned");
                    if d.position.offset < next.next(d.position.partition) {
                        continue;
                    }
                    next.advance_past(d.position);
                    self.at_end.remove(&d.position.partition);
                    out.push(d);
                }
            }
        }
        if self.at_end.len() >= partitions {
            // Assign afresh next time: only a new assignment reports the end
            // of a partition again when nothing new has arrived.
            self.next = None;
        }
        Ok(out)
    }

    fn assign(&mut self, settings: &KafkaSettings, from: &Positions) -> Result<(), LogError> {
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in from.iter() {
            tpl.add_partition_offset(&self.topic, p as i32, Offset::Offset(offset as i64))
                .map_err(|e| broker_err(settings, "positioning a reader", e))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| broker_err(settings, "positioning a reader", e))?;
        self.next = Some(from.clone());
        self.at_end.clear();
        Ok(())
    }

    /// A failed read: the next one positions afresh.
    fn failed(&mut self, settings: &KafkaSettings, e: impl std::fmt::Display) -> LogError {
        self.next = None;
        broker_err(settings, &format!("reading {}", self.topic), e)
    }
}
