//! The Kafka adapter of the event-log port (rdkafka, bundled librdkafka).
//!
//! Layout: `config` validates the settings and builds every client's
//! configuration (one builder); `produce` is the idempotent, awaited
//! append; `read` positions consumers at the caller's offsets and polls
//! until each partition reports its end (one loop for one partition or
//! all); `follow` is the consumer-group member of `project --follow`.
//!
//! Writing: an idempotent producer (`enable.idempotence=true`, `acks=all`),
//! key = the record's key (the merchant), the murmur2 partitioner Java
//! clients use, headers as given. `append` returns only when every record
//! is acknowledged, with its partition and offset; a full local queue is
//! back-pressure (wait and resend), not an error. librdkafka retries
//! internally until `message.timeout.ms`, then the append fails with a
//! reason.
//!
//! Reading: consumers *assigned* (no group) at the offsets the caller
//! stores, reading until partition EOF. End offsets (watermarks) are never
//! trusted: some brokers report stale ones.
//!
//! Topics are created with the configured partition count when missing; an
//! existing topic with another count is an error, because positions stored
//! by projections would no longer mean what they meant.

mod config;
mod follow;
mod produce;
mod read;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clearing_log::{Delivered, EventLog, LogError, Position, Positions, Record, Started, Topic};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{Producer, ThreadedProducer};

pub use config::{client_config, KafkaSettings};
pub use follow::GroupFollower;
/// The client library, for code that measures against a bare consumer.
pub use rdkafka;

use produce::Deliveries;
use read::{Cursor, Scope};

/// The configuration of the topics the ledger creates.
const TOPIC_CONFIG: [(&str, &str); 3] = [
    ("cleanup.policy", "delete"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

/// How long to wait for the broker's metadata (topics, partitions).
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

pub struct KafkaLog {
    settings: KafkaSettings,
    producer: ThreadedProducer<Deliveries>,
    /// The events topic's transactional producer, made on the first append
    /// (read commands never make one, so they never fence the writer).
    transactional: Mutex<Option<ThreadedProducer<Deliveries>>>,
    /// Appends started and not yet waited for, per topic.
    in_flight: Mutex<HashMap<Topic, produce::InFlight>>,
    next_id: AtomicU64,
    cursors: Mutex<HashMap<(Topic, Scope), Cursor>>,
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
        let producer = produce::producer(&settings)?;
        let log = KafkaLog {
            settings,
            producer,
            transactional: Mutex::new(None),
            in_flight: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            cursors: Mutex::new(HashMap::new()),
        };
        log.ensure_topics()?;
        Ok(log)
    }

    fn ensure_topics(&self) -> Result<(), LogError> {
        let s = &self.settings;
        let admin: AdminClient<DefaultClientContext> = client_config(&s.brokers)
            .create()
            .map_err(|e| broker_err(s, "creating the admin client", e))?;
        let names = [s.topics.name(Topic::Events), s.topics.name(Topic::Rejected)];
        // The replication factor and min.insync.replicas are the broker's
        // defaults (what its operator set for the cluster); every record is
        // kept for ever: the events topic is the ledger's history.
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| {
                TOPIC_CONFIG.iter().fold(
                    NewTopic::new(n, s.partitions as i32, TopicReplication::Fixed(-1)),
                    |t, (k, v)| t.set(k, v),
                )
            })
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
            let found = self.partition_count_when_known(name)?;
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
        self.check_retention(&admin, &runtime, names[0])?;
        Ok(())
    }

    /// Refuses an events topic that would lose records: compacted, or with
    /// a finite retention. Replays, disputes and `verify` read it from its
    /// first record.
    fn check_retention(
        &self,
        admin: &AdminClient<DefaultClientContext>,
        runtime: &tokio::runtime::Runtime,
        topic: &str,
    ) -> Result<(), LogError> {
        let s = &self.settings;
        let opts = AdminOptions::new().request_timeout(Some(METADATA_TIMEOUT));
        let described = runtime
            .block_on(admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &opts))
            .map_err(|e| broker_err(s, &format!("describing topic {topic}"), e))?;
        for resource in described {
            let resource =
                resource.map_err(|e| broker_err(s, &format!("describing topic {topic}"), e))?;
            let entries = resource.entry_map();
            let value = |k: &str| {
                entries
                    .get(k)
                    .and_then(|e| e.value.clone())
                    .unwrap_or_default()
            };
            let policy = value("cleanup.policy");
            if policy.contains("compact") {
                return Err(broker_err(
                    s,
                    &format!("topic {topic}"),
                    format!("has cleanup.policy={policy}: the ledger's events must all be kept (set cleanup.policy=delete and retention.ms=-1)"),
                ));
            }
            for key in ["retention.ms", "retention.bytes"] {
                let v = value(key);
                if v != "-1" {
                    return Err(broker_err(
                        s,
                        &format!("topic {topic}"),
                        format!(
                            "has {key}={v}: the ledger's events must all be kept (set {key}=-1)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The partition count of a topic just created: a broker answers
    /// "unknown topic" until the new topic's metadata has reached it.
    fn partition_count_when_known(&self, topic: &str) -> Result<u32, LogError> {
        let start = Instant::now();
        loop {
            match self.partition_count(topic) {
                Err(e) if start.elapsed() < METADATA_TIMEOUT && is_unknown_topic(&e) => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                other => return other,
            }
        }
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
}

fn is_unknown_topic(e: &LogError) -> bool {
    let text = e.to_string();
    text.contains("UnknownTopicOrPartition") || text.contains("missing from metadata")
}

impl EventLog for KafkaLog {
    #[tracing::instrument(level = "debug", skip(self, records), fields(records = records.len()))]
    fn append(&self, topic: Topic, records: &[Record]) -> Result<Vec<Position>, LogError> {
        produce::append(self, topic, records)
    }

    /// The records are handed to librdkafka (and, with transactions, a
    /// transaction begun); `finish_append` waits for the broker.
    fn start_append(&self, topic: Topic, records: Vec<Record>) -> Result<Started, LogError> {
        produce::start(self, topic, &records).map(|()| Started::InFlight)
    }

    fn finish_append(&self, topic: Topic) -> Result<Vec<Position>, LogError> {
        produce::finish(self, topic)
    }

    fn partitions(&self, topic: Topic) -> Result<u32, LogError> {
        self.partition_count(self.settings.topics.name(topic))
    }

    /// Kafka's default partitioner for keyed records, as Java clients and
    /// librdkafka's `murmur2_random` compute it: the positive murmur2 of the
    /// key, modulo the partition count (checked on open).
    fn partition_for(&self, _topic: Topic, key: &str) -> Result<u32, LogError> {
        Ok((murmur2(key.as_bytes()) & 0x7fff_ffff) % self.settings.partitions)
    }

    fn read(
        &self,
        topic: Topic,
        partition: u32,
        offset: u64,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        let from: Positions = [(partition, offset)].into_iter().collect();
        self.read_scope(topic, Scope::One(partition), &from, records_max)
    }

    /// One consumer reads every partition at once (librdkafka fetches them
    /// in parallel), positioned at the caller's offsets. The call ends when
    /// `records_max` records are in hand or every partition has reported
    /// its end since it was positioned.
    fn read_all(
        &self,
        topic: Topic,
        partitions: u32,
        from: &Positions,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        let wanted: Positions = (0..partitions).map(|p| (p, from.next(p))).collect();
        self.read_scope(topic, Scope::All, &wanted, records_max)
    }

    /// The brokers' high watermarks (for lag; never where reading ends).
    fn high_water(&self, topic: Topic) -> Result<Option<Positions>, LogError> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let name = self.settings.topics.name(topic);
        let what = format!("reading the end of {name}");
        let consumer: BaseConsumer = config::assigned_consumer_config(
            &self.settings.brokers,
            &format!("clearing-watermarks-{name}"),
        )
        .create()
        .map_err(|e| broker_err(&self.settings, &what, e))?;
        let mut out = Positions::new();
        for p in 0..self.partition_count(name)? {
            let (_, high) = consumer
                .fetch_watermarks(name, p as i32, std::time::Duration::from_secs(10))
                .map_err(|e| broker_err(&self.settings, &what, e))?;
            out.set(p, high.max(0) as u64);
        }
        Ok(Some(out))
    }

    fn describe(&self) -> String {
        format!("kafka at {}", self.settings.brokers)
    }
}

impl KafkaLog {
    /// Reads from the cursor of `scope`, positioned at `from` (one entry per
    /// partition it reads).
    fn read_scope(
        &self,
        topic: Topic,
        scope: Scope,
        from: &Positions,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        let mut cursors = self.cursors.lock().expect("cursors mutex");
        let cursor = match cursors.entry((topic, scope)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Cursor::new(&self.settings, topic, scope)?)
            }
        };
        cursor.read(&self.settings, from, records_max)
    }
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn murmur2_is_kafkas() {
        // Values of org.apache.kafka.common.utils.Utils.murmur2 (its tests).
        assert_eq!(super::murmur2(b"21") as i32, -973932308);
        assert_eq!(super::murmur2(b"foobar") as i32, -790332482);
        assert_eq!(
            super::murmur2(b"a-little-bit-long-string") as i32,
            -985981536
        );
        assert_eq!(
            super::murmur2(b"a-little-bit-longer-string") as i32,
            -1486304829
        );
        assert_eq!(
            super::murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(super::murmur2(b"abc") as i32, 479470107);
    }
}
