//! Arguments, configuration and the commands.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{NaiveDate, SecondsFormat};
use clap::{Args, Parser, Subcommand, ValueEnum};
use clearing_core::calendar::{china_offset, Calendar};
use clearing_core::settlement::{risk_report, settlement_report, RiskReport, SettlementReport};
use clearing_log::embedded::EmbeddedLog;
use clearing_log::kafka::{KafkaLog, KafkaSettings};
use clearing_log::{EventLog, TopicNames};
use clearing_producer::{IngestSummary, WriteModel};
use clearing_projector::Projector;

use crate::report;

#[derive(Parser, Debug)]
#[command(
    name = "clearing",
    version,
    about = "The clearing ledger: ingest, settle, reconcile and replay acquiring transactions"
)]
pub struct Cli {
    /// Where the ledger keeps its state (embedded log, write model, projections).
    #[arg(long, env = "CLEARING_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Kafka bootstrap brokers (host:port,…); absent = the embedded log in the data dir.
    #[arg(long, env = "CLEARING_KAFKA", global = true)]
    kafka: Option<String>,
    /// Topic prefix: topics are PREFIX.events and PREFIX.rejected.
    #[arg(
        long,
        env = "CLEARING_TOPIC_PREFIX",
        default_value = "clearing",
        global = true
    )]
    topic_prefix: String,
    /// Partitions of each topic, used when creating topics on Kafka and
    /// checked against existing ones.
    #[arg(long, env = "CLEARING_PARTITIONS", default_value_t = 8, global = true)]
    partitions: u32,
    /// On Kafka: how long a record may wait for the broker's acknowledgement,
    /// retries with back-off included, before the command stops with an error.
    #[arg(
        long,
        env = "CLEARING_KAFKA_TIMEOUT_SECS",
        default_value_t = 120,
        global = true
    )]
    kafka_timeout_secs: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the whole daily job on a generated, realistic day and prints the reports.
    Demo(DemoArgs),
    /// Fee schedule.
    Fees {
        #[command(subcommand)]
        command: FeesCommand,
    },
    /// Merchant and intermediary registry.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Validates and publishes a transactions file (`-` = stdin).
    Ingest {
        file: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Brings the projections up to the end of the log.
    Project {
        /// Keep following the log until SIGINT/SIGTERM.
        #[arg(long)]
        follow: bool,
        /// With --follow: how long to wait between polls of the log.
        #[arg(long, default_value_t = 500)]
        poll_interval_ms: u64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Settlement and risk reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Digest of the live projection state.
    Digest {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Reconciles the channel's clearing file of a business date (SPEC §8).
    Recon {
        /// The clearing file.
        #[arg(long)]
        file: PathBuf,
        /// Business date the file is for, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        /// The file's layout: the CSV of SPEC §8, or the fixed-width layout
        /// of docs/FORMATS.md.
        #[arg(long, value_enum, default_value_t = ReconLayout::Csv)]
        layout: ReconLayout,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Rebuilds every projection from the log alone, up to a time or a log
    /// position, into a fresh data dir; prints its digest (SPEC §9).
    Replay {
        /// `end`, an RFC 3339 time (events recorded up to and including
        /// it), or per-partition positions `0:1234,1:567` (the records
        /// before those offsets).
        #[arg(long)]
        until: String,
        /// The fresh data dir to build.
        #[arg(long)]
        into: PathBuf,
        /// Events applied before the projections' store is closed and
        /// reopened: what bounds a replay's memory.
        #[arg(long, default_value_t = crate::replay::REPLAY_LEG_EVENTS)]
        leg_events: u64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// A transaction's whole story (SPEC §9).
    Txn {
        #[command(subcommand)]
        command: TxnCommand,
    },
    /// Merchant views.
    Merchant {
        #[command(subcommand)]
        command: MerchantCommand,
    },
    /// Exports for other parties and other tools.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// The pipeline benchmark.
    Bench(crate::bench::BenchArgs),
}

#[derive(Subcommand, Debug)]
enum TxnCommand {
    /// Every event of a transaction with its log position, the registry as it
    /// stood then, the fee rule, postings, settlement and reconciliation.
    Show {
        /// A txn_id or an rrn.
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
enum MerchantCommand {
    /// A merchant's settlement of a business date as known at a moment, line by line.
    Statement {
        merchant_id: String,
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        /// RFC 3339 time: only events recorded up to and including it.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<chrono::DateTime<chrono::FixedOffset>>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// A self-contained JSON bundle of a transaction for the other party.
    Dispute {
        /// A txn_id or an rrn.
        id: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// The day's postings as a plain-text accounting journal (hledger).
    Hledger {
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        /// Where to write it (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReconLayout {
    Csv,
    UnionpayFixed,
}

impl From<ReconLayout> for clearing_recon::Layout {
    fn from(l: ReconLayout) -> Self {
        match l {
            ReconLayout::Csv => clearing_recon::Layout::Csv,
            ReconLayout::UnionpayFixed => clearing_recon::Layout::UnionpayFixed,
        }
    }
}

#[derive(Subcommand, Debug)]
enum FeesCommand {
    /// Records the fee schedule (and calendar) as an event.
    Load {
        file: PathBuf,
        #[arg(long)]
        holidays: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum RegistryCommand {
    /// Records registrations and changes as events.
    Load {
        #[arg(long)]
        merchants: PathBuf,
        #[arg(long)]
        intermediaries: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCommand {
    /// Per-merchant settlement of a business date (SPEC §7).
    Settlement(ReportArgs),
    /// Flagged transactions and second-party exposure of a business date.
    Risk(ReportArgs),
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Business date, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    date: NaiveDate,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seed of the generated day; the same seed gives the same day.
    #[arg(long, default_value_t = 20261120)]
    seed: u64,
    #[arg(long, default_value_t = 300)]
    merchants: usize,
    #[arg(long, default_value_t = 5000)]
    txns: usize,
    /// Business date of the generated day.
    #[arg(long, value_parser = parse_date, default_value = "2026-11-20")]
    date: NaiveDate,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Table,
    Csv,
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
        format!("{s:?} is not an RFC 3339 time with offset (2026-11-20T18:00:00+08:00)")
    })
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?} is not a YYYY-MM-DD date"))
}

/// Validated configuration, passed down explicitly.
pub struct Config {
    pub data_dir: PathBuf,
    pub topics: TopicNames,
    /// `None`: the embedded log in the data dir.
    pub kafka: Option<KafkaSettings>,
}

impl Config {
    fn from_cli(cli: &Cli) -> Result<Config> {
        let prefix = cli.topic_prefix.trim();
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            bail!(
                "--topic-prefix {:?}: use letters, digits, '.', '_' or '-'",
                cli.topic_prefix
            );
        }
        let topics = TopicNames::with_prefix(prefix);
        let kafka = match cli.kafka.as_deref().filter(|k| !k.trim().is_empty()) {
            Some(brokers) => {
                if cli.kafka_timeout_secs == 0 {
                    bail!("--kafka-timeout-secs must be at least 1");
                }
                let mut k = KafkaSettings::new(brokers, topics.clone(), cli.partitions)
                    .map_err(anyhow::Error::msg)?;
                k.message_timeout_ms = cli.kafka_timeout_secs.saturating_mul(1000);
                Some(k)
            }
            None => None,
        };
        Ok(Config {
            data_dir: cli
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./clearing-data")),
            topics,
            kafka,
        })
    }
}

/// How long to wait for another `clearing` process to release the data
/// directory (sled holds an exclusive lock while a store is open).
const LOCK_WAIT_MAX: Duration = Duration::from_secs(10);

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

/// Opens the configured log: Kafka when `--kafka` is set, else the
/// embedded log in the data dir.
pub fn open_log(cfg: &Config) -> Result<Box<dyn EventLog>> {
    Ok(match &cfg.kafka {
        Some(k) => {
            // the data dir still holds the write model and the projections
            fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
            Box::new(KafkaLog::open(k.clone()).context("opening the log")?)
        }
        None => Box::new(open_embedded(cfg)?),
    })
}

pub fn open_embedded(cfg: &Config) -> Result<EmbeddedLog> {
    fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    retry_locked(|| EmbeddedLog::open(&cfg.data_dir, cfg.topics.clone())).context("opening the log")
}

fn open_write_model(cfg: &Config) -> Result<WriteModel> {
    retry_locked(|| WriteModel::open(&cfg.data_dir)).context("opening the write model")
}

/// The projections a read command reads: brought to the end of the log,
/// or, in a replayed data dir, as the replay left them.
pub fn read_projector(cfg: &Config) -> Result<Projector> {
    if crate::replay::marker(&cfg.data_dir)?.is_some() {
        return open_projector(cfg);
    }
    let log = open_log(cfg)?;
    let mut p = open_projector(cfg)?;
    project_all(cfg, &*log, &mut p)?;
    Ok(p)
}

fn open_projector(cfg: &Config) -> Result<Projector> {
    retry_locked(|| Projector::open(&cfg.data_dir)).context("opening the projections")
}

/// The recording time: now, in UTC+08:00, to the millisecond.
pub fn now() -> String {
    chrono::Utc::now()
        .with_timezone(&china_offset())
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn read_file(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn file_label(path: &Path) -> String {
    path.display().to_string()
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // One line: clap's first line, without its "error: " prefix.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("clearing: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLEARING_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader closed our stdout (`| head`): stop quietly.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("clearing: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let cfg = Config::from_cli(&cli)?;
    let mut out = std::io::stdout().lock();
    let records = match &cli.command {
        Command::Demo(_) if cli.data_dir.is_some() => Some("demo"),
        Command::Fees { .. } => Some("fees load"),
        Command::Registry { .. } => Some("registry load"),
        Command::Ingest { .. } => Some("ingest"),
        Command::Project { .. } => Some("project"),
        Command::Recon { .. } => Some("recon"),
        _ => None,
    };
    if let Some(what) = records {
        crate::replay::refuse_if_replay(&cfg, what)?;
    }
    match cli.command {
        Command::Demo(args) => demo(&cfg, cli.data_dir.is_some(), args, &mut out),
        Command::Fees {
            command: FeesCommand::Load { file, holidays },
        } => {
            let log = open_log(&cfg)?;
            let mut wm = open_write_model(&cfg)?;
            let loaded = load_fees(&log, &mut wm, &file, holidays.as_deref())?;
            if loaded.changed {
                writeln!(out, "fee schedule recorded as version {}", loaded.version)?;
            } else {
                writeln!(
                    out,
                    "fee schedule unchanged (version {} is in force)",
                    loaded.version
                )?;
            }
            Ok(())
        }
        Command::Registry {
            command:
                RegistryCommand::Load {
                    merchants,
                    intermediaries,
                },
        } => {
            let log = open_log(&cfg)?;
            let mut wm = open_write_model(&cfg)?;
            let s = load_registry(&log, &mut wm, &merchants, intermediaries.as_deref())?;
            writeln!(
                out,
                "merchants: {} registered, {} updated; intermediaries: {} registered, {} updated; {} unchanged",
                s.merchants_registered, s.merchants_updated, s.intermediaries_registered, s.intermediaries_updated, s.unchanged
            )?;
            Ok(())
        }
        Command::Ingest { file, format } => {
            let log = open_log(&cfg)?;
            let mut wm = open_write_model(&cfg)?;
            let summary = ingest_path(&log, &mut wm, &file)?;
            report::ingest_summary(&summary, format, &mut out)
        }
        Command::Project {
            follow,
            poll_interval_ms,
            format,
        } => {
            if follow {
                follow_log(&cfg, Duration::from_millis(poll_interval_ms.max(10)))
            } else {
                let log = open_log(&cfg)?;
                let mut p = open_projector(&cfg)?;
                let stats = project_all(&cfg, &log, &mut p)?;
                p.flush()?;
                report::projected(
                    stats.events,
                    p.stored_positions(),
                    p.redelivered,
                    format,
                    &mut out,
                )
            }
        }
        Command::Report { command } => {
            let (args, risk) = match command {
                ReportCommand::Settlement(a) => (a, false),
                ReportCommand::Risk(a) => (a, true),
            };
            let p = read_projector(&cfg)?;
            let s = settlement(&p, args.date)?;
            if risk {
                report::risk(&risk_of(&p, &s)?, args.format, &mut out)
            } else {
                report::settlement(&s, args.format, &mut out)
            }
        }
        Command::Digest { format } => {
            let p = read_projector(&cfg)?;
            report::digest(&p.digest()?, p.stored_positions(), format, &mut out)
        }
        Command::Recon {
            file,
            date,
            layout,
            format,
        } => {
            let r = recon_file(&cfg, &file, date, layout.into(), true)?;
            if format == Format::Json && r.bad_lines > 0 {
                for b in &r.bad {
                    eprintln!(
                        "clearing: {}: line {}: {} ({})",
                        r.file, b.line, b.detail, b.field
                    );
                }
            }
            report::recon(&r, format, &mut out)
        }
        Command::Replay {
            until,
            into,
            leg_events,
            format,
        } => crate::replay::run(&cfg, &until, &into, leg_events.max(1), format, &mut out),
        Command::Txn {
            command: TxnCommand::Show { id, format },
        } => {
            let p = read_projector(&cfg)?;
            let log = crate::replay::events_log(&cfg)?;
            let stories = crate::dispute::stories(&p, &*log, &id)?;
            if stories.is_empty() {
                bail!("no transaction with txn_id or rrn {id:?} in the ledger");
            }
            report::stories(&id, &stories, format, &mut out)
        }
        Command::Merchant {
            command:
                MerchantCommand::Statement {
                    merchant_id,
                    date,
                    as_of,
                    format,
                },
        } => {
            let p = read_projector(&cfg)?;
            let s = crate::dispute::statement(&p, &merchant_id, date, as_of)?;
            report::statement(&s, format, &mut out)
        }
        Command::Export {
            command: ExportCommand::Dispute { id, out: path },
        } => {
            let p = read_projector(&cfg)?;
            let log = crate::replay::events_log(&cfg)?;
            let content = crate::dispute::dispute_bundle(
                &p,
                &*log,
                &id,
                p.digest()?,
                crate::replay::position_list(p.stored_positions()),
                now(),
            )?;
            let bytes = crate::dispute::bundle_bytes(&content)?;
            fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            writeln!(
                out,
                "dispute bundle for {id}: {} transaction(s), {} statement(s), state digest {} written to {}",
                content.transactions.len(),
                content.statements.len(),
                content.state_digest,
                path.display()
            )?;
            Ok(())
        }
        Command::Export {
            command: ExportCommand::Hledger { date, out: path },
        } => {
            let p = read_projector(&cfg)?;
            let log = crate::replay::events_log(&cfg)?;
            match path {
                Some(path) => {
                    let mut f = std::io::BufWriter::new(
                        fs::File::create(&path)
                            .with_context(|| format!("creating {}", path.display()))?,
                    );
                    let n = crate::dispute::hledger_journal(&p, &*log, date, &mut f)?;
                    f.flush()?;
                    writeln!(
                        out,
                        "{n} transactions of {date} written to {}",
                        path.display()
                    )?;
                    Ok(())
                }
                None => {
                    crate::dispute::hledger_journal(&p, &*log, date, &mut out)?;
                    Ok(())
                }
            }
        }
        Command::Bench(args) => crate::bench::run(&cfg, args, &mut out),
    }
}

/// Files larger than this get a progress bar when stderr is a terminal.
const PROGRESS_BYTES_MIN: u64 = 512 * 1024;

/// Runs `recon` on a file: brings projections and write model up to date,
/// reconciles, and projects what the run recorded.
pub fn recon_file(
    cfg: &Config,
    file: &Path,
    date: NaiveDate,
    layout: clearing_recon::Layout,
    progress: bool,
) -> Result<clearing_recon::Report> {
    use std::io::IsTerminal;
    let label = file_label(file);
    let f = fs::File::open(file).with_context(|| format!("opening {label}"))?;
    let size = f
        .metadata()
        .with_context(|| format!("reading {label}"))?
        .len();
    let log = open_log(cfg)?;
    let mut wm = open_write_model(cfg)?;
    wm.catch_up(&*log).context("catching up the write model")?;
    let mut p = open_projector(cfg)?;
    project_all(cfg, &*log, &mut p)?;
    let bar = if progress && size >= PROGRESS_BYTES_MIN && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "recon {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("progress template"),
        );
        Some(bar)
    } else {
        None
    };
    let input: Box<dyn std::io::Read> = match &bar {
        Some(b) => Box::new(b.wrap_read(f)),
        None => Box::new(f),
    };
    let r = clearing_recon::reconcile(&*log, &mut wm, &p, &label, input, layout, date, &now());
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let r = r?;
    wm.flush()?;
    project_all(cfg, &*log, &mut p)?;
    p.flush()?;
    Ok(r)
}

pub fn load_fees(
    log: &dyn EventLog,
    wm: &mut WriteModel,
    file: &Path,
    holidays: Option<&Path>,
) -> Result<clearing_producer::FeesLoaded> {
    let schedule = clearing_producer::fees::parse_fees(&file_label(file), &read_file(file)?)?;
    let calendar = match holidays {
        Some(h) => clearing_producer::fees::parse_holidays(&file_label(h), &read_file(h)?)?,
        None => Calendar::default(),
    };
    Ok(clearing_producer::load_fees(
        log,
        wm,
        schedule,
        calendar,
        &now(),
    )?)
}

/// Records the fee schedule, calendar and registry of a directory holding
/// `fees.toml`, `holidays.txt`, `merchants.jsonl` and `intermediaries.jsonl`.
pub fn load_reference(
    log: &dyn EventLog,
    wm: &mut WriteModel,
    dir: &Path,
) -> Result<(
    clearing_producer::FeesLoaded,
    clearing_producer::RegistryLoaded,
)> {
    let fees = load_fees(
        log,
        wm,
        &dir.join("fees.toml"),
        Some(&dir.join("holidays.txt")),
    )?;
    let registry = load_registry(
        log,
        wm,
        &dir.join("merchants.jsonl"),
        Some(&dir.join("intermediaries.jsonl")),
    )?;
    Ok((fees, registry))
}

pub fn load_registry(
    log: &dyn EventLog,
    wm: &mut WriteModel,
    merchants: &Path,
    intermediaries: Option<&Path>,
) -> Result<clearing_producer::RegistryLoaded> {
    let m_text = read_file(merchants)?;
    let i_text = intermediaries.map(read_file).transpose()?;
    let m_label = file_label(merchants);
    let i_label = intermediaries.map(file_label);
    let i = i_label.as_deref().zip(i_text.as_deref());
    Ok(clearing_producer::load_registry(
        log,
        wm,
        (&m_label, &m_text),
        i,
        &now(),
    )?)
}

pub fn ingest_path(log: &dyn EventLog, wm: &mut WriteModel, file: &str) -> Result<IngestSummary> {
    let summary = if file == "-" {
        let stdin = std::io::stdin();
        clearing_producer::ingest(log, wm, "-", stdin.lock(), &now, |_| {})?
    } else {
        let f = fs::File::open(file).with_context(|| format!("opening {file}"))?;
        let input: Box<dyn BufRead> = Box::new(BufReader::with_capacity(1 << 20, f));
        clearing_producer::ingest(log, wm, file, input, &now, |_| {})?
    };
    wm.flush()?;
    Ok(summary)
}

/// Brings the projections to the end of the log. A message on the events
/// topic that is not an event is recorded by the projector and
/// dead-lettered here, with its position and reason, on the rejected topic.
pub fn project_all(
    cfg: &Config,
    log: &dyn EventLog,
    p: &mut Projector,
) -> Result<clearing_consumer::CatchUp> {
    let stats = p.catch_up(log, |_| {}).context("projecting")?;
    dead_letter_undecodable(cfg, log, p)?;
    Ok(stats)
}

/// Dead-letters, on the rejected topic, the messages that the projector
/// met on the events topic and could not read as events.
fn dead_letter_undecodable(cfg: &Config, log: &dyn EventLog, p: &mut Projector) -> Result<()> {
    let found = p.take_undecodable();
    if !found.is_empty() {
        tracing::error!(
            count = found.len(),
            "messages on the events topic are not events; dead-lettered"
        );
        clearing_producer::reject_undecodable(log, &cfg.topics.events, &found, &now())
            .context("dead-lettering messages that are not events")?;
    }
    Ok(())
}

pub fn settlement(p: &Projector, date: NaiveDate) -> Result<SettlementReport> {
    let rows = p.settlement_rows(date)?;
    settlement_report(date, rows).context("settlement totals overflow")
}

pub fn risk_of(p: &Projector, s: &SettlementReport) -> Result<RiskReport> {
    risk_report(s, p.flagged(s.business_date)?).context("exposure overflows")
}

/// `project --follow`: apply what is new until SIGINT/SIGTERM. On Kafka a
/// consumer-group member does the reading (see `follow_kafka`); the
/// embedded log is polled. Stores are opened per batch, so other
/// `clearing` processes can use the same data directory in between.
fn follow_log(cfg: &Config, poll: Duration) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the signal handler")?;
    let applied = match &cfg.kafka {
        Some(k) => follow_kafka(cfg, k, &stop, poll)?,
        None => follow_embedded(cfg, &stop, poll)?,
    };
    eprintln!("clearing: stopped following after {applied} events");
    Ok(())
}

fn follow_embedded(cfg: &Config, stop: &AtomicBool, poll: Duration) -> Result<u64> {
    let mut applied = 0u64;
    while !stop.load(Ordering::SeqCst) {
        {
            let log = open_embedded(cfg)?;
            let mut p = open_projector(cfg)?;
            let stats = project_all(cfg, &log, &mut p)?;
            p.flush()?;
            applied += stats.events;
            if stats.events > 0 {
                tracing::info!(events = stats.events, total = applied, "projected");
            }
        }
        let mut slept = Duration::ZERO;
        while slept < poll && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            slept += Duration::from_millis(10);
        }
    }
    Ok(applied)
}

/// Follows the events topic as a member of the consumer group
/// `PREFIX.projector.ID` (ID: this data dir's projections). Each assigned
/// partition starts at the position stored in sled with the projection;
/// the group's committed offsets only report progress.
fn follow_kafka(cfg: &Config, k: &KafkaSettings, stop: &AtomicBool, poll: Duration) -> Result<u64> {
    let log = KafkaLog::open(k.clone()).context("opening the log")?;
    fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let (group, stored) = {
        let p = open_projector(cfg)?;
        let id = p.follower_id()?;
        (
            format!("{}.projector.{id}", cfg.topics.prefix()),
            p.stored_positions().clone(),
        )
    };
    eprintln!(
        "clearing: following {} as consumer group {group}",
        cfg.topics.events
    );
    let mut follower = log
        .follower(clearing_log::Topic::Events, &group, stored)
        .context("joining the consumer group")?;
    let mut applied = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let records = follower.poll(
            clearing_projector::PROJECT_BATCH_MAX,
            poll.max(Duration::from_millis(100)),
        )?;
        if records.is_empty() {
            continue;
        }
        let mut p = open_projector(cfg)?;
        // Another command may have projected some of these meanwhile: the
        // positions in sled decide.
        let fresh: Vec<clearing_log::Delivered> = records
            .into_iter()
            .filter(|r| {
                r.position.offset
                    >= p.stored_positions()
                        .get(&r.position.partition)
                        .copied()
                        .unwrap_or(0)
            })
            .collect();
        let stats = clearing_consumer::apply_batch(&mut p, clearing_consumer::decode_all(fresh))
            .context("projecting")?;
        applied += stats.events;
        dead_letter_undecodable(cfg, &log, &mut p)?;
        p.flush()?;
        follower.stored(p.stored_positions())?;
        tracing::info!(total = applied, "projected");
    }
    follower.close();
    Ok(applied)
}

fn demo(cfg: &Config, dir_given: bool, args: DemoArgs, out: &mut impl Write) -> Result<()> {
    let temp;
    let dir = if dir_given {
        if cfg.data_dir.join("log").exists() {
            bail!(
                "--data-dir {}: already holds a ledger; the demo needs an empty directory",
                cfg.data_dir.display()
            );
        }
        cfg.data_dir.clone()
    } else {
        temp = tempfile::Builder::new()
            .prefix("clearing-demo-")
            .tempdir()
            .context("creating a temporary data dir")?;
        temp.path().to_path_buf()
    };
    let started = std::time::Instant::now();
    let input = dir.join("input");
    let params = crate::gen::Params {
        seed: args.seed,
        merchants: args.merchants.max(1),
        txns: args.txns,
        business_date: args.date,
        faults: true,
    };
    let day = crate::gen::write_day(&params, &input)
        .with_context(|| format!("writing the generated day into {}", input.display()))?;
    let txn_path = input.join("transactions.jsonl");

    let dcfg = Config {
        data_dir: dir.clone(),
        topics: cfg.topics.clone(),
        kafka: cfg.kafka.clone(),
    };
    let log = open_log(&dcfg)?;
    let mut wm = open_write_model(&dcfg)?;
    let (fees, registry) = load_reference(&log, &mut wm, &input)?;
    let summary = ingest_path(&log, &mut wm, &txn_path.display().to_string())?;
    let mut p = open_projector(&dcfg)?;
    let projected = project_all(&dcfg, &log, &mut p)?;
    p.flush()?;
    let s = settlement(&p, args.date)?;
    let r = risk_of(&p, &s)?;
    // The channel's clearing file for the day, with breaks injected.
    let cutoff = wm.reference.cutoff().context("no fee schedule")?;
    let ledger = clearing_recon::ledger_side(p.recon_entries(args.date)?, cutoff);
    let channel_path = input.join(format!("channel-{}.csv", args.date));
    let (channel_lines, injected) =
        crate::gen::write_channel_file(&ledger, args.date, args.seed, true, &channel_path)
            .with_context(|| format!("writing {}", channel_path.display()))?;
    drop((p, wm, log));
    let recon = recon_file(
        &dcfg,
        &channel_path,
        args.date,
        clearing_recon::Layout::Csv,
        false,
    )?;
    let p = open_projector(&dcfg)?;
    let digest = p.digest()?;
    drop(p);
    let elapsed_ms = started.elapsed().as_millis();
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "data_dir": if dir_given { Some(dir.display().to_string()) } else { None },
                "seed": args.seed,
                "input_lines": day.lines,
                "fee_schedule_version": fees.version,
                "registry": registry,
                "ingest": summary,
                "events_projected": projected.events,
                "digest": digest,
                "settlement": s,
                "risk": r,
                "channel_file": {"lines": channel_lines, "injected": injected},
                "recon": report::recon_json(&recon),
            });
            writeln!(out, "{v}")?;
        }
        Format::Table | Format::Csv => {
            writeln!(
                out,
                "clearing demo — business date {} (seed {})",
                args.date, args.seed
            )?;
            writeln!(
                out,
                "registry: {} merchants, {} intermediaries; fee schedule v{}",
                registry.merchants_registered, registry.intermediaries_registered, fees.version
            )?;
            write!(out, "ingest of {} lines: ", day.lines)?;
            let counts_only = IngestSummary {
                first_rejects: Vec::new(),
                ..summary.clone()
            };
            report::ingest_summary(&counts_only, Format::Table, out)?;
            writeln!(
                out,
                "projected {} events; whole job {elapsed_ms} ms; projection digest {digest}",
                projected.events
            )?;
            writeln!(out)?;
            report::settlement(&s, args.format, out)?;
            writeln!(out)?;
            report::risk(&r, args.format, out)?;
            writeln!(out)?;
            writeln!(
                out,
                "channel file {} ({channel_lines} lines): injected {} dropped, {} amount, {} fee, {} duplicated, {} unknown, {} cancelled reported; {} near-cutoff left for tomorrow",
                channel_path.display(),
                injected.dropped,
                injected.amount_changed,
                injected.fee_changed,
                injected.duplicated,
                injected.unknown_added,
                injected.cancelled_reported,
                injected.near_cutoff_left_out
            )?;
            report::recon(&recon, args.format, out)?;
            if dir_given {
                writeln!(
                    out,
                    "\nledger kept in {}; try: clearing --data-dir {} report settlement --date {}",
                    dir.display(),
                    dir.display(),
                    args.date
                )?;
                // a break the ledger holds a record of (not missing_in_ledger)
                if let Some(b) = recon.breaks.iter().find(|b| b.txn_id.is_some()) {
                    writeln!(
                        out,
                        "a break's whole story: clearing --data-dir {} txn show {}",
                        dir.display(),
                        b.key.rrn
                    )?;
                }
            }
        }
    }
    Ok(())
}
