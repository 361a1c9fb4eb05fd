//! Replay (SPEC §9): every projection rebuilt from the log alone, up to a
//! cut, in a fresh data dir, proved by its digest; and the rule that such a
//! dir is read-only.
//!
//! A replayed dir carries `replay.json` (what was replayed, up to where,
//! and the digest it came to). Read use cases on it use its projections as
//! they are, without catching up with any log, and read events from the log
//! the replay read. Every use case that records events or moves
//! projections needs a `Live` dir, and `Config::live` is the one place that
//! refuses a replayed one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clearing_core::{Cut, Positions, Timestamp};
use clearing_kafka::KafkaSettings;
use clearing_log::{EventLog, Topic, TopicNames};
use serde::{Deserialize, Serialize};

use crate::config::{open_log, open_projector, Config};
use crate::error::{AppError, Context};
use crate::snapshots::{self, StartedFrom};
use crate::views::DigestView;

/// The file that marks a data dir as a replay.
pub const MARKER: &str = "replay.json";

/// Events read per batch by a replay. Smaller than catch-up's batches:
/// a replay's memory stays bounded whatever the log's size, at a cost in
/// speed measured by `clearing bench`.
pub const REPLAY_BATCH_MAX: usize = 8192;

/// Stored bytes a replay's digest reads before the store is reopened.
pub const DIGEST_LEG_BYTES: u64 = 128 << 20;

/// Events applied before the store is closed and reopened (see `replay`).
pub const REPLAY_LEG_EVENTS: u64 = 100_000;

/// Where a replay read its events, so that commands on the replayed dir
/// can show them (the log is immutable: positions before the cut hold
/// what they held when the replay read them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SourceLog {
    Embedded {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        data_dir: PathBuf,
    },
    Kafka {
        brokers: String,
        topic_prefix: String,
        partitions: u32,
    },
}

/// `replay.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayMarker {
    /// The log replayed (`embedded log at DIR`, `kafka at BROKERS`).
    pub source: String,
    pub log: SourceLog,
    /// `--until` as given.
    pub until: String,
    /// Next offset per partition after the cut: the log position the
    /// state reflects.
    pub log_position: Positions,
    /// Events applied by the replay: after the snapshot it started from,
    /// if any.
    pub events: u64,
    pub digest: String,
    pub replayed_at: Timestamp,
    /// The snapshot the replay started from; absent: the first event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_snapshot: Option<StartedFrom>,
}

/// The replay marker of a data dir, if it is a replay.
pub fn marker(dir: &Path) -> Result<Option<ReplayMarker>, AppError> {
    let path = dir.join(MARKER);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            AppError::storage(format!("{} is not a replay marker: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AppError::storage(format!(
            "reading {}: {e}",
            path.display()
        ))),
    }
}

/// A data dir that may change: not a replay. Only `Config::live` makes
/// one, so a use case that records events or moves projections cannot be
/// called on a replayed dir.
#[derive(Clone, Copy)]
pub struct Live<'a> {
    cfg: &'a Config,
}

impl<'a> Live<'a> {
    pub fn config(&self) -> &'a Config {
        self.cfg
    }
}

impl Config {
    /// This data dir, for use cases that change it; a replayed dir is
    /// refused with one line saying what it is.
    pub fn live(&self) -> Result<Live<'_>, AppError> {
        if let Some(m) = marker(&self.data_dir)? {
            return Err(AppError::conflict(format!(
                "{} is a replay of {} until {}: it is read-only, recording or projecting needs a live data dir",
                self.data_dir.display(),
                m.source,
                m.until
            )));
        }
        Ok(Live { cfg: self })
    }
}

/// The log whose events a read shows: the configured one, or, in a
/// replayed dir, the log the replay read.
pub fn events_log(
    cfg: &Config,
    marker: Option<&ReplayMarker>,
) -> Result<Arc<dyn EventLog>, AppError> {
    let Some(m) = marker else {
        return open_log(cfg);
    };
    match &m.log {
        SourceLog::Embedded { data_dir } => open_log(&Config {
            data_dir: data_dir.clone(),
            kafka: None,
            ..cfg.clone()
        }),
        SourceLog::Kafka {
            brokers,
            topic_prefix,
            partitions,
        } => {
            let topics = TopicNames::with_prefix(topic_prefix);
            let kafka = KafkaSettings::new(brokers, topics.clone(), *partitions)
                .map_err(AppError::input)?;
            open_log(&Config {
                topics,
                kafka: Some(kafka),
                ..cfg.clone()
            })
        }
    }
}

/// What a replay did.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replayed {
    pub marker: ReplayMarker,
    pub digest: DigestView,
    /// Snapshots passed over, and why.
    pub warnings: Vec<String>,
}

/// How a replay goes about it.
#[derive(Clone, Copy, Debug)]
pub struct ReplayOptions {
    /// Events applied before the store is closed and reopened.
    pub leg_events: u64,
    /// From the first event, whatever snapshots there are.
    pub from_scratch: bool,
}

impl Default for ReplayOptions {
    fn default() -> ReplayOptions {
        ReplayOptions {
            leg_events: REPLAY_LEG_EVENTS,
            from_scratch: false,
        }
    }
}

/// Rebuilds the projections of `live`'s log, up to `cut`, into the fresh
/// data dir `into`: from the newest usable snapshot at or before the cut
/// (`snapshots`), unless told to start from scratch, then the log's
/// events up to the cut. `progress` hears the offsets the state reflects
/// so far and, when the log can say so, how many it holds.
pub fn replay(
    live: Live<'_>,
    cut: &Cut,
    into: &Path,
    options: ReplayOptions,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Replayed, AppError> {
    let cfg = live.config();
    check_fresh(into)?;
    let log = open_log(cfg)?;
    let partitions = log.partitions(Topic::Events).context("reading the log")?;
    if let Cut::Before(positions) = cut {
        check_names_every_partition(positions, partitions)?;
    }
    std::fs::create_dir_all(into)
        .map_err(|e| AppError::storage(format!("creating {}: {e}", into.display())))?;
    let total = log
        .end_offsets(Topic::Events)
        .ok()
        .flatten()
        .map(|ends| ends.total());
    let describe = log.describe();
    let mut warnings = Vec::new();
    let mut from_snapshot = None;
    if !options.from_scratch {
        let (usable, passed_over) = snapshots::before_cut(cfg, cut, partitions);
        warnings.extend(passed_over);
        for (path, header) in usable {
            match snapshots::restore(&path, &header, into, &*log) {
                Ok(started) => {
                    from_snapshot = Some(started);
                    break;
                }
                Err(why) => {
                    warnings.push(snapshots::skipped(&path, &why));
                    snapshots::discard(into)?;
                }
            }
        }
    }
    // The warnings are the front end's to show (`Replayed::warnings`).
    drop(log);
    let base = from_snapshot
        .as_ref()
        .map_or(0, |s: &StartedFrom| s.log_position.total());
    let (events, positions) = replay_legs(cfg, cut, into, options.leg_events, |n| {
        progress(base + n, total)
    })?;
    let digest = digest_in_legs(into)?;
    let marker = ReplayMarker {
        source: describe,
        log: source_log(cfg)?,
        until: cut.to_string(),
        log_position: positions.clone(),
        events,
        digest: digest.clone(),
        replayed_at: cfg.clock.now(),
        from_snapshot,
    };
    let path = into.join(MARKER);
    let bytes = serde_json::to_vec_pretty(&marker).expect("the marker serialises");
    std::fs::write(&path, bytes)
        .map_err(|e| AppError::storage(format!("writing {}: {e}", path.display())))?;
    Ok(Replayed {
        marker,
        digest: DigestView::new(digest, &positions),
        warnings,
    })
}

fn check_fresh(into: &Path) -> Result<(), AppError> {
    if !into.exists() {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(into)
        .map_err(|e| AppError::input(format!("--into {}: {e}", into.display())))?;
    if entries.next().is_some() {
        return Err(AppError::input(format!(
            "--into {}: not empty; a replay builds a fresh data dir",
            into.display()
        )));
    }
    Ok(())
}

fn check_names_every_partition(cut: &Positions, partitions: u32) -> Result<(), AppError> {
    if let Some((p, _)) = cut.iter().find(|(p, _)| *p >= partitions) {
        return Err(AppError::input(format!(
            "--until names partition {p}; the log has {partitions} (0 to {})",
            partitions - 1
        )));
    }
    let missing: Vec<String> = (0..partitions)
        .filter(|p| !cut.contains(*p))
        .map(|p| p.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(AppError::input(format!(
            "--until leaves out partition {}: name every partition, as `clearing digest --format json` prints them",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Projects up to the cut in legs: the projections are closed and
/// reopened every `leg_events` events, because sled keeps what an open
/// store wrote in memory, and a replay's memory must not grow with the
/// log. The log stays open (a Kafka reader keeps its place and what it
/// has fetched). Returns the events applied and the positions reached.
pub(crate) fn replay_legs(
    cfg: &Config,
    cut: &Cut,
    into: &Path,
    leg_events: u64,
    mut progress: impl FnMut(u64),
) -> Result<(u64, Positions), AppError> {
    let leg_events = leg_events.max(1);
    let batch_max = REPLAY_BATCH_MAX.min(usize::try_from(leg_events).unwrap_or(usize::MAX));
    let mut events = 0u64;
    let mut legs = 0u64;
    let log = open_log(cfg)?;
    loop {
        let mut p = open_projector(into).context("opening the replay's projections")?;
        let stats = p
            .catch_up_until(&*log, cut, batch_max, leg_events, |n| progress(events + n))
            .context("replaying")?;
        events += stats.events;
        // Undecodable messages are recorded in the replay's state as in
        // the live one; dead-lettering them is the live ledger's business.
        let _ = p.take_undecodable();
        p.flush()?;
        let positions = p.stored_positions().clone();
        drop(p);
        legs += 1;
        if stats.complete {
            tracing::info!(events, legs, "replayed");
            return Ok((events, positions));
        }
    }
}

/// The digest of a replayed dir, taken in legs of `DIGEST_LEG_BYTES`, the
/// store reopened between legs.
pub(crate) fn digest_in_legs(into: &Path) -> Result<String, AppError> {
    let mut state = clearing_projector::DigestState::default();
    while !state.done() {
        open_projector(into)
            .context("opening the replay's projections")?
            .digest_leg(&mut state, DIGEST_LEG_BYTES)?;
    }
    Ok(state.finish())
}

fn source_log(cfg: &Config) -> Result<SourceLog, AppError> {
    Ok(match &cfg.kafka {
        Some(k) => SourceLog::Kafka {
            brokers: k.brokers.clone(),
            topic_prefix: cfg.topics.prefix().to_string(),
            partitions: k.partitions,
        },
        None => SourceLog::Embedded {
            data_dir: std::path::absolute(&cfg.data_dir).map_err(|e| {
                AppError::storage(format!("resolving {}: {e}", cfg.data_dir.display()))
            })?,
        },
    })
}
