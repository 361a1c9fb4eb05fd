//! The command line's arguments (SPEC §10), as clap parses them.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use clearing_app::core::{Cut, Timestamp};
use clearing_app::{ConfigInput, Layout, Snapshots};

use crate::render::Format;

#[derive(Parser, Debug)]
#[command(
    name = "clearing",
    version,
    about = "The clearing ledger: ingest, settle, reconcile and replay acquiring transactions"
)]
pub struct Cli {
    /// Where the ledger keeps its state (embedded log, write model, projections).
    #[arg(long, env = "CLEARING_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Kafka bootstrap brokers (host:port,…); absent = the embedded log in the data dir.
    #[arg(long, env = "CLEARING_KAFKA", global = true)]
    pub kafka: Option<String>,
    /// Topic prefix: topics are PREFIX.events and PREFIX.rejected.
    #[arg(
        long,
        env = "CLEARING_TOPIC_PREFIX",
        default_value = "clearing",
        global = true
    )]
    pub topic_prefix: String,
    /// Partitions of each topic, used when creating topics on Kafka and
    /// checked against existing ones.
    #[arg(long, env = "CLEARING_PARTITIONS", default_value_t = 8, global = true)]
    pub partitions: u32,
    /// On Kafka: how long a record may wait for the broker's acknowledgement,
    /// retries with back-off included, before the command stops with an error.
    #[arg(
        long,
        env = "CLEARING_KAFKA_TIMEOUT_SECS",
        default_value_t = 120,
        global = true
    )]
    pub kafka_timeout_secs: u64,
    /// On Kafka: each append to the events topic is one Kafka transaction,
    /// so that readers never see half of one (`off` for a broker without
    /// transactions; exactly-once holds either way).
    #[arg(
        long,
        env = "CLEARING_KAFKA_TRANSACTIONS",
        value_enum,
        default_value_t = Switch::On,
        global = true
    )]
    pub kafka_transactions: Switch,
    /// A snapshot of the projections after every this many events applied
    /// since the last one (0: only at the close of each business date);
    /// replays start from the newest usable one.
    #[arg(
        long,
        env = "CLEARING_SNAPSHOT_EVERY",
        default_value_t = Snapshots::EVERY_DEFAULT,
        global = true
    )]
    pub snapshot_every: u64,
    /// Snapshots kept in DATA_DIR/snapshots (older ones are deleted; 0:
    /// none are written).
    #[arg(
        long,
        env = "CLEARING_SNAPSHOT_KEEP",
        default_value_t = Snapshots::KEEP_DEFAULT,
        global = true
    )]
    pub snapshot_keep: usize,
    #[command(subcommand)]
    pub command: Command,
}

/// A setting that is on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
    /// Reconciles the channel's clearing file of a business date (SPEC §8);
    /// `recon resolve` decides one of its breaks (SPEC §14).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Recon {
        #[command(subcommand)]
        command: Option<ReconCommand>,
        /// The clearing file.
        #[arg(long, required = true)]
        file: Option<PathBuf>,
        /// Business date the file is for, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, required = true)]
        date: Option<NaiveDate>,
        /// The file's layout: the CSV of SPEC §8, or the fixed-width layout
        /// of docs/FORMATS.md.
        #[arg(long, value_enum, default_value_t = ReconLayout::Csv)]
        layout: ReconLayout,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The operators' HTTP service: the /v1 API on this ledger (SPEC §12).
    Serve {
        /// Address to listen on, host:port (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The tokens file (`clearing token add` writes it).
        #[arg(long, env = "CLEARING_TOKENS")]
        tokens: PathBuf,
        /// Largest request body accepted; larger is refused with 413.
        #[arg(long, default_value_t = 64 * 1024 * 1024)]
        body_limit_bytes: usize,
        /// Requests per token per minute; more are refused with 429.
        #[arg(long, default_value_t = 1200)]
        requests_per_minute: u32,
        /// How long one request may take before it is answered 408.
        #[arg(long, default_value_t = 300)]
        request_timeout_secs: u64,
        /// How often the projections follow the log between requests.
        #[arg(long, default_value_t = 500)]
        poll_ms: u64,
    },
    /// Tokens of the HTTP service.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Payout batches: prepare, approve, export, record the bank's answer (SPEC §13).
    Payout {
        #[command(subcommand)]
        command: PayoutCommand,
    },
    /// Rebuilds every projection from the log alone, up to a time or a log
    /// position, into a fresh data dir; prints its digest (SPEC §9).
    Replay {
        /// `end`, an RFC 3339 time (events recorded up to and including
        /// it), or per-partition positions `0:1234,1:567` (the records
        /// before those offsets).
        #[arg(long, value_parser = parse_cut)]
        until: Cut,
        /// The fresh data dir to build.
        #[arg(long)]
        into: PathBuf,
        /// Events applied before the projections' store is closed and
        /// reopened: what bounds a replay's memory.
        #[arg(long, default_value_t = clearing_app::replay::REPLAY_LEG_EVENTS)]
        leg_events: u64,
        /// From the first event, ignoring the live data dir's snapshots.
        #[arg(long)]
        from_scratch: bool,
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
    /// Recomputes every partition's hash chain and the projections from
    /// the log; exits 0 only when everything holds (SPEC §15).
    Verify {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The pipeline benchmark.
    Bench(crate::bench::BenchArgs),
}

#[derive(Subcommand, Debug)]
pub enum TxnCommand {
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
pub enum MerchantCommand {
    /// A merchant's settlement of a business date as known at a moment, line by line.
    Statement {
        merchant_id: String,
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        /// RFC 3339 time: only events recorded up to and including it.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<Timestamp>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
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

impl From<ReconLayout> for Layout {
    fn from(l: ReconLayout) -> Self {
        match l {
            ReconLayout::Csv => Layout::Csv,
            ReconLayout::UnionpayFixed => Layout::UnionpayFixed,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum FeesCommand {
    /// Records the fee schedule (and calendar) as an event.
    Load {
        file: PathBuf,
        #[arg(long)]
        holidays: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Records registrations and changes as events.
    Load {
        #[arg(long)]
        merchants: PathBuf,
        #[arg(long)]
        intermediaries: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Per-merchant settlement of a business date (SPEC §7).
    Settlement(ReportArgs),
    /// Flagged transactions and second-party exposure of a business date.
    Risk(ReportArgs),
    /// The payout batch of a payout date (SPEC §13).
    Payout(ReportArgs),
    /// The adjustments recorded for the breaks of a business date (SPEC §14).
    Adjustments(ReportArgs),
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Adds a token with a role to the tokens file and prints it, once.
    Add {
        #[arg(long, env = "CLEARING_TOKENS")]
        tokens: PathBuf,
        /// Who holds it: recorded as the operator of every change it makes.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: TokenRole,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenRole {
    Viewer,
    Operator,
    Approver,
    Admin,
}

#[derive(Subcommand, Debug)]
pub enum ReconCommand {
    /// Closes one break of the date's latest run: the ledger stands, or
    /// the channel does and an adjustment is recorded (SPEC §14).
    Resolve {
        /// Business date of the run, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        #[arg(long)]
        terminal: String,
        #[arg(long)]
        rrn: String,
        #[arg(long, value_enum)]
        txn_type: ReconTxnType,
        #[arg(long, value_enum)]
        decision: ReconDecision,
        /// Who decides.
        #[arg(long)]
        operator: String,
        /// Why (must not be blank).
        #[arg(long)]
        remark: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReconTxnType {
    Sale,
    Refund,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReconDecision {
    /// 以平台为准: the ledger stands; nothing moves.
    Ledger,
    /// 以渠道为准: the channel's figures stand; an adjustment is recorded.
    Channel,
}

#[derive(Subcommand, Debug)]
pub enum PayoutCommand {
    /// Records the batch of a payout date: what each payee is owed up to it.
    Prepare {
        /// Payout date, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        /// Who prepares it.
        #[arg(long)]
        operator: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Approves a batch: the approver must not be its preparer.
    Approve {
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        #[arg(long)]
        operator: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Writes an approved batch as the bank's payout CSV.
    Export {
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        #[arg(long)]
        out: PathBuf,
        /// Who exports it (recorded with the export).
        #[arg(long)]
        operator: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Records the bank's return file of an exported batch.
    Result {
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        #[arg(long)]
        file: PathBuf,
        /// Who records it.
        #[arg(long)]
        operator: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Business date, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    pub date: NaiveDate,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seed of the generated day; the same seed gives the same day.
    #[arg(long, default_value_t = 20261120)]
    pub seed: u64,
    #[arg(long, default_value_t = 300)]
    pub merchants: usize,
    #[arg(long, default_value_t = 5000)]
    pub txns: usize,
    /// Business date of the generated day.
    #[arg(long, value_parser = parse_date, default_value = "2026-11-20")]
    pub date: NaiveDate,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    s.parse()
}

fn parse_cut(s: &str) -> Result<Cut, String> {
    s.parse()
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?} is not a YYYY-MM-DD date"))
}

impl Cli {
    /// What the global options say, for the application to validate.
    pub fn config_input(&self) -> ConfigInput {
        ConfigInput {
            data_dir: self.data_dir.clone(),
            kafka: self.kafka.clone(),
            topic_prefix: self.topic_prefix.clone(),
            partitions: self.partitions,
            kafka_timeout_secs: self.kafka_timeout_secs,
            kafka_transactions: self.kafka_transactions == Switch::On,
            snapshots: Snapshots {
                every: self.snapshot_every,
                keep: self.snapshot_keep,
            },
        }
    }
}
