//! The consumer-group member of `project --follow`: the projection's stored
//! positions decide where each assigned partition is read from; commits
//! only publish how far the projection got, for the usual lag tooling.

use std::sync::Mutex;
use std::time::Duration;

use clearing_log::{Delivered, LogError, Positions, Topic};
use rdkafka::bindings::rd_kafka_resp_err_t as RDKafkaRespErr;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::assigned_consumer_config;
use crate::read::delivered;
use crate::{broker_err, KafkaLog};

/// The positions a follower has stored, shared with the rebalance callback
/// so that every assignment starts where the projection stands.
type StoredPositions = std::sync::Arc<Mutex<Positions>>;

/// Consumer context of a group follower: on every assignment it positions
/// each partition at the offset the projection stored (absent = 0), never
/// at the group's committed offset, which is progress tracking only.
struct SeekToStored {
    stored: StoredPositions,
}

impl ClientContext for SeekToStored {}

impl ConsumerContext for SeekToStored {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let stored = self.stored.lock().expect("stored positions mutex").clone();
                let mut at = TopicPartitionList::new();
                for e in tpl.elements() {
                    let p = e.partition();
                    let offset = stored.next(p as u32);
                    if let Err(err) =
                        at.add_partition_offset(e.topic(), p, Offset::Offset(offset as i64))
                    {
                        tracing::error!(partition = p, %err, "positioning an assigned partition");
                    }
                }
                tracing::info!(
                    partitions = ?at.elements().iter().map(|e| (e.partition(), e.offset())).collect::<Vec<_>>(),
                    "assigned; positioned at the stored offsets"
                );
                if let Err(err) = consumer.assign(&at) {
                    tracing::error!(%err, "assigning partitions");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(partitions = tpl.count(), "partitions revoked");
                if let Err(err) = consumer.unassign() {
                    tracing::error!(%err, "unassigning partitions");
                }
            }
            other => {
                tracing::error!(code = ?other, "rebalance failed");
                let _ = consumer.unassign();
            }
        }
    }
}

/// A member of a consumer group following one topic: used by
/// `project --follow` on Kafka. The projection's stored positions decide
/// where each assigned partition is read from; commits only publish how
/// far the projection got, for the usual lag tooling.
pub struct GroupFollower {
    consumer: BaseConsumer<SeekToStored>,
    stored: StoredPositions,
    /// The offsets last committed to the group.
    committed: Positions,
    topic: String,
    settings: crate::KafkaSettings,
}

impl KafkaLog {
    /// Joins `group` and subscribes to `topic`. `stored` must hold the
    /// projection's positions before the first poll.
    pub fn follower(
        &self,
        topic: Topic,
        group: &str,
        stored: Positions,
    ) -> Result<GroupFollower, LogError> {
        let stored: StoredPositions = std::sync::Arc::new(Mutex::new(stored));
        let name = self.settings.topics.name(topic).to_string();
        let consumer: BaseConsumer<SeekToStored> =
            assigned_consumer_config(&self.settings.brokers, group)
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "1000")
                .create_with_context(SeekToStored {
                    stored: stored.clone(),
                })
                .map_err(|e| broker_err(&self.settings, "creating the group consumer", e))?;
        consumer
            .subscribe(&[&name])
            .map_err(|e| broker_err(&self.settings, &format!("subscribing to {name}"), e))?;
        Ok(GroupFollower {
            consumer,
            stored,
            committed: Positions::default(),
            topic: name,
            settings: self.settings.clone(),
        })
    }
}

impl GroupFollower {
    fn err(&self, what: &str, e: impl std::fmt::Display) -> LogError {
        broker_err(&self.settings, what, e)
    }

    /// Waits up to `wait` for records, then takes what else is already
    /// fetched, up to `records_max`. Records before a partition's stored
    /// position (already applied, e.g. by another command on the same data
    /// dir) are dropped here.
    pub fn poll(&mut self, records_max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError> {
        let mut out = Vec::new();
        let mut timeout = wait;
        while out.len() < records_max {
            match self.consumer.poll(timeout) {
                None => break,
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                // A broker of the cluster down: the client reconnects and
                // the group rebalances by itself.
                Some(Err(e)) if crate::read::transient(&e) => {
                    tracing::warn!(%e, "following {}: the client retries", self.topic);
                    break;
                }
                Some(Err(e)) => return Err(self.err(&format!("following {}", self.topic), e)),
                Some(Ok(m)) => {
                    let d = delivered(&m);
                    let from = self
                        .stored
                        .lock()
                        .expect("stored positions mutex")
                        .next(d.position.partition);
                    if d.position.offset >= from {
                        out.push(d);
                    }
                }
            }
            timeout = Duration::ZERO;
        }
        Ok(out)
    }

    /// The commit that reports progress for every assigned partition: the
    /// projection's stored position, or the consumer's when it is further
    /// (it moves past the markers that end Kafka transactions, which carry
    /// no event; everything this member was handed before it is applied
    /// when this is called). A partition with nothing projected stands at 0.
    fn progress(&self) -> Result<Positions, LogError> {
        let stored = self.stored.lock().expect("stored positions mutex").clone();
        let position = self
            .consumer
            .position()
            .map_err(|e| self.err("reading the consumer's position", e))?;
        let mut out = Positions::default();
        for e in position.elements() {
            let p = e.partition() as u32;
            let at = match e.offset() {
                Offset::Offset(o) if o >= 0 => (o as u64).max(stored.next(p)),
                _ => stored.next(p),
            };
            out.set(p, at);
        }
        // A list from the consumer must be dropped before the consumer is
        // (KAFKA.md): `position` goes here.
        drop(position);
        Ok(out)
    }

    fn commit(&mut self, mode: CommitMode) -> Result<(), LogError> {
        let progress = self.progress()?;
        if progress == self.committed || progress.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (p, next) in progress.iter() {
            tpl.add_partition_offset(&self.topic, p as i32, Offset::Offset(next as i64))
                .map_err(|e| self.err("committing progress", e))?;
        }
        self.consumer
            .commit(&tpl, mode)
            .map_err(|e| self.err("committing progress", e))?;
        self.committed = progress;
        Ok(())
    }

    /// Records positions the projection has stored (they decide the next
    /// assignment's starting offsets) and commits the progress to the
    /// group, asynchronously: the commit is progress tracking, not
    /// correctness.
    pub fn stored(&mut self, positions: &Positions) -> Result<(), LogError> {
        *self.stored.lock().expect("stored positions mutex") = positions.clone();
        self.commit(CommitMode::Async)
    }

    /// After a poll that brought nothing: commits progress the consumer
    /// made past transaction markers, so that lag tooling shows 0.
    pub fn idle(&mut self) -> Result<(), LogError> {
        self.commit(CommitMode::Async)
    }

    /// Leaves the group, committing the final progress synchronously.
    pub fn close(mut self) {
        if let Err(e) = self.commit(CommitMode::Sync) {
            tracing::warn!(%e, "final progress commit failed (progress only)");
        }
        self.consumer.unsubscribe();
    }
}
