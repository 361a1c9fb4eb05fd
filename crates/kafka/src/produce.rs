//! The idempotent, awaited append; on the events topic, one Kafka
//! transaction per append.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use clearing_log::{LogError, Position, Record, Topic};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::{broker_err, client_config, KafkaLog, KafkaSettings};

/// Messages librdkafka may hold locally before `send` answers "queue
/// full", which `append` treats as back-pressure.
const QUEUE_MESSAGES_MAX: u32 = 200_000;

/// Collects delivery reports, keyed by the id each record was sent with;
/// `arrived` wakes the appender waiting for them.
#[derive(Default)]
pub(crate) struct Deliveries {
    reports: Mutex<HashMap<u64, Result<Position, String>>>,
    arrived: Condvar,
}

impl Deliveries {
    /// Waits until the reports of ids `first..first + n` are in (the
    /// producer's own thread serves them as they come), or until
    /// `deadline`. Waiting on the reports themselves, not on librdkafka's
    /// flush, answers as soon as the last one arrives (a flush from this
    /// thread waits in steps of 100 ms).
    fn wait(&self, first: u64, n: usize, deadline: Instant) {
        let end = first + n as u64;
        // Reports come roughly in order: the first missing id only moves on.
        let mut next = first;
        let mut reports = self.reports.lock().expect("deliveries mutex");
        loop {
            while next < end && reports.contains_key(&next) {
                next += 1;
            }
            let now = Instant::now();
            if next >= end || now >= deadline {
                return;
            }
            reports = self
                .arrived
                .wait_timeout(reports, deadline - now)
                .expect("deliveries mutex")
                .0;
        }
    }
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
        self.arrived.notify_all();
    }
}

/// The idempotent producer: dead letters, reads of metadata, and events
/// when transactions are off.
pub(crate) fn producer(settings: &KafkaSettings) -> Result<ThreadedProducer<Deliveries>, LogError> {
    producer_config(settings)
        .create_with_context(Deliveries::default())
        .map_err(|e| broker_err(settings, "creating the producer", e))
}

fn producer_config(settings: &KafkaSettings) -> rdkafka::ClientConfig {
    let mut c = client_config(&settings.brokers);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set(
            "message.timeout.ms",
            settings.message_timeout_ms.to_string(),
        )
        .set("linger.ms", "5")
        .set("compression.type", "none")
        .set(
            "queue.buffering.max.messages",
            QUEUE_MESSAGES_MAX.to_string(),
        );
    c
}

/// The transactional producer of the events topic, its transactions
/// initialised: any transaction a previous writer of this ledger left open
/// (a killed process) is aborted here, and that writer, if still alive, is
/// fenced off.
pub(crate) fn transactional_producer(
    settings: &KafkaSettings,
) -> Result<ThreadedProducer<Deliveries>, LogError> {
    let id = settings.transactional_id();
    let p: ThreadedProducer<Deliveries> = producer_config(settings)
        .set("transactional.id", &id)
        // librdkafka requires message.timeout.ms ≤ transaction.timeout.ms.
        .set(
            "transaction.timeout.ms",
            settings.message_timeout_ms.to_string(),
        )
        .create_with_context(Deliveries::default())
        .map_err(|e| broker_err(settings, "creating the transactional producer", e))?;
    p.init_transactions(settings.wait())
        .map_err(|e| broker_err(settings, &format!("initialising transactions ({id})"), e))?;
    Ok(p)
}

/// An append handed to librdkafka and not yet waited for.
pub(crate) struct InFlight {
    first_id: u64,
    n: usize,
    /// One Kafka transaction, to commit once every record is acknowledged.
    transactional: bool,
}

/// Sends every record and waits until each is acknowledged: their
/// positions in input order, or the first failure.
pub(crate) fn append(
    log: &KafkaLog,
    topic: Topic,
    records: &[Record],
) -> Result<Vec<Position>, LogError> {
    start(log, topic, records)?;
    finish(log, topic)
}

/// Hands every record to librdkafka and returns: `finish` waits for them.
/// With transactions, an append to the events topic is one Kafka
/// transaction (begun here, committed by `finish`): a `read_committed`
/// reader sees all of its records or none.
pub(crate) fn start(log: &KafkaLog, topic: Topic, records: &[Record]) -> Result<(), LogError> {
    let settings = &log.settings;
    let mut in_flight = log.in_flight.lock().expect("in-flight mutex");
    if in_flight.contains_key(&topic) {
        return Err(broker_err(
            settings,
            "appending",
            format!(
                "an append to {} is still in flight",
                settings.topics.name(topic)
            ),
        ));
    }
    let first_id = log
        .next_id
        .fetch_add(records.len() as u64, Ordering::SeqCst);
    let transactional = topic == Topic::Events && settings.transactions && !records.is_empty();
    if transactional {
        let mut slot = log
            .transactional
            .lock()
            .expect("transactional producer mutex");
        if slot.is_none() {
            *slot = Some(transactional_producer(settings)?);
        }
        let p = slot.as_ref().expect("just set");
        let begun = p
            .begin_transaction()
            .map_err(|e| broker_err(settings, "beginning a transaction", e))
            .and_then(|()| send_all(log, p, topic, first_id, records));
        if let Err(e) = begun {
            abandon(&mut slot);
            return Err(e);
        }
    } else {
        send_all(log, &log.producer, topic, first_id, records)?;
    }
    in_flight.insert(
        topic,
        InFlight {
            first_id,
            n: records.len(),
            transactional,
        },
    );
    Ok(())
}

/// Waits for the append in flight on `topic`: every record acknowledged
/// (and, with transactions, the transaction committed).
pub(crate) fn finish(log: &KafkaLog, topic: Topic) -> Result<Vec<Position>, LogError> {
    let settings = &log.settings;
    let f = log
        .in_flight
        .lock()
        .expect("in-flight mutex")
        .remove(&topic)
        .ok_or_else(|| {
            broker_err(
                settings,
                "appending",
                format!("no append to {} in flight", settings.topics.name(topic)),
            )
        })?;
    let deadline = Instant::now() + settings.wait();
    if !f.transactional {
        log.producer.context().wait(f.first_id, f.n, deadline);
        return collect(settings, &log.producer, topic, f.first_id, f.n);
    }
    let mut slot = log
        .transactional
        .lock()
        .expect("transactional producer mutex");
    let p = slot
        .as_ref()
        .ok_or_else(|| broker_err(settings, "committing", "the transactional producer is gone"))?;
    // Acknowledged first (the commit then has nothing left to flush).
    p.context().wait(f.first_id, f.n, deadline);
    let result = commit(settings, p).and_then(|()| collect(settings, p, topic, f.first_id, f.n));
    if result.is_err() {
        abandon(&mut slot);
    }
    result
}

/// A failed transaction is aborted, best effort and briefly: the writer
/// stops, and the next writer's initialisation aborts whatever is still
/// open.
fn abandon(slot: &mut Option<ThreadedProducer<Deliveries>>) {
    if let Some(p) = slot.take() {
        let _ = p.abort_transaction(Duration::from_secs(5));
    }
}

fn commit(settings: &KafkaSettings, p: &ThreadedProducer<Deliveries>) -> Result<(), LogError> {
    let name = settings.topics.name(Topic::Events);
    p.commit_transaction(settings.wait()).map_err(|e| {
        let fenced = matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced)
        );
        if fenced {
            broker_err(
                settings,
                &format!("committing to {name}"),
                format!(
                    "another writer of this ledger took over ({}): one process writes a ledger",
                    settings.transactional_id()
                ),
            )
        } else {
            broker_err(settings, &format!("committing a transaction on {name}"), e)
        }
    })
}

fn send_all(
    log: &KafkaLog,
    p: &ThreadedProducer<Deliveries>,
    topic: Topic,
    first_id: u64,
    records: &[Record],
) -> Result<(), LogError> {
    let name = log.settings.topics.name(topic);
    for (i, r) in records.iter().enumerate() {
        send(log, p, name, first_id + i as u64, r)?;
    }
    Ok(())
}

/// The delivery reports of records `first_id..first_id + n`.
fn collect(
    settings: &KafkaSettings,
    p: &ThreadedProducer<Deliveries>,
    topic: Topic,
    first_id: u64,
    n: usize,
) -> Result<Vec<Position>, LogError> {
    let name = settings.topics.name(topic);
    let mut reports = p.context().reports.lock().expect("deliveries mutex");
    let mut positions = Vec::with_capacity(n);
    let mut failed = None;
    for i in 0..n as u64 {
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
            &format!("{} of {n} records acknowledged by {name}", positions.len()),
            e,
        )),
    }
}

/// Hands one record to librdkafka, waiting while its queue is full.
fn send(
    log: &KafkaLog,
    p: &ThreadedProducer<Deliveries>,
    name: &str,
    id: u64,
    r: &Record,
) -> Result<(), LogError> {
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
        match p.send(record) {
            Ok(()) => return Ok(()),
            // The local queue is full: wait for deliveries to drain it.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                p.poll(Duration::from_millis(50));
            }
            Err((e, _)) => return Err(broker_err(&log.settings, &format!("sending to {name}"), e)),
        }
    }
}
