//! `clearing bench --serve`: the operators' service under load. A ledger
//! of the generated day (`--txns`) is built, `clearing serve` is started
//! on it as its own process, and this process drives its API on loopback:
//! `--clients` threads each asking, for `--serve-secs` per route, the
//! day's settlement report, a transaction's story and a merchant's
//! statement; then the next day's transactions (`--post-txns`) are posted
//! in bodies of `--post-lines` lines, one after the other, while the
//! service keeps following its log. Latencies are per request, measured
//! here (client side, connection kept alive).

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clearing_app::{Config, ReadLedger};
use serde::Serialize;

use super::{describe, global_args, stage_config, timed_ingest, BenchArgs, Input};
use crate::render::{self, Format};

#[derive(Serialize)]
struct ServeFigures {
    log: String,
    txns: u64,
    clients: usize,
    settlement: RouteFigures,
    story: RouteFigures,
    statement: RouteFigures,
    post_transactions: PostFigures,
}

#[derive(Serialize)]
struct RouteFigures {
    route: &'static str,
    requests: u64,
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Serialize)]
struct PostFigures {
    posts: u64,
    lines_per_post: usize,
    accepted: u64,
    duplicates: u64,
    /// Lines refused by the rules (e.g. a refund of a sale the day
    /// before the ledger's first), each a dead letter.
    rejected: u64,
    txn_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// The service as a child process, stopped with SIGTERM when dropped.
struct Service {
    child: std::process::Child,
    url: String,
    token: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

pub(super) fn run(
    cfg: &Config,
    args: &BenchArgs,
    input: &Input,
    out: &mut dyn Write,
) -> Result<()> {
    let stage = stage_config(cfg, &input.root.join("serve"), "serve")?;
    eprintln!("bench: building the ledger of {} transactions", input.lines);
    timed_ingest(&stage, input)?;
    drop(ReadLedger::open(&stage)?);
    let next = input.root.join("next-day");
    let params = crate::gen::Params {
        seed: input.seed,
        merchants: args.merchants.max(1),
        txns: args.post_txns,
        business_date: input.date.succ_opt().context("date")?,
        faults: false,
    };
    crate::gen::write_day(&params, &next)?;
    let (txn_ids, merchants) = sample_ids(&input.txn_file, 2000)?;
    let service = start(&stage, &input.root)?;
    let date = input.date.format("%Y-%m-%d").to_string();
    let secs = Duration::from_secs(args.serve_secs.max(1));
    let settlement = drive(
        &service,
        "/v1/settlement/{date}",
        args.clients,
        secs,
        |_| format!("/v1/settlement/{date}"),
    )?;
    let story = drive(&service, "/v1/txn/{id}", args.clients, secs, |i| {
        format!("/v1/txn/{}", txn_ids[i % txn_ids.len()])
    })?;
    let statement = drive(
        &service,
        "/v1/merchants/{id}/statement/{date}",
        args.clients,
        secs,
        |i| {
            format!(
                "/v1/merchants/{}/statement/{date}",
                merchants[i % merchants.len()]
            )
        },
    )?;
    let post_transactions = post(&service, &next.join("transactions.jsonl"), args.post_lines)?;
    let fig = ServeFigures {
        log: describe(&stage),
        txns: input.lines,
        clients: args.clients,
        settlement,
        story,
        statement,
        post_transactions,
    };
    match args.format {
        Format::Json => render::json(&fig, out),
        _ => table(&fig, out),
    }
}

/// Up to `n` txn_ids of the day's sales and their merchants, spread over
/// its file.
fn sample_ids(file: &Path, n: usize) -> Result<(Vec<String>, Vec<String>)> {
    let lines = std::io::BufReader::new(std::fs::File::open(file)?).lines();
    let (mut ids, mut merchants) = (Vec::new(), std::collections::BTreeSet::new());
    for (i, line) in lines.enumerate() {
        let line = line?;
        if i % 97 != 0 || ids.len() >= n {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        // the generator's plain sales (`P` + date): recorded, never faults
        let plain = |id: &&str| id.starts_with('P');
        if let (Some(id), Some(m)) = (
            v["txn_id"].as_str().filter(plain),
            v["merchant_id"].as_str(),
        ) {
            ids.push(id.to_string());
            merchants.insert(m.to_string());
        }
    }
    anyhow::ensure!(!ids.is_empty(), "no transactions to ask about");
    Ok((ids, merchants.into_iter().collect()))
}

/// Starts `clearing serve` on the stage's ledger with a token of its own.
fn start(stage: &Config, root: &Path) -> Result<Service> {
    let tokens = root.join("bench-tokens.toml");
    let _ = std::fs::remove_file(&tokens);
    let token = clearing_http::tokens::add(&tokens, "bench", clearing_http::Role::Admin)?;
    let exe = std::env::current_exe().context("finding the clearing binary")?;
    let mut child = Command::new(exe)
        .args(global_args(stage))
        .args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(&tokens)
        .args(["--requests-per-minute", "4000000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting clearing serve")?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("serve's stdout")?).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("clearing serve: listening on ")
        .with_context(|| format!("clearing serve said {line:?}"))?
        .to_string();
    Ok(Service { child, url, token })
}

/// `clients` threads asking `path(i)` for `secs`; every answer must be 200.
fn drive(
    s: &Service,
    route: &'static str,
    clients: usize,
    secs: Duration,
    path: impl Fn(usize) -> String + Sync,
) -> Result<RouteFigures> {
    eprintln!("bench: {route}, {clients} clients for {} s", secs.as_secs());
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| -> Result<Vec<Duration>> {
        let workers: Vec<_> = (0..clients.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<Vec<Duration>> {
                    let agent = ureq::AgentBuilder::new().build();
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let p = path(next.fetch_add(1, Ordering::Relaxed));
                        let t = Instant::now();
                        let resp = agent
                            .get(&format!("{}{p}", s.url))
                            .set("Authorization", &format!("Bearer {}", s.token))
                            .call()
                            .with_context(|| format!("GET {p}"))?;
                        resp.into_string()?;
                        seen.push(t.elapsed());
                    }
                    Ok(seen)
                })
            })
            .collect();
        std::thread::sleep(secs);
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.join().expect("a load thread panicked")?);
        }
        Ok(all)
    })?;
    let wall = started.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(latencies.clone());
    Ok(RouteFigures {
        route,
        requests: latencies.len() as u64,
        requests_per_s: super::rate(latencies.len() as u64, wall),
        p50_ms: p50,
        p99_ms: p99,
    })
}

/// Posts the file in bodies of `lines` lines, one after the other.
fn post(s: &Service, file: &Path, lines: usize) -> Result<PostFigures> {
    let text = std::fs::read_to_string(file)?;
    let all: Vec<&str> = text.lines().collect();
    eprintln!(
        "bench: POST /v1/transactions, {} lines in bodies of {lines}",
        all.len()
    );
    let agent = ureq::AgentBuilder::new().build();
    let mut latencies = Vec::new();
    let (mut accepted, mut duplicates, mut rejected) = (0, 0, 0);
    let started = Instant::now();
    for body in all.chunks(lines.max(1)) {
        let t = Instant::now();
        let resp = agent
            .post(&format!("{}/v1/transactions", s.url))
            .set("Authorization", &format!("Bearer {}", s.token))
            .send_string(&body.join("\n"))
            .context("POST /v1/transactions")?;
        let summary: serde_json::Value = serde_json::from_str(&resp.into_string()?)?;
        latencies.push(t.elapsed());
        accepted += summary["accepted"].as_u64().unwrap_or(0);
        duplicates += summary["duplicates"].as_u64().unwrap_or(0);
        rejected += summary["rejected"]
            .as_object()
            .map_or(0, |r| r.values().filter_map(|n| n.as_u64()).sum());
    }
    let wall = started.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(latencies.clone());
    Ok(PostFigures {
        posts: latencies.len() as u64,
        lines_per_post: lines,
        accepted,
        duplicates,
        rejected,
        txn_per_s: super::rate(all.len() as u64, wall),
        p50_ms: p50,
        p99_ms: p99,
    })
}

/// The median and the 99th percentile, in milliseconds (nearest rank).
fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort();
    let at = |q: f64| {
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        (v[i].as_secs_f64() * 1e5).round() / 100.0
    };
    (at(0.50), at(0.99))
}

fn table(f: &ServeFigures, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "service on {} — {} transactions, {} clients",
        f.log, f.txns, f.clients
    )?;
    for r in [&f.settlement, &f.story, &f.statement] {
        writeln!(
            out,
            "  GET {:<40} {:>8.1} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ({} requests)",
            r.route, r.requests_per_s, r.p50_ms, r.p99_ms, r.requests
        )?;
    }
    let p = &f.post_transactions;
    writeln!(
        out,
        "  POST /v1/transactions                      {:>8.0} txn/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ({} posts of {} lines, {} accepted)",
        p.txn_per_s, p.p50_ms, p.p99_ms, p.posts, p.lines_per_post, p.accepted
    )?;
    Ok(())
}
