//! The Kafka benchmark's baseline: a bare rdkafka consumer reading every
//! partition of a topic from the start to partition EOF, touching each
//! payload and nothing more. It is deliberately not the ledger's reader:
//! it is what the ledger's reader is compared with.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clearing_app::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use clearing_app::kafka::rdkafka::error::KafkaError;
use clearing_app::kafka::rdkafka::message::Message;
use clearing_app::kafka::rdkafka::{Offset, TopicPartitionList};
use clearing_app::kafka::{client_config, KafkaSettings};

/// A poll that brings nothing for this long means the broker is gone.
const STALL_MAX: Duration = Duration::from_secs(30);

/// Reads `topic` (with `partitions`) start to end. Returns (messages,
/// payload bytes).
pub fn raw_consume(k: &KafkaSettings, topic: &str, partitions: u32) -> Result<(u64, u64)> {
    let consumer: BaseConsumer = client_config(&k.brokers)
        .set("group.id", format!("clearing-raw-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100")
        .create()
        .context("creating the raw consumer")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .context("assigning the raw consumer")?;
    }
    consumer
        .assign(&tpl)
        .context("assigning the raw consumer")?;
    let mut at_end = vec![false; partitions as usize];
    let (mut messages, mut bytes) = (0u64, 0u64);
    // When polls started coming back empty (no clock read per message).
    let mut idle_since: Option<Instant> = None;
    while at_end.iter().any(|e| !e) {
        match consumer.poll(Duration::from_millis(100)) {
            None if idle_since.get_or_insert_with(Instant::now).elapsed() > STALL_MAX => {
                bail!("raw read of {topic}: no answer and no end of partition")
            }
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
            Some(Err(e)) => bail!("raw read of {topic}: {e}"),
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
