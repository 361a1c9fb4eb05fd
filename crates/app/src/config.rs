//! Configuration in two phases: what the front end was given, then the
//! validated `Config` passed down explicitly. Opening the configured log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clearing_core::Timestamp;
use clearing_kafka::{KafkaLog, KafkaSettings};
use clearing_log::embedded::EmbeddedLog;
use clearing_log::{EventLog, TopicNames};

use crate::error::{AppError, Context};

/// What a front end was given (flags, environment), before validation.
#[derive(Clone, Debug, Default)]
pub struct ConfigInput {
    pub data_dir: Option<PathBuf>,
    pub kafka: Option<String>,
    pub topic_prefix: String,
    pub partitions: u32,
    pub kafka_timeout_secs: u64,
    /// One Kafka transaction per append to the events topic.
    pub kafka_transactions: bool,
    /// Snapshots of the projections: every this many offsets (0: only at
    /// date closes), and how many are kept (0: none are written).
    pub snapshots: Snapshots,
}

/// When the live projector writes snapshots of its state into
/// `DATA_DIR/snapshots/`: before the first transaction of each new
/// business date (the close of the dates before), and after every `every`
/// offsets; the newest `keep` are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshots {
    pub every: u64,
    pub keep: usize,
}

impl Snapshots {
    pub const EVERY_DEFAULT: u64 = 5_000_000;
    pub const KEEP_DEFAULT: usize = 4;
}

impl Default for Snapshots {
    fn default() -> Snapshots {
        Snapshots {
            every: Snapshots::EVERY_DEFAULT,
            keep: Snapshots::KEEP_DEFAULT,
        }
    }
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub topics: TopicNames,
    /// `None`: the embedded log in the data dir.
    pub kafka: Option<KafkaSettings>,
    /// Where recording times come from.
    pub clock: Clock,
    pub snapshots: Snapshots,
}

/// The source of recording times: the system clock, or a fixed one for
/// tests that compare digests across runs.
#[derive(Clone, Copy)]
pub struct Clock(pub fn() -> Timestamp);

impl Clock {
    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock(now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// The snapshots' directory in a data dir.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// The data dir when none is given.
pub const DATA_DIR_DEFAULT: &str = "./clearing-data";

impl Config {
    pub fn new(input: &ConfigInput) -> Result<Config, AppError> {
        let prefix = input.topic_prefix.trim();
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(AppError::input(format!(
                "--topic-prefix {:?}: use letters, digits, '.', '_' or '-'",
                input.topic_prefix
            )));
        }
        let topics = TopicNames::with_prefix(prefix);
        let kafka = match input.kafka.as_deref().filter(|k| !k.trim().is_empty()) {
            Some(brokers) => {
                if input.kafka_timeout_secs == 0 {
                    return Err(AppError::input("--kafka-timeout-secs must be at least 1"));
                }
                let mut k = KafkaSettings::new(brokers, topics.clone(), input.partitions)
                    .map_err(AppError::input)?;
                k.message_timeout_ms = input.kafka_timeout_secs.saturating_mul(1000);
                k.transactions = input.kafka_transactions;
                Some(k)
            }
            None => None,
        };
        Ok(Config {
            data_dir: input
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
            topics,
            kafka,
            clock: Clock::default(),
            snapshots: input.snapshots,
        })
    }

    /// Where the live projector keeps its snapshots.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join(SNAPSHOT_DIR)
    }

    /// The live projector's snapshot policy; `None` when snapshots are off.
    pub fn snapshot_policy(&self) -> Option<clearing_projector::SnapshotPolicy> {
        (self.snapshots.keep > 0).then(|| clearing_projector::SnapshotPolicy {
            dir: self.snapshot_dir(),
            every: self.snapshots.every,
            at_date_close: true,
            keep: self.snapshots.keep,
        })
    }

    /// The same ledger's log, with another data dir.
    pub fn with_data_dir(&self, data_dir: &Path) -> Config {
        Config {
            data_dir: data_dir.to_path_buf(),
            ..self.clone()
        }
    }
}

/// The recording time: now, in UTC+08:00, to the millisecond.
pub fn now() -> Timestamp {
    Timestamp::from_datetime(
        chrono::Utc::now().with_timezone(&clearing_core::calendar::china_offset()),
    )
}

/// How long to wait for another `clearing` process to release the data
/// directory (sled holds an exclusive lock while a store is open).
const LOCK_WAIT_MAX: Duration = Duration::from_secs(10);

/// Retries `open` while the store it opens is locked by another process.
pub fn retry_locked<T, E: std::fmt::Display>(
    mut open: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let start = std::time::Instant::now();
    loop {
        match open() {
            Err(e) if e.to_string().contains("lock") && start.elapsed() < LOCK_WAIT_MAX => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

fn create_data_dir(dir: &Path) -> Result<(), AppError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| AppError::storage(format!("creating data dir {}: {e}", dir.display())))
}

/// Opens the configured log: Kafka when configured, else the embedded log
/// in the data dir.
pub fn open_log(cfg: &Config) -> Result<Arc<dyn EventLog>, AppError> {
    Ok(match &cfg.kafka {
        Some(k) => {
            // the data dir still holds the write model and the projections
            create_data_dir(&cfg.data_dir)?;
            Arc::new(open_kafka(k)?)
        }
        None => Arc::new(open_embedded(cfg)?),
    })
}

pub fn open_kafka(k: &KafkaSettings) -> Result<KafkaLog, AppError> {
    KafkaLog::open(k.clone()).context("opening the log")
}

pub fn open_embedded(cfg: &Config) -> Result<EmbeddedLog, AppError> {
    create_data_dir(&cfg.data_dir)?;
    retry_locked(|| EmbeddedLog::open(&cfg.data_dir, cfg.topics.clone())).context("opening the log")
}

pub(crate) fn open_projector(dir: &Path) -> Result<clearing_projector::Projector, AppError> {
    retry_locked(|| clearing_projector::Projector::open(dir)).context("opening the projections")
}

pub(crate) fn open_writer(
    log: Arc<dyn EventLog>,
    dir: &Path,
) -> Result<clearing_producer::Writer, AppError> {
    retry_locked(|| clearing_producer::Writer::open(log.clone(), dir))
        .context("opening the write model")
}
