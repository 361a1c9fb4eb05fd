//! Kafka settings, validated once, and the one builder of every client's
//! configuration.

use clearing_log::TopicNames;
use rdkafka::config::ClientConfig;

/// Validated Kafka settings.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topics: TopicNames,
    /// Partitions of each topic, used when creating it and checked after.
    pub partitions: u32,
    /// How long librdkafka keeps retrying one message before giving up.
    pub message_timeout_ms: u64,
    /// Each append to the events topic is one Kafka transaction (readers
    /// read committed records only). Exactly-once does not rest on it: it
    /// keeps half an append from ever being visible.
    pub transactions: bool,
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
            transactions: true,
        })
    }

    /// The `transactional.id` of the ledger's writer: one per events topic,
    /// so that the broker fences a second writer and aborts what a killed
    /// one left open.
    pub fn transactional_id(&self) -> String {
        format!("{}.writer", self.topics.name(clearing_log::Topic::Events))
    }

    /// How long to wait for the broker to acknowledge what was sent.
    pub(crate) fn wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.message_timeout_ms)
            + std::time::Duration::from_secs(5)
    }
}

/// The configuration every client of the ledger starts from: the
/// brokers, and nothing else. Producers, readers, group members and the
/// admin client add what is theirs.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

/// A consumer that is positioned by the caller, never by committed
/// offsets: no automatic commits or offset stores.
pub(crate) fn assigned_consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut c = client_config(brokers);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Records of an aborted or open transaction are never read.
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100")
        // When the local queue is full (the reader is applying a batch),
        // fetch again soon after it drains, not librdkafka's default 1 s
        // later: that pause once cost half of a Kafka replay's time.
        .set("fetch.queue.backoff.ms", "10")
        // What is fetched ahead and waits in memory: bounded, so that a
        // replay's memory does not grow with the partitions it reads
        // (librdkafka's defaults held ~1 GiB for a 1M-event replay; these
        // read as fast).
        .set("queued.max.messages.kbytes", "16384")
        .set("queued.min.messages", "2000");
    c
}
