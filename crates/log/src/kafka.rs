//! The Kafka adapter of the event-log port (rdkafka, bundled librdkafka).
//!
//! Writing: an idempotent producer (`enable.idempotence=true`, `acks=all`),
//! key = the record's key (the merchant), the murmur2 partitioner Java
//! clients use, headers as given. `append` returns only when every record
//! is acknowledged, with its partition and offset; a full local queue is
//! back-pressure (wait and resend), not an error. librdkafka retries
//! internally until `message.timeout.ms`, then the append fails with a
//! reason.
//!
//! Reading: one consumer per (topic, partition), *assigned* (no group) at
//! the offset the caller stores, reading until partition EOF. End offsets
//! (watermarks) are never trusted: some brokers report stale ones.
//!
//! Topics are created with the configured partition count when missing; an
//! existing topic with another count is an error, because positions stored
//! by projections would no longer mean what they meant.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::bindings::rd_kafka_resp_err_t as RDKafkaRespErr;
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::instrument;

use crate::{Delivered, EventLog, LogError, Position, Record, Topic, TopicNames};

/// How long to wait for the broker's metadata (topics, partitions).
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// A poll of a partition that brings nothing for this long, without an
/// end-of-partition event, means the broker is not answering.
const READ_STALL_MAX: Duration = Duration::from_secs(30);

/// Validated Kafka settings.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topics: TopicNames,
    /// Partitions of each topic, used when creating it and checked after.
    pub partitions: u32,
    /// How long librdkafka keeps retrying one message before giving up.
    pub message_timeout_ms: u64,
}

impl KafkaSettings {
    /// Checks a `--kafka` string: `host:port[,host:port…]`.
    pub fn new(
        brokers: &str,
        topics: TopicNames,
        partitions: u32,
    ) -> Result<KafkaSettings, String> {
        let valid = !brokers.trim().is_empty()
            && brokers.split(',').all(|b| match b.trim().rsplit_once(':') {
                Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
                None => false,
            });
        if !valid {
            return Err(format!(
                "--kafka {brokers:?}: expected host:port[,host:port…]"
            ));
        }
        if partitions == 0 {
            return Err("--partitions must be at least 1".to_string());
        }
        Ok(KafkaSettings {
            brokers: brokers.trim().to_string(),
            topics,
            partitions,
            message_timeout_ms: 30_000,
        })
    }
}

/// Collects delivery reports, keyed by the id each record was sent with.
#[derive(Default)]
struct Deliveries {
    reports: Mutex<HashMap<u64, Result<Position, String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, id: Box<u64>) {
        let report = match result {
            Ok(m) => Ok(Position {
                partition: m.partition() as u32,
                offset: m.offset() as u64,
            }),
            Err((e, _)) => Err(e.to_string()),
        };
        self.reports
            .lock()
            .expect("deliveries mutex")
            .insert(*id, report);
    }
}

struct Reader {
    consumer: BaseConsumer,
    /// Where the next poll continues, when still positioned.
    next: Option<u64>,
}

/// One consumer assigned to every partition of a topic, for catch-up.
struct AllReader {
    consumer: BaseConsumer,
    /// Next offset per partition, while still positioned there; `None`
    /// after the partitions were all found at their end (so that the next
    /// call assigns again and hears fresh end-of-partition events).
    next: Option<BTreeMap<u32, u64>>,
    /// Partitions found at their end since the last assignment.
    at_end: Vec<bool>,
}

pub struct KafkaLog {
    settings: KafkaSettings,
    producer: ThreadedProducer<Deliveries>,
    next_id: AtomicU64,
    readers: Mutex<HashMap<(Topic, u32), Reader>>,
    all_readers: Mutex<HashMap<Topic, AllReader>>,
}

/// A message read back, as the port hands it out.
fn delivered(m: &impl Message, partition: u32, at: u64) -> Delivered {
    Delivered {
        position: Position {
            partition,
            offset: at,
        },
        key: m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload: m.payload().unwrap_or_default().to_vec(),
    }
}

fn broker_err(settings: &KafkaSettings, what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Broker(format!("kafka at {}: {what}: {e}", settings.brokers))
}

impl KafkaLog {
    /// The settings this log was opened with.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    /// Connects, creates missing topics and checks their partition counts.
    pub fn open(settings: KafkaSettings) -> Result<KafkaLog, LogError> {
        let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set(
                "message.timeout.ms",
                settings.message_timeout_ms.to_string(),
            )
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "200000")
            .create_with_context(Deliveries::default())
            .map_err(|e| broker_err(&settings, "creating the producer", e))?;
        let log = KafkaLog {
            settings,
            producer,
            next_id: AtomicU64::new(0),
            readers: Mutex::new(HashMap::new()),
            all_readers: Mutex::new(HashMap::new()),
        };
        log.ensure_topics()?;
        Ok(log)
    }

    fn ensure_topics(&self) -> Result<(), LogError> {
        let s = &self.settings;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &s.brokers)
            .create()
            .map_err(|e| broker_err(s, "creating the admin client", e))?;
        let names = [s.topics.name(Topic::Events), s.topics.name(Topic::Rejected)];
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| NewTopic::new(n, s.partitions as i32, TopicReplication::Fixed(1)))
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| broker_err(s, "starting the admin runtime", e))?;
        let opts = AdminOptions::new()
            .operation_timeout(Some(METADATA_TIMEOUT))
            .request_timeout(Some(METADATA_TIMEOUT));
        let results = runtime
            .block_on(admin.create_topics(&new, &opts))
            .map_err(|e| broker_err(s, "unreachable (creating topics)", e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(broker_err(s, &format!("creating topic {topic}"), code))
                }
            }
        }
        for name in names {
            let found = self.partition_count(name)?;
            if found != s.partitions {
                return Err(broker_err(
                    s,
                    &format!("topic {name}"),
                    format!(
                        "has {found} partitions, expected {} (set --partitions to match the topic)",
                        s.partitions
                    ),
                ));
            }
        }
        Ok(())
    }

    fn partition_count(&self, topic: &str) -> Result<u32, LogError> {
        let md = self
            .producer
            .client()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .map_err(|e| broker_err(&self.settings, "unreachable (metadata)", e))?;
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| {
                broker_err(
                    &self.settings,
                    &format!("topic {topic}"),
                    "missing from metadata",
                )
            })?;
        if let Some(e) = t.error() {
            return Err(broker_err(
                &self.settings,
                &format!("topic {topic}"),
                RDKafkaErrorCode::from(e),
            ));
        }
        Ok(t.partitions().len() as u32)
    }

    fn reader(&self, topic: Topic, partition: u32) -> Result<BaseConsumer, LogError> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            // Assigned partitions, no group membership and no commits: the
            // positions that matter are stored by the projections.
            .set(
                "group.id",
                format!("clearing-reader-{}", self.settings.topics.name(topic)),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100")
            .create()
            .map_err(|e| {
                broker_err(
                    &self.settings,
                    &if partition == u32::MAX {
                        "creating a reader of all partitions".to_string()
                    } else {
                        format!("creating a reader of partition {partition}")
                    },
                    e,
                )
            })
    }
}

impl EventLog for KafkaLog {
    #[instrument(level = "debug", skip(self, records), fields(records = records.len()))]
    fn append(&self, topic: Topic, records: &[Record]) -> Result<Vec<Position>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let name = self.settings.topics.name(topic);
        let first_id = self
            .next_id
            .fetch_add(records.len() as u64, Ordering::SeqCst);
        for (i, r) in records.iter().enumerate() {
            let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v.as_str()),
                })
            });
            let mut record = BaseRecord::with_opaque_to(name, Box::new(first_id + i as u64))
                .key(r.key.as_str())
                .payload(r.payload.as_slice())
                .headers(headers);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    // The local queue is full: wait for deliveries to drain it.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        self.producer.poll(Duration::from_millis(50));
                    }
                    Err((e, _)) => {
                        return Err(broker_err(&self.settings, &format!("sending to {name}"), e))
                    }
                }
            }
        }
        let wait = Duration::from_millis(self.settings.message_timeout_ms) + Duration::from_secs(5);
        self.producer.flush(wait).map_err(|e| {
            broker_err(
                &self.settings,
                &format!("waiting for {name} to acknowledge"),
                e,
            )
        })?;
        let mut reports = self
            .producer
            .context()
            .reports
            .lock()
            .expect("deliveries mutex");
        let mut positions = Vec::with_capacity(records.len());
        let mut failed = None;
        for i in 0..records.len() as u64 {
            match reports.remove(&(first_id + i)) {
                Some(Ok(p)) => positions.push(p),
                Some(Err(e)) => failed = failed.or(Some(e)),
                None => failed = failed.or(Some("no delivery report".to_string())),
            }
        }
        match failed {
            None => Ok(positions),
            Some(e) => Err(broker_err(
                &self.settings,
                &format!(
                    "{} of {} records acknowledged by {name}",
                    positions.len(),
                    records.len()
                ),
                e,
            )),
        }
    }

    fn partitions(&self, topic: Topic) -> Result<u32, LogError> {
        self.partition_count(self.settings.topics.name(topic))
    }

    fn read(
        &self,
        topic: Topic,
        partition: u32,
        offset: u64,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        let name = self.settings.topics.name(topic);
        let mut readers = self.readers.lock().expect("readers mutex");
        let reader = match readers.entry((topic, partition)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Reader {
                consumer: self.reader(topic, partition)?,
                next: None,
            }),
        };
        if reader.next != Some(offset) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(name, partition as i32, Offset::Offset(offset as i64))
                .map_err(|e| broker_err(&self.settings, "positioning a reader", e))?;
            reader
                .consumer
                .assign(&tpl)
                .map_err(|e| broker_err(&self.settings, "positioning a reader", e))?;
            reader.next = Some(offset);
        }
        let mut out = Vec::new();
        // When polls started coming back empty (no clock read per message).
        let mut idle_since: Option<Instant> = None;
        while out.len() < records_max {
            match reader.consumer.poll(Duration::from_millis(100)) {
                None => {
                    if idle_since.get_or_insert_with(Instant::now).elapsed() > READ_STALL_MAX {
                        reader.next = None;
                        return Err(broker_err(
                            &self.settings,
                            &format!("reading {name}/{partition}"),
                            "no answer and no end of partition",
                        ));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    // Next time, position again: a fresh assignment reports
                    // the end of the partition again if nothing is new.
                    reader.next = None;
                    break;
                }
                Some(Err(e)) => {
                    reader.next = None;
                    return Err(broker_err(
                        &self.settings,
                        &format!("reading {name}/{partition}"),
                        e,
                    ));
                }
                Some(Ok(m)) => {
                    idle_since = None;
                    let at = m.offset() as u64;
                    if at < offset {
                        continue;
                    }
                    out.push(delivered(&m, partition, at));
                    if reader.next.is_some() {
                        reader.next = Some(at + 1);
                    }
                }
            }
        }
        Ok(out)
    }

    /// One consumer reads every partition at once (librdkafka fetches them
    /// in parallel), positioned at the caller's offsets. The call ends when
    /// `records_max` records are in hand or every partition has reported
    /// its end since it was positioned.
    fn read_all(
        &self,
        topic: Topic,
        partitions: u32,
        from: &BTreeMap<u32, u64>,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        let name = self.settings.topics.name(topic);
        let wanted: BTreeMap<u32, u64> = (0..partitions)
            .map(|p| (p, from.get(&p).copied().unwrap_or(0)))
            .collect();
        let mut all = self.all_readers.lock().expect("readers mutex");
        let reader = match all.entry(topic) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(AllReader {
                consumer: self.reader(topic, u32::MAX)?,
                next: None,
                at_end: Vec::new(),
            }),
        };
        if reader.next.as_ref() != Some(&wanted) {
            let mut tpl = TopicPartitionList::new();
            for (p, offset) in &wanted {
                tpl.add_partition_offset(name, *p as i32, Offset::Offset(*offset as i64))
                    .map_err(|e| broker_err(&self.settings, "positioning a reader", e))?;
            }
            reader
                .consumer
                .assign(&tpl)
                .map_err(|e| broker_err(&self.settings, "positioning a reader", e))?;
            reader.next = Some(wanted.clone());
            reader.at_end = vec![false; partitions as usize];
        }
        let mut out = Vec::new();
        // When polls started coming back empty (no clock read per message).
        let mut idle_since: Option<Instant> = None;
        while out.len() < records_max && reader.at_end.iter().any(|e| !e) {
            match reader.consumer.poll(Duration::from_millis(100)) {
                None => {
                    if idle_since.get_or_insert_with(Instant::now).elapsed() > READ_STALL_MAX {
                        reader.next = None;
                        return Err(broker_err(
                            &self.settings,
                            &format!("reading {name}"),
                            "no answer and no end of partition",
                        ));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(e) = reader.at_end.get_mut(p as usize) {
                        *e = true;
                    }
                }
                Some(Err(e)) => {
                    reader.next = None;
                    return Err(broker_err(&self.settings, &format!("reading {name}"), e));
                }
                Some(Ok(m)) => {
                    idle_since = None;
                    let partition = m.partition() as u32;
                    let at = m.offset() as u64;
                    let next = reader.next.as_mut().expect("positioned");
                    let expected = next.get(&partition).copied().unwrap_or(0);
                    if at < expected {
                        continue;
                    }
                    next.insert(partition, at + 1);
                    if let Some(e) = reader.at_end.get_mut(partition as usize) {
                        *e = false;
                    }
                    out.push(delivered(&m, partition, at));
                }
            }
        }
        if reader.at_end.iter().all(|e| *e) {
            // Assign afresh next time: only a new assignment reports the end
            // of a partition again when nothing new has arrived.
            reader.next = None;
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("kafka at {}", self.settings.brokers)
    }
}

/// The positions a follower has stored, shared with the rebalance callback
/// so that every assignment starts where the projection stands.
pub type StoredPositions = std::sync::Arc<Mutex<BTreeMap<u32, u64>>>;

/// Consumer context of a group follower: on every assignment it positions
/// each partition at the offset the projection stored (absent = 0), never
/// at the group's committed offset, which is progress tracking only.
pub struct SeekToStored {
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
                    let offset = stored.get(&(p as u32)).copied().unwrap_or(0);
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
    topic: String,
    brokers: String,
}

impl KafkaLog {
    /// Joins `group` and subscribes to `topic`. `stored` must hold the
    /// projection's positions before the first poll.
    pub fn follower(
        &self,
        topic: Topic,
        group: &str,
        stored: BTreeMap<u32, u64>,
    ) -> Result<GroupFollower, LogError> {
        let stored: StoredPositions = std::sync::Arc::new(Mutex::new(stored));
        let name = self.settings.topics.name(topic).to_string();
        let consumer: BaseConsumer<SeekToStored> = ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100")
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
            topic: name,
            brokers: self.settings.brokers.clone(),
        })
    }
}

impl GroupFollower {
    fn err(&self, what: &str, e: impl std::fmt::Display) -> LogError {
        LogError::Broker(format!("kafka at {}: {what}: {e}", self.brokers))
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
                Some(Err(e)) => return Err(self.err(&format!("following {}", self.topic), e)),
                Some(Ok(m)) => {
                    let partition = m.partition() as u32;
                    let at = m.offset() as u64;
                    let from = self
                        .stored
                        .lock()
                        .expect("stored positions mutex")
                        .get(&partition)
                        .copied()
                        .unwrap_or(0);
                    if at >= from {
                        out.push(delivered(&m, partition, at));
                    }
                }
            }
            timeout = Duration::ZERO;
        }
        Ok(out)
    }

    /// The commit that reports `positions` for every assigned partition (a
    /// partition with nothing projected stands at 0).
    fn progress(&self, positions: &BTreeMap<u32, u64>) -> Result<TopicPartitionList, LogError> {
        let assigned = self
            .consumer
            .assignment()
            .map_err(|e| self.err("reading the assignment", e))?;
        let mut tpl = TopicPartitionList::new();
        for e in assigned.elements() {
            let next = positions.get(&(e.partition() as u32)).copied().unwrap_or(0);
            tpl.add_partition_offset(&self.topic, e.partition(), Offset::Offset(next as i64))
                .map_err(|e| self.err("committing progress", e))?;
        }
        // A list from the consumer must be dropped before the consumer is
        // (KAFKA.md): `assigned` goes here.
        drop(assigned);
        Ok(tpl)
    }

    /// Records positions the projection has stored (they decide the next
    /// assignment's starting offsets) and commits them to the group,
    /// asynchronously: the commit is progress tracking, not correctness.
    pub fn stored(&mut self, positions: &BTreeMap<u32, u64>) -> Result<(), LogError> {
        let changed = {
            let mut stored = self.stored.lock().expect("stored positions mutex");
            let changed = *stored != *positions;
            *stored = positions.clone();
            changed
        };
        if !changed {
            return Ok(());
        }
        let tpl = self.progress(positions)?;
        if tpl.count() > 0 {
            self.consumer
                .commit(&tpl, CommitMode::Async)
                .map_err(|e| self.err("committing progress", e))?;
        }
        Ok(())
    }

    /// Leaves the group, committing the final progress synchronously.
    pub fn close(self) {
        let positions = self.stored.lock().expect("stored positions mutex").clone();
        let Ok(tpl) = self.progress(&positions) else {
            return self.consumer.unsubscribe();
        };
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!(%e, "final progress commit failed (progress only)");
            }
        }
        self.consumer.unsubscribe();
    }
}

impl KafkaLog {
    /// The benchmark's baseline: a bare consumer reads every partition of
    /// `topic` from the start to partition EOF, touching each payload and
    /// nothing more. Returns (messages, payload bytes).
    pub fn raw_consume(&self, topic: Topic) -> Result<(u64, u64), LogError> {
        let name = self.settings.topics.name(topic);
        let partitions = self.partition_count(name)?;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            .set("group.id", format!("clearing-raw-{name}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "100")
            .create()
            .map_err(|e| broker_err(&self.settings, "creating the raw consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(name, p as i32, Offset::Beginning)
                .map_err(|e| broker_err(&self.settings, "assigning the raw consumer", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| broker_err(&self.settings, "assigning the raw consumer", e))?;
        let mut at_end = vec![false; partitions as usize];
        let (mut messages, mut bytes) = (0u64, 0u64);
        // When polls started coming back empty (no clock read per message).
        let mut idle_since: Option<Instant> = None;
        while at_end.iter().any(|e| !e) {
            match consumer.poll(Duration::from_millis(100)) {
                None if idle_since.get_or_insert_with(Instant::now).elapsed() > READ_STALL_MAX => {
                    return Err(broker_err(
                        &self.settings,
                        &format!("raw read of {name}"),
                        "no answer and no end of partition",
                    ))
                }
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
                Some(Err(e)) => {
                    return Err(broker_err(
                        &self.settings,
                        &format!("raw read of {name}"),
                        e,
                    ))
                }
                Some(Ok(m)) => {
                    idle_since = None;
                    at_end[m.partition() as usize] = false;
                    messages += 1;
                    bytes += m.payload().map_or(0, |p| p.len() as u64);
                }
            }
        }
        Ok((messages, bytes))
    }
}
