//! `clearing bench`: the pipeline benchmark. It prints figures and asserts
//! nothing: speed on a shared 2-core machine is measured, not tested.
//!
//! Stages, each timed alone on the same generated day in one fresh data
//! dir: ingest (file → decide → embedded log, write model), project (log →
//! sled projections) and a decode-only pass over the same log (read and
//! decode every event, apply nothing: the floor any projector pays). Then
//! the pipelined run in a second fresh dir: ingest on one thread while the
//! projector follows on another, as `ingest` with `project --follow` runs.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use clearing_consumer::{decode_all, BATCH_EVENTS_MAX};
use clearing_log::embedded::EmbeddedLog;
use clearing_log::kafka::KafkaLog;
use clearing_log::{EventLog, Topic, TopicNames};
use clearing_producer::WriteModel;
use clearing_projector::Projector;
use serde::Serialize;

use crate::app::{ingest_path, load_reference, Config, Format};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Transactions to generate and push through the pipeline.
    #[arg(long, default_value_t = 100_000)]
    pub txns: usize,
    #[arg(long, default_value_t = 2000)]
    pub merchants: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Only ingest, the decode-only pass and the replay: for replay figures
    /// at sizes where the other stages would take too long.
    #[arg(long)]
    pub replay_only: bool,
    /// Where to put the bench's data dirs (default: a temporary directory).
    #[arg(long)]
    pub work_dir: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Serialize)]
struct Figures {
    /// `embedded`, or `kafka at BROKERS`.
    log: String,
    txns: u64,
    events: u64,
    ingest_s: f64,
    project_s: f64,
    decode_only_s: f64,
    pipelined_s: f64,
    /// Input lines over ingest + project, run one after the other (as
    /// `clearing ingest` followed by a read command runs them).
    end_to_end_txn_per_s: f64,
    /// Input lines over the wall time of ingest with the projector
    /// following on another thread.
    pipelined_end_to_end_txn_per_s: f64,
    ingest_txn_per_s: f64,
    project_txn_per_s: f64,
    decode_only_txn_per_s: f64,
    projector_ratio_to_decode: f64,
    /// Lines of the day's channel file (SPEC §8 CSV, breaks injected).
    recon_lines: u64,
    /// Reading and validating the file, nothing else.
    parse_only_lines_per_s: f64,
    /// The whole run: ledger side, matching, recording the result.
    recon_lines_per_s: f64,
    recon_ratio_to_parse: f64,
    /// Of the recon's time: loading the date's ledger side from sled.
    recon_ledger_side_s: f64,
    recon_s: f64,
    /// `clearing replay --until end` of the stage's log into a fresh dir,
    /// run as its own process: events over its wall time, digest included.
    replay_events_per_s: f64,
    replay_s: f64,
    /// Peak resident memory of the replay process.
    replay_peak_rss_mib: f64,
    /// Replay rate ÷ decode-only rate (events/s), same run.
    replay_ratio_to_decode: f64,
    /// Kafka only: a bare rdkafka consumer reading the same topic, start to
    /// end, in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_consume_msg_per_s: Option<f64>,
    /// Kafka only: projection rate ÷ raw consume rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_ratio_to_raw_consume: Option<f64>,
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        (n as f64 / secs).round()
    } else {
        0.0
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// The log a stage runs on: a fresh embedded log in the stage's data dir,
/// or fresh topics (a prefix of this run's own) on the configured broker.
trait BenchLog: EventLog + Send + Sync + Sized + 'static {
    fn open_fresh(cfg: &Config, dir: &Path, stage: &str) -> Result<Self>;
    /// The global options that make `clearing` use this log.
    fn global_args(&self, dir: &Path) -> Vec<String>;
    /// (messages, seconds) of the bare-consumer baseline, when there is one.
    fn raw_consume(&self) -> Result<Option<(u64, f64)>>;
}

impl BenchLog for EmbeddedLog {
    fn open_fresh(cfg: &Config, dir: &Path, _stage: &str) -> Result<Self> {
        crate::app::open_embedded(&Config {
            data_dir: dir.to_path_buf(),
            topics: cfg.topics.clone(),
            kafka: None,
        })
    }

    fn global_args(&self, dir: &Path) -> Vec<String> {
        vec!["--data-dir".into(), dir.display().to_string()]
    }

    fn raw_consume(&self) -> Result<Option<(u64, f64)>> {
        Ok(None)
    }
}

impl BenchLog for KafkaLog {
    fn open_fresh(cfg: &Config, _dir: &Path, stage: &str) -> Result<Self> {
        let mut k = cfg.kafka.clone().context("no --kafka")?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        k.topics = TopicNames::with_prefix(&format!(
            "{}-bench-{}-{stage}",
            cfg.topics.prefix(),
            nanos % 1_000_000_000_000
        ));
        eprintln!("bench: stage {stage} on topic {}", k.topics.events);
        KafkaLog::open(k).context("opening the log")
    }

    fn global_args(&self, dir: &Path) -> Vec<String> {
        let k = self.settings();
        vec![
            "--data-dir".into(),
            dir.display().to_string(),
            "--kafka".into(),
            k.brokers.clone(),
            "--topic-prefix".into(),
            k.topics.prefix().to_string(),
            "--partitions".into(),
            k.partitions.to_string(),
        ]
    }

    fn raw_consume(&self) -> Result<Option<(u64, f64)>> {
        let t = Instant::now();
        let (messages, _bytes) = KafkaLog::raw_consume(self, Topic::Events)?;
        Ok(Some((messages, t.elapsed().as_secs_f64())))
    }
}

fn prepare<L: BenchLog>(
    cfg: &Config,
    dir: &Path,
    stage: &str,
    input: &Path,
) -> Result<(L, WriteModel)> {
    std::fs::create_dir_all(dir)?;
    let log = L::open_fresh(cfg, dir, stage)?;
    let mut wm = WriteModel::open(dir)?;
    load_reference(&log, &mut wm, input)?;
    Ok((log, wm))
}

pub fn run(cfg: &Config, args: BenchArgs, out: &mut impl Write) -> Result<()> {
    match cfg.kafka {
        Some(_) => run_on::<KafkaLog>(cfg, args, out),
        None => run_on::<EmbeddedLog>(cfg, args, out),
    }
}

fn run_on<L: BenchLog>(cfg: &Config, args: BenchArgs, out: &mut impl Write) -> Result<()> {
    let temp;
    let root = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("clearing-bench-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let input = root.join("input");
    let params = crate::gen::Params {
        seed: args.seed,
        merchants: args.merchants.max(1),
        txns: args.txns,
        business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
        faults: true,
    };
    eprintln!("bench: generating {} transactions", args.txns);
    let day = crate::gen::write_day(&params, &input)?;
    let txn_file = input.join("transactions.jsonl").display().to_string();

    // Stages one after the other, in data dir A.
    let dir_a = root.join("a");
    let (log, mut wm) = prepare::<L>(cfg, &dir_a, "a", &input)?;
    eprintln!("bench: ingest");
    let t = Instant::now();
    ingest_path(&log, &mut wm, &txn_file)?;
    let ingest_s = t.elapsed().as_secs_f64();
    drop(wm);

    if args.replay_only {
        return replay_only(log, &dir_a, &root, day.lines, ingest_s, args.format, out);
    }

    eprintln!("bench: project");
    let mut p = Projector::open(&dir_a)?;
    let t = Instant::now();
    let stats = p.catch_up(&log, |_| {}).context("projecting")?;
    p.flush()?;
    let project_s = t.elapsed().as_secs_f64();
    drop(p);

    let (decoded, decode_only_s) = decode_only(&log)?;

    let raw = log.raw_consume()?;
    if let Some((messages, _)) = raw {
        anyhow::ensure!(
            messages == stats.events,
            "the raw consumer read {messages} messages, the projector {} events",
            stats.events
        );
    }
    eprintln!("bench: reconciliation of the day's channel file");
    let recon = bench_recon(&log, &dir_a, &input, params.business_date, args.seed)?;

    let described = log.describe();
    let replay_args = log.global_args(&dir_a);
    // Everything on the log by now: the projected events and what the
    // reconciliation recorded.
    let log_end: Option<u64> = log
        .end_offsets(Topic::Events)?
        .map(|ends| ends.values().sum());
    // The embedded log is locked while open: the replay opens it itself.
    drop(log);
    let replay = replay_child(replay_args, &root.join("replay"))?;
    if let Some(end) = log_end {
        anyhow::ensure!(
            replay.events == end,
            "the replay applied {} events, the log holds {end}",
            replay.events
        );
    }

    // Pipelined, in data dir B.
    eprintln!("bench: pipelined ingest with the projector following");
    let dir_b = root.join("b");
    let (log_b, mut wm_b) = prepare::<L>(cfg, &dir_b, "b", &input)?;
    let log_b = Arc::new(log_b);
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let log = log_b.clone();
        let done = done.clone();
        let dir = dir_b.clone();
        std::thread::spawn(move || -> Result<u64> {
            let mut p = Projector::open(&dir)?;
            let mut events = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let s = p.catch_up(&*log, |_| {}).context("projecting")?;
                events += s.events;
                if finished {
                    p.flush()?;
                    return Ok(events);
                }
                if s.events == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let t = Instant::now();
    let ingest_result = ingest_path(&*log_b, &mut wm_b, &txn_file);
    done.store(true, Ordering::SeqCst);
    let followed = follower
        .join()
        .map_err(|_| anyhow::anyhow!("projector thread panicked"))??;
    let pipelined_s = t.elapsed().as_secs_f64();
    ingest_result?;

    let lines = day.lines;
    let events = stats.events;
    let project_rate = rate(events, project_s);
    let decode_rate = rate(decoded, decode_only_s);
    let raw_rate = raw.map(|(messages, secs)| rate(messages, secs));
    let fig = Figures {
        log: if cfg.kafka.is_some() {
            described
        } else {
            "embedded".to_string()
        },
        txns: lines,
        events,
        ingest_s,
        project_s,
        decode_only_s,
        pipelined_s,
        end_to_end_txn_per_s: rate(lines, ingest_s + project_s),
        pipelined_end_to_end_txn_per_s: rate(lines, pipelined_s),
        ingest_txn_per_s: rate(lines, ingest_s),
        project_txn_per_s: project_rate,
        decode_only_txn_per_s: decode_rate,
        projector_ratio_to_decode: ratio(project_rate, decode_rate),
        recon_lines: recon.lines,
        recon_ledger_side_s: recon.ledger_side_s,
        recon_s: recon.recon_s,
        parse_only_lines_per_s: rate(recon.lines, recon.parse_s),
        recon_lines_per_s: rate(recon.lines, recon.recon_s),
        recon_ratio_to_parse: ratio(
            rate(recon.lines, recon.recon_s),
            rate(recon.lines, recon.parse_s),
        ),
        replay_events_per_s: rate(replay.events, replay.secs),
        replay_s: replay.secs,
        replay_peak_rss_mib: replay.peak_rss_mib,
        replay_ratio_to_decode: ratio(rate(replay.events, replay.secs), decode_rate),
        raw_consume_msg_per_s: raw_rate,
        kafka_ratio_to_raw_consume: raw_rate.map(|r| ratio(project_rate, r)),
    };
    anyhow::ensure!(
        followed >= events,
        "pipelined projector saw {followed} events, expected {events}"
    );
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&fig)?)?,
        _ => {
            writeln!(
                out,
                "clearing bench: {lines} input lines, {events} events ({})",
                fig.log
            )?;
            writeln!(
                out,
                "  ingest        {:>10.0} txn/s  ({:.2} s)",
                fig.ingest_txn_per_s, ingest_s
            )?;
            writeln!(
                out,
                "  project       {:>10.0} txn/s  ({:.2} s)",
                fig.project_txn_per_s, project_s
            )?;
            writeln!(
                out,
                "  decode-only   {:>10.0} txn/s  ({:.2} s)",
                fig.decode_only_txn_per_s, decode_only_s
            )?;
            writeln!(
                out,
                "  end to end    {:>10.0} txn/s  (ingest then project)",
                fig.end_to_end_txn_per_s
            )?;
            writeln!(
                out,
                "  pipelined     {:>10.0} txn/s  ({:.2} s, projector following)",
                fig.pipelined_end_to_end_txn_per_s, pipelined_s
            )?;
            writeln!(
                out,
                "  projector / decode-only = {:.3}",
                fig.projector_ratio_to_decode
            )?;
            writeln!(
                out,
                "  recon         {:>10.0} lines/s ({} lines; parse only {:.0} lines/s; ratio {:.3})",
                fig.recon_lines_per_s, fig.recon_lines, fig.parse_only_lines_per_s, fig.recon_ratio_to_parse
            )?;
            writeln!(
                out,
                "  replay        {:>10.0} events/s ({:.2} s, peak RSS {:.0} MiB; ratio to decode-only {:.3})",
                fig.replay_events_per_s, fig.replay_s, fig.replay_peak_rss_mib, fig.replay_ratio_to_decode
            )?;
            if let (Some(raw), Some(r)) =
                (fig.raw_consume_msg_per_s, fig.kafka_ratio_to_raw_consume)
            {
                writeln!(
                    out,
                    "  raw consume   {raw:>10.0} msg/s  (bare rdkafka consumer)"
                )?;
                writeln!(out, "  projector / raw consume = {r:.3}")?;
            }
        }
    }
    Ok(())
}

/// Reads and decodes every event of the log, applying nothing: the floor
/// any projector or replay pays. (events decoded, seconds)
fn decode_only<L: EventLog>(log: &L) -> Result<(u64, f64)> {
    eprintln!("bench: decode-only pass");
    let t = Instant::now();
    let mut decoded = 0u64;
    let partitions = log.partitions(Topic::Events)?;
    let mut next = std::collections::BTreeMap::new();
    loop {
        let records = log.read_all(Topic::Events, partitions, &next, BATCH_EVENTS_MAX * 8)?;
        if records.is_empty() {
            break;
        }
        for item in decode_all(records) {
            next.insert(item.position.partition, item.position.offset + 1);
            if item.event.is_ok() {
                decoded += 1;
            }
        }
    }
    Ok((decoded, t.elapsed().as_secs_f64()))
}

struct ReplayFigures {
    events: u64,
    secs: f64,
    peak_rss_mib: f64,
}

/// Runs `clearing replay --until end` (with the global options `args`) as
/// a child process, and measures its wall time and peak memory.
fn replay_child(args: Vec<String>, into: &Path) -> Result<ReplayFigures> {
    eprintln!("bench: replay into a fresh dir (own process)");
    let exe = std::env::current_exe().context("finding the clearing binary")?;
    let t = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(args)
        .args(["replay", "--until", "end", "--into"])
        .arg(into)
        .args(["--format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("running clearing replay")?;
    // The child's own peak (VmHWM of its process image), sampled while it
    // runs: getrusage's figure for children would count the pages of this
    // process, which the child shares until it execs.
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "clearing replay failed");
    let marker = crate::replay::marker(into)?.context("the replay left no marker")?;
    Ok(ReplayFigures {
        events: marker.events,
        secs,
        peak_rss_mib: (peak_kib as f64 / 1024.0 * 10.0).round() / 10.0,
    })
}

#[derive(Serialize)]
struct ReplayOnlyFigures {
    log: String,
    txns: u64,
    events: u64,
    ingest_s: f64,
    decode_only_s: f64,
    decode_only_events_per_s: f64,
    replay_s: f64,
    replay_events_per_s: f64,
    replay_peak_rss_mib: f64,
    replay_ratio_to_decode: f64,
}

fn replay_only<L: BenchLog>(
    log: L,
    dir: &Path,
    root: &Path,
    lines: u64,
    ingest_s: f64,
    format: Format,
    out: &mut impl Write,
) -> Result<()> {
    let (decoded, decode_only_s) = decode_only(&log)?;
    let described = log.describe();
    let args = log.global_args(dir);
    drop(log);
    let replay = replay_child(args, &root.join("replay"))?;
    let decode_rate = rate(decoded, decode_only_s);
    let replay_rate = rate(replay.events, replay.secs);
    let fig = ReplayOnlyFigures {
        log: described,
        txns: lines,
        events: replay.events,
        ingest_s,
        decode_only_s,
        decode_only_events_per_s: decode_rate,
        replay_s: replay.secs,
        replay_events_per_s: replay_rate,
        replay_peak_rss_mib: replay.peak_rss_mib,
        replay_ratio_to_decode: ratio(replay_rate, decode_rate),
    };
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&fig)?)?,
        _ => writeln!(
            out,
            "clearing bench --replay-only: {} events ({}); replay {:.0} events/s ({:.2} s, peak RSS {:.0} MiB); decode-only {:.0} events/s; ratio {:.3}",
            fig.events, fig.log, fig.replay_events_per_s, fig.replay_s, fig.replay_peak_rss_mib, fig.decode_only_events_per_s, fig.replay_ratio_to_decode
        )?,
    }
    Ok(())
}

struct ReconFigures {
    /// Reading the date's ledger side from the projection, alone.
    ledger_side_s: f64,
    lines: u64,
    parse_s: f64,
    recon_s: f64,
}

/// Writes the day's channel file from the ledger (breaks injected), then
/// times a parse-only pass over it and a whole reconciliation run.
fn bench_recon<L: EventLog>(
    log: &L,
    dir: &Path,
    input: &Path,
    date: chrono::NaiveDate,
    seed: u64,
) -> Result<ReconFigures> {
    let mut wm = WriteModel::open(dir)?;
    wm.catch_up(log).context("catching up the write model")?;
    let cutoff = wm.reference.cutoff().context("no fee schedule")?;
    let mut p = Projector::open(dir)?;
    p.catch_up(log, |_| {}).context("projecting")?;
    let t = Instant::now();
    let entries = p.recon_entries(date)?;
    let ledger = clearing_recon::ledger_side(entries, cutoff);
    let ledger_side_s = t.elapsed().as_secs_f64();
    let path = input.join(format!("channel-{date}.csv"));
    let (lines, _) = crate::gen::write_channel_file(&ledger, date, seed, true, &path)?;
    drop(ledger);

    let t = Instant::now();
    let mut reader = clearing_recon::reader::ChannelReader::new(
        "channel",
        std::fs::File::open(&path)?,
        clearing_recon::Layout::Csv,
        date,
    )?;
    let mut parsed = 0u64;
    while let Some(l) = reader.next_line()? {
        if let clearing_recon::reader::Parsed::Line(_) = l {
            parsed += 1;
        }
    }
    let parse_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(parsed == lines, "parsed {parsed} of {lines} lines");

    let t = Instant::now();
    let report = clearing_recon::reconcile(
        log,
        &mut wm,
        &p,
        "channel",
        std::fs::File::open(&path)?,
        clearing_recon::Layout::Csv,
        date,
        &crate::app::now(),
    )?;
    let recon_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.lines == lines && report.bad_lines == 0,
        "recon read {} lines",
        report.lines
    );
    Ok(ReconFigures {
        lines,
        parse_s,
        recon_s,
        ledger_side_s,
    })
}
