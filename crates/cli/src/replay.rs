//! `replay`: rebuilds every projection from the log alone, up to a cut, in
//! a fresh data dir, and proves the result with its digest.
//!
//! A replayed dir carries `replay.json` (what was replayed, up to where,
//! and the digest it came to). Read commands on it use its projections as
//! they are, without catching up with any log; commands that record
//! events refuse it. So `clearing --data-dir DIR report settlement …`
//! shows the ledger exactly as it stood at the cut.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clearing_consumer::Until;
use clearing_log::Topic;
use clearing_projector::Projector;
use serde::{Deserialize, Serialize};

use crate::app::{now, open_log, Config, Format};
use clearing_log::kafka::KafkaSettings;
use clearing_log::{EventLog, TopicNames};

/// The log whose events a read command shows: the configured one, or, in a
/// replayed dir, the log the replay read.
pub fn events_log(cfg: &Config) -> Result<Box<dyn EventLog>> {
    match marker(&cfg.data_dir)? {
        None => open_log(cfg),
        Some(m) => match m.log {
            SourceLog::Embedded { data_dir } => open_log(&Config {
                data_dir,
                topics: cfg.topics.clone(),
                kafka: None,
            }),
            SourceLog::Kafka {
                brokers,
                topic_prefix,
                partitions,
            } => {
                let topics = TopicNames::with_prefix(&topic_prefix);
                open_log(&Config {
                    data_dir: cfg.data_dir.clone(),
                    topics: topics.clone(),
                    kafka: Some(
                        KafkaSettings::new(&brokers, topics, partitions)
                            .map_err(anyhow::Error::msg)?,
                    ),
                })
            }
        },
    }
}

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
#[serde(rename_all = "snake_case")]
pub enum SourceLog {
    Embedded {
        data_dir: PathBuf,
    },
    Kafka {
        brokers: String,
        topic_prefix: String,
        partitions: u32,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayMarker {
    /// The log replayed (`embedded log at DIR`, `kafka at BROKERS topic T`).
    pub source: String,
    pub log: SourceLog,
    /// `--until` as given.
    pub until: String,
    /// Next offset per partition after the cut: the log position the
    /// state reflects (`PARTITION:OFFSET,…`).
    pub log_position: String,
    pub events: u64,
    pub digest: String,
    pub replayed_at: String,
}

/// The replay marker of a data dir, if it is a replay.
pub fn marker(dir: &Path) -> Result<Option<ReplayMarker>> {
    let path = dir.join(MARKER);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not a replay marker", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Stops a command that would record events or move projections when the
/// data dir is a replay.
pub fn refuse_if_replay(cfg: &Config, what: &str) -> Result<()> {
    if let Some(m) = marker(&cfg.data_dir)? {
        bail!(
            "{} is a replay of {} until {}: it is read-only, {what} needs a live data dir",
            cfg.data_dir.display(),
            m.source,
            m.until
        );
    }
    Ok(())
}

/// `PARTITION:OFFSET,…` in partition order.
pub fn position_list(positions: &BTreeMap<u32, u64>) -> String {
    positions
        .iter()
        .map(|(p, o)| format!("{p}:{o}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `end`, per-partition positions (`0:1234,1:567`: the records before
/// those offsets), or an RFC 3339 time with its offset.
pub fn parse_until(s: &str) -> Result<Until, String> {
    let s = s.trim();
    if s == "end" {
        return Ok(Until::End);
    }
    let positions: Option<BTreeMap<u32, u64>> = s
        .split(',')
        .map(|part| {
            let (p, o) = part.trim().split_once(':')?;
            Some((p.parse().ok()?, o.parse().ok()?))
        })
        .collect();
    if let Some(positions) = positions {
        if positions.len() != s.split(',').count() {
            return Err(format!("--until {s:?} names a partition twice"));
        }
        return Ok(Until::Offsets(positions));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(Until::RecordedBy)
        .map_err(|_| {
            format!(
                "--until {s:?}: give `end`, an RFC 3339 time with its offset \
                 (2026-11-20T18:00:00+08:00) or positions (0:1234,1:567)"
            )
        })
}

pub struct Replayed {
    pub marker: ReplayMarker,
    pub positions: BTreeMap<u32, u64>,
}

/// Rebuilds the projections of the configured log, up to `until`, into the
/// fresh data dir `into`.
pub fn replay(cfg: &Config, until_arg: &str, into: &Path, leg_events: u64) -> Result<Replayed> {
    use std::io::IsTerminal;
    let until = parse_until(until_arg).map_err(anyhow::Error::msg)?;
    refuse_if_replay(cfg, "replay")?;
    if into.exists()
        && std::fs::read_dir(into)
            .with_context(|| format!("--into {}", into.display()))?
            .next()
            .is_some()
    {
        bail!(
            "--into {}: not empty; a replay builds a fresh data dir",
            into.display()
        );
    }
    let log = open_log(cfg)?;
    let partitions = log.partitions(Topic::Events).context("reading the log")?;
    if let Until::Offsets(cut) = &until {
        if let Some(p) = cut.keys().find(|p| **p >= partitions) {
            bail!(
                "--until names partition {p}; the log has {partitions} (0 to {})",
                partitions - 1
            );
        }
        let missing: Vec<String> = (0..partitions)
            .filter(|p| !cut.contains_key(p))
            .map(|p| p.to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "--until leaves out partition {}: name every partition, as `clearing digest --format json` prints them",
                missing.join(", ")
            );
        }
    }
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let total: Option<u64> = log
        .end_offsets(Topic::Events)
        .ok()
        .flatten()
        .map(|ends| ends.values().sum());
    let bar = if std::io::stderr().is_terminal() {
        let bar = match total {
            Some(t) => indicatif::ProgressBar::new(t).with_style(
                indicatif::ProgressStyle::with_template(
                    "replay {bar:40} {pos}/{len} events {per_sec} eta {eta}",
                )
                .expect("progress template"),
            ),
            None => indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("replay {spinner} {pos} events {per_sec}")
                    .expect("progress template"),
            ),
        };
        Some(bar)
    } else {
        None
    };
    // The projections are written in legs, the store closed and reopened
    // between them: sled keeps what a store wrote in memory while it is
    // open, and a replay's memory must not grow with the log.
    let mut events = 0u64;
    let batch_max = REPLAY_BATCH_MAX.min(usize::try_from(leg_events).unwrap_or(usize::MAX));
    let mut legs = 0u64;
    let describe = log.describe();
    drop(log);
    let open_projections = || {
        crate::app::retry_locked(|| Projector::open(into))
            .context("opening the replay's projections")
    };
    let positions = loop {
        let log = open_log(cfg)?;
        let mut p = open_projections()?;
        let stats = p
            .catch_up_until(&*log, &until, batch_max, leg_events, |n| {
                if let Some(b) = &bar {
                    b.set_position(events + n)
                }
            })
            .context("replaying")?;
        events += stats.events;
        // Undecodable messages are recorded in the replay's state as in
        // the live one; dead-lettering them is the live ledger's business.
        let _ = p.take_undecodable();
        p.flush()?;
        let positions = p.stored_positions().clone();
        drop((p, log));
        legs += 1;
        if stats.complete {
            break positions;
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    tracing::info!(events, legs, "replayed");
    let mut state = clearing_projector::DigestState::default();
    while !state.done() {
        open_projections()?.digest_leg(&mut state, DIGEST_LEG_BYTES)?;
    }
    let digest = state.finish();
    let source_log = match &cfg.kafka {
        Some(k) => SourceLog::Kafka {
            brokers: k.brokers.clone(),
            topic_prefix: cfg.topics.prefix().to_string(),
            partitions: k.partitions,
        },
        None => SourceLog::Embedded {
            data_dir: std::path::absolute(&cfg.data_dir)
                .with_context(|| format!("resolving {}", cfg.data_dir.display()))?,
        },
    };
    let marker = ReplayMarker {
        source: describe,
        log: source_log,
        until: until_arg.trim().to_string(),
        log_position: position_list(&positions),
        events,
        digest,
        replayed_at: now(),
    };
    let path: PathBuf = into.join(MARKER);
    std::fs::write(&path, serde_json::to_vec_pretty(&marker)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Replayed { marker, positions })
}

pub fn run(
    cfg: &Config,
    until: &str,
    into: &Path,
    leg_events: u64,
    format: Format,
    out: &mut impl Write,
) -> Result<()> {
    let r = replay(cfg, until, into, leg_events)?;
    // `--format json` output goes to stdout alone.
    if format != Format::Json {
        eprintln!(
            "clearing: replayed {} events of {} until {} into {}",
            r.marker.events,
            r.marker.source,
            r.marker.until,
            into.display()
        );
    }
    crate::report::digest(&r.marker.digest, &r.positions, format, out)
}
