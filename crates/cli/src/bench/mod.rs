//! `clearing bench`: the pipeline benchmark. It prints figures and asserts
//! nothing: speed on a shared 2-core machine is measured, not tested.
//!
//! Stages, each timed alone on the same generated day in one fresh data
//! dir: ingest (file → decide → embedded log, write model), project (log →
//! sled projections) and a decode-only pass over the same log (read and
//! decode every event, apply nothing: the floor any projector pays). Then
//! the pipelined run in a second fresh dir: ingest on one thread while the
//! projector follows on another, as `ingest` with `project --follow` runs.
//! On Kafka each stage uses fresh topics, `raw` is the bare-consumer
//! baseline the projection is compared with, and ingest runs twice more:
//! without Kafka transactions and on the embedded log, for the cost of
//! each.

mod raw;
mod serve;
mod snapshots;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use clearing_app::log::{Topic, TopicNames};
use clearing_app::{measure, Config, ReadLedger, Recorder};
use serde::Serialize;

use crate::render::{self, Format};

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
    /// The operators' service under load instead of the pipeline stages:
    /// `clearing serve` on a ledger of `--txns`, driven on loopback.
    #[arg(long)]
    pub serve: bool,
    /// With `--serve`: seconds of load per read route.
    #[arg(long, default_value_t = 10)]
    pub serve_secs: u64,
    /// With `--serve`: concurrent clients per read route.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// With `--serve`: transactions of the next day posted to the service.
    #[arg(long, default_value_t = 100_000)]
    pub post_txns: usize,
    /// With `--serve`: lines per `POST /v1/transactions` body.
    #[arg(long, default_value_t = 1000)]
    pub post_lines: usize,
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
    /// Opening the recorder first (its write model), not in `recon_s`.
    recon_open_s: f64,
    recon_s: f64,
    /// `clearing replay --until end --from-scratch` of the stage's log into
    /// a fresh dir, run as its own process: events over its wall time,
    /// digest included.
    replay_events_per_s: f64,
    replay_s: f64,
    /// Peak resident memory of the replay process.
    replay_peak_rss_mib: f64,
    replay_peak_rss_bytes: u64,
    /// Replay rate ÷ decode-only rate (events/s), same run.
    replay_ratio_to_decode: f64,
    #[serde(flatten)]
    snapshots: snapshots::SnapshotFigures,
    /// Kafka only: a bare rdkafka consumer reading the same topic, start to
    /// end, in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_consume_msg_per_s: Option<f64>,
    /// Kafka only: projection rate ÷ raw consume rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_ratio_to_raw_consume: Option<f64>,
    /// Kafka only: ingest with `--kafka-transactions off`, same run (the
    /// figures above are with transactions, the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    ingest_without_transactions_txn_per_s: Option<f64>,
    /// Kafka only: ingest with transactions ÷ without.
    #[serde(skip_serializing_if = "Option::is_none")]
    transactions_ratio: Option<f64>,
    /// Kafka only: the same ingest on the embedded log, same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    embedded_ingest_txn_per_s: Option<f64>,
    /// Kafka only: ingest on Kafka ÷ ingest on the embedded log.
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_ingest_ratio_to_embedded: Option<f64>,
}

/// On Kafka, the ingest stage again without transactions and on the
/// embedded log: (seconds without transactions, seconds embedded).
fn ingest_baselines(cfg: &Config, input: &Input) -> Result<Option<(f64, f64)>> {
    let Some(k) = &cfg.kafka else {
        return Ok(None);
    };
    let mut plain = stage_config(cfg, &input.root.join("c"), "c")?;
    if let Some(k) = &mut plain.kafka {
        k.transactions = false;
    }
    eprintln!("bench: ingest on {} without transactions", k.brokers);
    let without = timed_ingest(&plain, input)?;
    let embedded = Config {
        kafka: None,
        ..cfg.with_data_dir(&input.root.join("e"))
    };
    std::fs::create_dir_all(&embedded.data_dir)?;
    eprintln!("bench: ingest on the embedded log");
    let on_embedded = timed_ingest(&embedded, input)?;
    Ok(Some((without, on_embedded)))
}

/// Seconds to ingest the day's file into a fresh ledger with its
/// reference data.
fn timed_ingest(cfg: &Config, input: &Input) -> Result<f64> {
    let mut r = prepare(cfg, &input.dir)?;
    let t = Instant::now();
    ingest_file(&mut r, &input.txn_file)?;
    Ok(t.elapsed().as_secs_f64())
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

/// The configuration of a stage: a fresh data dir, and on Kafka fresh
/// topics of this run's own.
fn stage_config(cfg: &Config, dir: &Path, stage: &str) -> Result<Config> {
    std::fs::create_dir_all(dir)?;
    let mut c = cfg.with_data_dir(dir);
    if let Some(k) = &mut c.kafka {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let topics = TopicNames::with_prefix(&format!(
            "{}-bench-{}-{stage}",
            cfg.topics.prefix(),
            nanos % 1_000_000_000_000
        ));
        eprintln!("bench: stage {stage} on topic {}", topics.events);
        k.topics = topics.clone();
        c.topics = topics;
    }
    Ok(c)
}

/// The global options that make `clearing` use a stage's ledger.
fn global_args(cfg: &Config) -> Vec<String> {
    let mut args = vec!["--data-dir".into(), cfg.data_dir.display().to_string()];
    if let Some(k) = &cfg.kafka {
        args.extend([
            "--kafka".into(),
            k.brokers.clone(),
            "--topic-prefix".into(),
            cfg.topics.prefix().to_string(),
            "--partitions".into(),
            k.partitions.to_string(),
        ]);
    }
    args
}

/// A recorder on a stage's fresh ledger with the day's reference data.
fn prepare(cfg: &Config, input: &Path) -> Result<Recorder> {
    let mut r = Recorder::open(cfg.live()?)?;
    crate::demo::load_reference(&mut r, input)?;
    Ok(r)
}

fn ingest_file(r: &mut Recorder, txn_file: &Path) -> Result<()> {
    let name = txn_file.display().to_string();
    let f = std::fs::File::open(txn_file).with_context(|| format!("opening {name}"))?;
    r.ingest(&name, std::io::BufReader::with_capacity(1 << 20, f), |_| {})?;
    Ok(())
}

/// The generated day: where its files are and how many lines it has.
struct Input {
    root: PathBuf,
    dir: PathBuf,
    txn_file: PathBuf,
    lines: u64,
    date: chrono::NaiveDate,
    seed: u64,
}

pub fn run(cfg: &Config, args: BenchArgs, out: &mut dyn Write) -> Result<()> {
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
    let dir = root.join("input");
    let params = crate::gen::Params {
        seed: args.seed,
        merchants: args.merchants.max(1),
        txns: args.txns,
        business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
        faults: true,
    };
    eprintln!("bench: generating {} transactions", args.txns);
    let day = crate::gen::write_day(&params, &dir)?;
    let input = Input {
        root: root.clone(),
        txn_file: dir.join("transactions.jsonl"),
        dir,
        lines: day.lines,
        date: params.business_date,
        seed: args.seed,
    };
    if args.replay_only {
        return replay_only(cfg, &input, args.format, out);
    }
    if args.serve {
        return serve::run(cfg, &args, &input, out);
    }
    let fig = stages(cfg, &input)?;
    match args.format {
        Format::Json => render::json(&fig, out),
        _ => table(&fig, out),
    }
}

/// Every stage, one after the other in data dir A, then the pipelined run
/// in data dir B.
fn stages(cfg: &Config, input: &Input) -> Result<Figures> {
    let cfg_a = stage_config(cfg, &input.root.join("a"), "a")?;
    eprintln!("bench: ingest");
    let ingest_s = timed_ingest(&cfg_a, input)?;
    eprintln!("bench: project");
    let t = Instant::now();
    let projected = clearing_app::project(cfg_a.live()?)?;
    let project_s = t.elapsed().as_secs_f64();
    let events = projected.events_applied;
    let (decoded, decode_only_s) = decode_only(&cfg_a)?;
    let raw = raw_consume(&cfg_a)?;
    if let Some((messages, _)) = raw {
        anyhow::ensure!(
            messages == events,
            "the raw consumer read {messages} messages, the projector {events} events"
        );
    }
    eprintln!("bench: reconciliation of the day's channel file");
    let recon = bench_recon(&cfg_a, input)?;
    let replay = replay_of(&cfg_a, &input.root.join("replay"))?;
    let snapshot_figures = snapshots::figures(&cfg_a, &input.root)?;
    eprintln!("bench: pipelined ingest with the projector following");
    let cfg_b = stage_config(cfg, &input.root.join("b"), "b")?;
    let (followed, pipelined_s) = pipelined(&cfg_b, input, events)?;
    anyhow::ensure!(
        followed >= events,
        "pipelined projector saw {followed} events, expected {events}"
    );
    let baselines = ingest_baselines(cfg, input)?;
    let lines = input.lines;
    let ingest_rate = rate(lines, ingest_s);
    let without = baselines.map(|(w, _)| rate(lines, w));
    let embedded_ingest = baselines.map(|(_, e)| rate(lines, e));
    let project_rate = rate(events, project_s);
    let decode_rate = rate(decoded, decode_only_s);
    let raw_rate = raw.map(|(messages, secs)| rate(messages, secs));
    Ok(Figures {
        log: match &cfg.kafka {
            Some(k) => format!("kafka at {}", k.brokers),
            None => "embedded".to_string(),
        },
        txns: lines,
        events,
        ingest_s,
        project_s,
        decode_only_s,
        pipelined_s,
        end_to_end_txn_per_s: rate(lines, ingest_s + project_s),
        pipelined_end_to_end_txn_per_s: rate(lines, pipelined_s),
        ingest_txn_per_s: ingest_rate,
        project_txn_per_s: project_rate,
        decode_only_txn_per_s: decode_rate,
        projector_ratio_to_decode: ratio(project_rate, decode_rate),
        recon_lines: recon.lines,
        recon_ledger_side_s: recon.ledger_side_s,
        recon_open_s: recon.open_s,
        recon_s: recon.recon_s,
        parse_only_lines_per_s: rate(recon.lines, recon.parse_s),
        recon_lines_per_s: rate(recon.lines, recon.recon_s),
        recon_ratio_to_parse: ratio(
            rate(recon.lines, recon.recon_s),
            rate(recon.lines, recon.parse_s),
        ),
        replay_events_per_s: rate(replay.events, replay.secs),
        replay_s: replay.secs,
        replay_peak_rss_mib: replay.peak_rss_mib(),
        replay_peak_rss_bytes: replay.peak_rss_bytes,
        replay_ratio_to_decode: ratio(rate(replay.events, replay.secs), decode_rate),
        snapshots: snapshot_figures,
        raw_consume_msg_per_s: raw_rate,
        kafka_ratio_to_raw_consume: raw_rate.map(|r| ratio(project_rate, r)),
        ingest_without_transactions_txn_per_s: without,
        transactions_ratio: without.map(|w| ratio(ingest_rate, w)),
        embedded_ingest_txn_per_s: embedded_ingest,
        kafka_ingest_ratio_to_embedded: embedded_ingest.map(|e| ratio(ingest_rate, e)),
    })
}

/// Reads and decodes every event of a stage's log, applying nothing.
/// (events decoded, seconds)
fn decode_only(cfg: &Config) -> Result<(u64, f64)> {
    eprintln!("bench: decode-only pass");
    let log = clearing_app::config::open_log(cfg)?;
    let t = Instant::now();
    let decoded = measure::decode_only(&*log)?;
    Ok((decoded, t.elapsed().as_secs_f64()))
}

/// On Kafka, (messages, seconds) of the bare-consumer baseline.
fn raw_consume(cfg: &Config) -> Result<Option<(u64, f64)>> {
    let Some(k) = &cfg.kafka else {
        return Ok(None);
    };
    let t = Instant::now();
    let (messages, _bytes) = raw::raw_consume(k, &k.topics.events, k.partitions)?;
    Ok(Some((messages, t.elapsed().as_secs_f64())))
}

/// Replays a stage's log in a child process and checks it applied every
/// event the log holds.
fn replay_of(cfg: &Config, into: &Path) -> Result<ReplayFigures> {
    // Everything on the log by now: the projected events and what the
    // reconciliation recorded. (The embedded log is locked while open:
    // the replay opens it itself.)
    let log_end: Option<u64> = {
        let log = clearing_app::config::open_log(cfg)?;
        log.end_offsets(Topic::Events)?.map(|ends| ends.total())
    };
    let replay = replay_child(global_args(cfg), into, "end", true)?;
    if let Some(end) = log_end {
        anyhow::ensure!(
            replay.events == end,
            "the replay applied {} events, the log holds {end}",
            replay.events
        );
    }
    Ok(replay)
}

/// Ingests the day into `cfg`'s fresh dir with a projector following it
/// on another thread, until that has applied the `events` the same day
/// gave in stage A; returns the events it applied and the time taken.
fn pipelined(cfg: &Config, input: &Input, events: u64) -> Result<(u64, f64)> {
    let mut r = prepare(cfg, &input.dir)?;
    let log = r.log().clone();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let follower = scope.spawn(|| measure::follow_in_process(cfg, &*log, &done, events));
        let t = Instant::now();
        let ingested = ingest_file(&mut r, &input.txn_file);
        done.store(true, Ordering::SeqCst);
        let followed = follower
            .join()
            .map_err(|_| anyhow::anyhow!("projector thread panicked"))??;
        let secs = t.elapsed().as_secs_f64();
        ingested?;
        Ok((followed, secs))
    })
}

fn table(fig: &Figures, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "clearing bench: {} input lines, {} events ({})",
        fig.txns, fig.events, fig.log
    )?;
    writeln!(
        out,
        "  ingest        {:>10.0} txn/s  ({:.2} s)",
        fig.ingest_txn_per_s, fig.ingest_s
    )?;
    writeln!(
        out,
        "  project       {:>10.0} txn/s  ({:.2} s)",
        fig.project_txn_per_s, fig.project_s
    )?;
    writeln!(
        out,
        "  decode-only   {:>10.0} txn/s  ({:.2} s)",
        fig.decode_only_txn_per_s, fig.decode_only_s
    )?;
    writeln!(
        out,
        "  end to end    {:>10.0} txn/s  (ingest then project)",
        fig.end_to_end_txn_per_s
    )?;
    writeln!(
        out,
        "  pipelined     {:>10.0} txn/s  ({:.2} s, projector following)",
        fig.pipelined_end_to_end_txn_per_s, fig.pipelined_s
    )?;
    writeln!(
        out,
        "  projector / decode-only = {:.3}",
        fig.projector_ratio_to_decode
    )?;
    writeln!(
        out,
        "  recon         {:>10.0} lines/s ({} lines; parse only {:.0} lines/s; ratio {:.3}; opening the recorder first {:.2} s)",
        fig.recon_lines_per_s,
        fig.recon_lines,
        fig.parse_only_lines_per_s,
        fig.recon_ratio_to_parse,
        fig.recon_open_s
    )?;
    writeln!(
        out,
        "  replay        {:>10.0} events/s ({:.2} s, peak RSS {:.0} MiB; ratio to decode-only {:.3})",
        fig.replay_events_per_s, fig.replay_s, fig.replay_peak_rss_mib, fig.replay_ratio_to_decode
    )?;
    snapshot_lines(&fig.snapshots, out)?;
    if let (Some(raw), Some(r)) = (fig.raw_consume_msg_per_s, fig.kafka_ratio_to_raw_consume) {
        writeln!(
            out,
            "  raw consume   {raw:>10.0} msg/s  (bare rdkafka consumer)"
        )?;
        writeln!(out, "  projector / raw consume = {r:.3}")?;
    }
    if let (Some(w), Some(t)) = (
        fig.ingest_without_transactions_txn_per_s,
        fig.transactions_ratio,
    ) {
        writeln!(
            out,
            "  ingest w/o transactions {w:>10.0} txn/s (with / without = {t:.3})"
        )?;
    }
    if let (Some(e), Some(r)) = (
        fig.embedded_ingest_txn_per_s,
        fig.kafka_ingest_ratio_to_embedded,
    ) {
        writeln!(
            out,
            "  ingest on the embedded log {e:>10.0} txn/s (Kafka / embedded = {r:.3})"
        )?;
    }
    Ok(())
}

fn snapshot_lines(s: &snapshots::SnapshotFigures, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "  replay tail   {:.2} s to {} events before the end ({} events after the snapshot at {}; peak RSS {:.0} MiB)",
        s.replay_tail_s,
        s.replay_tail_cut_behind_end,
        s.replay_tail_events,
        s.replay_tail_from_snapshot_at
            .map_or("none".to_string(), |o| o.to_string()),
        s.replay_tail_peak_rss_bytes as f64 / (1 << 20) as f64
    )?;
    writeln!(
        out,
        "  snapshot      {:.2} s to write {:.1} MiB ({} keys; {:.1} MiB per million events); {} written while projecting (every {})",
        s.snapshot_write_s,
        s.snapshot_bytes as f64 / (1 << 20) as f64,
        s.snapshot_keys,
        s.snapshot_bytes_per_million_events as f64 / (1 << 20) as f64,
        s.snapshots_written,
        s.snapshot_every
    )?;
    Ok(())
}

pub(crate) struct ReplayFigures {
    events: u64,
    secs: f64,
    peak_rss_bytes: u64,
    /// Where the snapshot it started from stands, if it did.
    from_snapshot_at: Option<u64>,
}

/// Runs `clearing replay --until CUT` (with the global options `args`) as
/// a child process, and measures its wall time and peak memory.
pub(crate) fn replay_child(
    args: Vec<String>,
    into: &Path,
    until: &str,
    from_scratch: bool,
) -> Result<ReplayFigures> {
    eprintln!("bench: replay until {until} into a fresh dir (own process)");
    let exe = std::env::current_exe().context("finding the clearing binary")?;
    let t = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(args)
        .args(["replay", "--until", until, "--into"])
        .arg(into)
        .args(["--format", "json"])
        .args(from_scratch.then_some("--from-scratch"))
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
    let marker = clearing_app::replay::marker(into)?.context("the replay left no marker")?;
    Ok(ReplayFigures {
        events: marker.events,
        secs,
        peak_rss_bytes: peak_kib * 1024,
        from_snapshot_at: marker.from_snapshot.map(|s| s.log_position.total()),
    })
}

#[derive(Serialize)]
struct ReplayOnlyFigures {
    log: String,
    txns: u64,
    events: u64,
    ingest_s: f64,
    ingest_txn_per_s: f64,
    /// The live projector from the first event to the end, snapshots
    /// written on the way included.
    project_s: f64,
    decode_only_s: f64,
    decode_only_events_per_s: f64,
    replay_s: f64,
    replay_events_per_s: f64,
    replay_peak_rss_mib: f64,
    replay_peak_rss_bytes: u64,
    replay_ratio_to_decode: f64,
    #[serde(flatten)]
    snapshots: snapshots::SnapshotFigures,
}

fn replay_only(cfg: &Config, input: &Input, format: Format, out: &mut dyn Write) -> Result<()> {
    let cfg_a = stage_config(cfg, &input.root.join("a"), "a")?;
    eprintln!("bench: ingest");
    let ingest_s = timed_ingest(&cfg_a, input)?;
    eprintln!("bench: project");
    let t = Instant::now();
    clearing_app::project(cfg_a.live()?)?;
    let project_s = t.elapsed().as_secs_f64();
    let (decoded, decode_only_s) = decode_only(&cfg_a)?;
    let replay = replay_child(global_args(&cfg_a), &input.root.join("replay"), "end", true)?;
    let snapshot_figures = snapshots::figures(&cfg_a, &input.root)?;
    let decode_rate = rate(decoded, decode_only_s);
    let replay_rate = rate(replay.events, replay.secs);
    let fig = ReplayOnlyFigures {
        log: describe(&cfg_a),
        txns: input.lines,
        events: replay.events,
        ingest_s,
        ingest_txn_per_s: rate(input.lines, ingest_s),
        project_s,
        decode_only_s,
        decode_only_events_per_s: decode_rate,
        replay_s: replay.secs,
        replay_events_per_s: replay_rate,
        replay_peak_rss_mib: replay.peak_rss_mib(),
        replay_peak_rss_bytes: replay.peak_rss_bytes,
        replay_ratio_to_decode: ratio(replay_rate, decode_rate),
        snapshots: snapshot_figures,
    };
    match format {
        Format::Json => render::json(&fig, out),
        _ => {
            writeln!(
                out,
                "clearing bench --replay-only: {} events ({}); replay {:.0} events/s ({:.2} s, peak RSS {:.0} MiB); decode-only {:.0} events/s; ratio {:.3}",
                fig.events, fig.log, fig.replay_events_per_s, fig.replay_s, fig.replay_peak_rss_mib, fig.decode_only_events_per_s, fig.replay_ratio_to_decode
            )?;
            snapshot_lines(&fig.snapshots, out)
        }
    }
}

/// How the replay-only figures name the log.
fn describe(cfg: &Config) -> String {
    match &cfg.kafka {
        Some(k) => format!("kafka at {}", k.brokers),
        None => format!("embedded log at {}", cfg.data_dir.join("log").display()),
    }
}

struct ReconFigures {
    /// Reading the date's ledger side from the projection, alone.
    ledger_side_s: f64,
    lines: u64,
    parse_s: f64,
    recon_s: f64,
    /// Opening the recorder (the write model) before the run.
    open_s: f64,
}

/// Writes the day's channel file from the ledger (breaks injected), then
/// times a parse-only pass over it and a whole reconciliation run.
fn bench_recon(cfg: &Config, input: &Input) -> Result<ReconFigures> {
    let date = input.date;
    let (ledger, ledger_side_s) = {
        let l = ReadLedger::open(cfg)?;
        let t = Instant::now();
        let ledger = l.recon_ledger_side(date)?;
        (ledger, t.elapsed().as_secs_f64())
    };
    let path = input.dir.join(format!("channel-{date}.csv"));
    let (lines, _) = crate::gen::write_channel_file(&ledger, date, input.seed, true, &path)?;
    drop(ledger);

    let t = Instant::now();
    let parsed = measure::parse_only(&path, clearing_app::Layout::Csv, date)?;
    let parse_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(parsed == lines, "parsed {parsed} of {lines} lines");

    let t = Instant::now();
    let mut r = Recorder::open(cfg.live()?)?;
    let open_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let file = std::fs::File::open(&path)?;
    let report = r.reconcile("channel", file, clearing_app::Layout::Csv, date)?;
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
        open_s,
    })
}
