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
        .set("fetch.wait.max.ms", "100");
    c
}
