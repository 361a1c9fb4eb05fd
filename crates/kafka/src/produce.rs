//! The idempotent, awaited append.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use clearing_log::{LogError, Position, Record, Topic};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::{broker_err, client_config, KafkaLog, KafkaSettings};

/// Messages librdkafka may hold locally before `send` answers "queue
/// full", which `append` treats as back-pressure.
const QUEUE_MESSAGES_MAX: u32 = 200_000;

/// Collects delivery reports, keyed by the id each record was sent with.
#[derive(Default)]
pub(crate) struct Deliveries {
    reports: Mutex<HashMap<u64, Result<Position, String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, id: Box<u64>) {
        let report = match result {
            Ok(m) => Ok(Position::new(m.partition() as u32, m.offset() as u64)),
            Err((e, _)) => Err(e.to_string()),
        };
        self.reports
            .lock()
            .expect("deliveries mutex")
            .insert(*id, report);
    }
}

pub(crate) fn producer(settings: &KafkaSettings) -> Result<ThreadedProducer<Deliveries>, LogError> {
    client_config(&settings.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set(
            "message.timeout.ms",
            settings.message_timeout_ms.to_string(),
        )
        .set("linger.ms", "5")
        .set(
            "queue.buffering.max.messages",
            QUEUE_MESSAGES_MAX.to_string(),
        )
        .create_with_context(Deliveries::default())
        .map_err(|e| broker_err(settings, "creating the producer", e))
}

/// Sends every record and waits until each is acknowledged: their
/// positions in input order, or the first failure.
pub(crate) fn append(
    log: &KafkaLog,
    topic: Topic,
    records: &[Record],
) -> Result<Vec<Position>, LogError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let settings = &log.settings;
    let name = settings.topics.name(topic);
    let first_id = log
        .next_id
        .fetch_add(records.len() as u64, Ordering::SeqCst);
    for (i, r) in records.iter().enumerate() {
        send(log, name, first_id + i as u64, r)?;
    }
    let wait = Duration::from_millis(settings.message_timeout_ms) + Duration::from_secs(5);
    log.producer
        .flush(wait)
        .map_err(|e| broker_err(settings, &format!("waiting for {name} to acknowledge"), e))?;
    let mut reports = log
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
            settings,
            &format!(
                "{} of {} records acknowledged by {name}",
                positions.len(),
                records.len()
            ),
            e,
        )),
    }
}

/// Hands one record to librdkafka, waiting while its queue is full.
fn send(log: &KafkaLog, name: &str, id: u64, r: &Record) -> Result<(), LogError> {
    let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: Some(v.as_str()),
        })
    });
    let mut record = BaseRecord::with_opaque_to(name, Box::new(id))
        .key(r.key.as_str())
        .payload(r.payload.as_slice())
        .headers(headers);
    if let Some(p) = r.partition {
        record = record.partition(p as i32);
    }
    loop {
        match log.producer.send(record) {
            Ok(()) => return Ok(()),
            // The local queue is full: wait for deliveries to drain it.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                log.producer.poll(Duration::from_millis(50));
            }
            Err((e, _)) => return Err(broker_err(&log.settings, &format!("sending to {name}"), e)),
        }
    }
}
