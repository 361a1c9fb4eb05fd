//! Projection: bringing the projections to the end of the log once
//! (`project`, and every read), or following it until told to stop
//! (`project --follow`: polling the embedded log, or as a member of a
//! Kafka consumer group).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clearing_consumer::CatchUp;
use clearing_log::{EventLog, Topic};
use clearing_projector::Projector;

use crate::config::{open_embedded, open_kafka, open_log, open_projector, Config};
use crate::error::{AppError, Context};
use crate::replay::Live;
use crate::views::ProjectedView;

/// Brings `p` to the end of `log`. A message on the events topic that is
/// not an event is recorded by the projector and dead-lettered here, with
/// its position and reason, on the rejected topic.
pub(crate) fn catch_up(
    cfg: &Config,
    log: &dyn EventLog,
    p: &mut Projector,
) -> Result<CatchUp, AppError> {
    if let Some(policy) = cfg.snapshot_policy() {
        p.set_snapshots(policy);
    }
    let stats = p.catch_up(log, |_| {}).context("projecting")?;
    dead_letter_undecodable(cfg, log, p)?;
    Ok(stats)
}

/// Dead-letters, on the rejected topic, the messages that the projector
/// met on the events topic and could not read as events.
fn dead_letter_undecodable(
    cfg: &Config,
    log: &dyn EventLog,
    p: &mut Projector,
) -> Result<(), AppError> {
    let found = p.take_undecodable();
    if !found.is_empty() {
        tracing::error!(
            count = found.len(),
            "messages on the events topic are not events; dead-lettered"
        );
        clearing_producer::reject_undecodable(log, &cfg.topics.events, &found, &cfg.clock.now())
            .context("dead-lettering messages that are not events")?;
    }
    Ok(())
}

/// `project`: brings the projections to the end of the log.
pub fn project(live: Live<'_>) -> Result<ProjectedView, AppError> {
    let cfg = live.config();
    let log = open_log(cfg)?;
    let mut p = open_projector(&cfg.data_dir)?;
    let stats = catch_up(cfg, &*log, &mut p)?;
    p.flush()?;
    let stand = p.stored_positions().clone();
    Ok(ProjectedView {
        events_applied: stats.events,
        redelivered_skipped: p.redelivered,
        positions: stand.as_json_map(),
        stand,
    })
}

/// What a follower tells its front end as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Following {
    /// On Kafka: joined the consumer group that reports its progress.
    Joined { topic: String, group: String },
    /// A batch was applied: its events and the running total.
    Applied { events: u64, total: u64 },
}

/// `project --follow`: applies what is new until `stop` is set, and
/// returns how many events it applied.
pub fn follow(
    live: Live<'_>,
    stop: &AtomicBool,
    poll: Duration,
    mut on: impl FnMut(Following),
) -> Result<u64, AppError> {
    let cfg = live.config();
    match &cfg.kafka {
        Some(k) => follow_kafka(cfg, k, stop, poll, &mut on),
        None => follow_embedded(cfg, stop, poll, &mut on),
    }
}

/// The embedded log is polled; the stores are opened per poll, so other
/// `clearing` processes can use the same data directory in between.
fn follow_embedded(
    cfg: &Config,
    stop: &AtomicBool,
    poll: Duration,
    on: &mut dyn FnMut(Following),
) -> Result<u64, AppError> {
    let mut total = 0u64;
    while !stop.load(Ordering::SeqCst) {
        {
            let log = open_embedded(cfg)?;
            let mut p = open_projector(&cfg.data_dir)?;
            let stats = catch_up(cfg, &log, &mut p)?;
            p.flush()?;
            total += stats.events;
            if stats.events > 0 {
                tracing::info!(events = stats.events, total, "projected");
                on(Following::Applied {
                    events: stats.events,
                    total,
                });
            }
        }
        sleep_unless(stop, poll);
    }
    Ok(total)
}

/// Sleeps for `d`, waking early when `stop` is set.
pub fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let step = Duration::from_millis(10);
    let mut slept = Duration::ZERO;
    while slept < d && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(step);
        slept += step;
    }
}

/// Follows the events topic as a member of the consumer group
/// `PREFIX.projector.ID` (ID: this data dir's projections). Each assigned
/// partition starts at the position stored in sled with the projection;
/// the group's committed offsets only report progress.
fn follow_kafka(
    cfg: &Config,
    k: &clearing_kafka::KafkaSettings,
    stop: &AtomicBool,
    poll: Duration,
    on: &mut dyn FnMut(Following),
) -> Result<u64, AppError> {
    let log = open_kafka(k)?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let (group, stored) = {
        let p = open_projector(&cfg.data_dir)?;
        let id = p.follower_id()?;
        (
            format!("{}.projector.{id}", cfg.topics.prefix()),
            p.stored_positions().clone(),
        )
    };
    on(Following::Joined {
        topic: cfg.topics.events.clone(),
        group: group.clone(),
    });
    let mut follower = log
        .follower(Topic::Events, &group, stored)
        .context("joining the consumer group")?;
    let mut total = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let records = follower.poll(
            clearing_projector::PROJECT_BATCH_MAX,
            poll.max(Duration::from_millis(100)),
        )?;
        if records.is_empty() {
            follower.idle()?;
            continue;
        }
        let mut p = open_projector(&cfg.data_dir)?;
        p.check_against(&log)?;
        // Another command may have projected some of these meanwhile: the
        // positions in sled decide.
        let fresh: Vec<clearing_log::Delivered> = records
            .into_iter()
            .filter(|r| r.position.offset >= p.stored_positions().next(r.position.partition))
            .collect();
        let stats = clearing_consumer::apply_batch(&mut p, clearing_consumer::decode_all(fresh))
            .context("projecting")?;
        total += stats.events;
        dead_letter_undecodable(cfg, &log, &mut p)?;
        p.flush()?;
        follower.stored(p.stored_positions())?;
        tracing::info!(total, "projected");
        on(Following::Applied {
            events: stats.events,
            total,
        });
    }
    follower.close();
    Ok(total)
}
