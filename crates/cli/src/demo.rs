//! `clearing demo`: the whole daily job on a generated, realistic day —
//! fee schedule, registry, ingest, projection, reports, and the
//! reconciliation of a generated channel file with injected breaks, the
//! resolution of one break of each kind, and the day's payout batch up to
//! the bank's answer.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clearing_app::core::settlement::{RiskReport, SettlementReport};
use clearing_app::payout::{BankResultView, PayoutView};
use clearing_app::resolve::{AdjustmentsView, ResolutionView, Resolve};
use clearing_app::views::{ProjectedView, ReconView};
use clearing_app::{
    Config, FeesLoaded, IngestSummary, ReadLedger, ReconReport, Recorder, RegistryLoaded,
};
use serde::Serialize;

use crate::args::DemoArgs;
use crate::commands::FileText;
use crate::gen::ChannelFaults;
use crate::render::{self, Format};

/// `clearing demo --format json`.
#[derive(Serialize)]
struct DemoReport {
    /// The data dir kept, when one was given.
    data_dir: Option<String>,
    seed: u64,
    input_lines: u64,
    fee_schedule_version: u32,
    registry: RegistryLoaded,
    ingest: IngestSummary,
    events_projected: u64,
    digest: String,
    settlement: SettlementReport,
    risk: RiskReport,
    channel_file: ChannelFile,
    recon: ReconView,
    resolutions: Vec<ResolutionView>,
    adjustments: AdjustmentsView,
    payout: PayoutView,
    bank_result: BankResultView,
}

#[derive(Serialize)]
struct ChannelFile {
    lines: u64,
    injected: ChannelFaults,
}

/// What the day's job did, for the table output.
struct Day {
    dir: PathBuf,
    input_lines: u64,
    fees: FeesLoaded,
    registry: RegistryLoaded,
    ingest: IngestSummary,
    projected: ProjectedView,
    digest: String,
    settlement: SettlementReport,
    risk: RiskReport,
    channel_path: PathBuf,
    channel_lines: u64,
    injected: ChannelFaults,
    recon: ReconReport,
    after: AfterRecon,
    elapsed_ms: u128,
}

/// The end of the day: breaks resolved, the payout batch prepared,
/// approved, exported and answered by the bank.
struct AfterRecon {
    resolutions: Vec<ResolutionView>,
    adjustments: AdjustmentsView,
    payout_file: PathBuf,
    bank_file: PathBuf,
    bank_result: BankResultView,
}

pub fn run(cfg: &Config, dir_given: bool, args: DemoArgs, out: &mut dyn Write) -> Result<()> {
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
    let day = run_day(&cfg.with_data_dir(&dir), &dir, &args)?;
    match args.format {
        Format::Json => render::json(
            &DemoReport {
                data_dir: dir_given.then(|| dir.display().to_string()),
                seed: args.seed,
                input_lines: day.input_lines,
                fee_schedule_version: day.fees.version,
                registry: day.registry,
                ingest: day.ingest,
                events_projected: day.projected.events_applied,
                digest: day.digest,
                settlement: day.settlement,
                risk: day.risk,
                channel_file: ChannelFile {
                    lines: day.channel_lines,
                    injected: day.injected,
                },
                recon: ReconView::of(&day.recon),
                resolutions: day.after.resolutions,
                adjustments: day.after.adjustments,
                payout: day.after.bank_result.batch.clone(),
                bank_result: day.after.bank_result,
            },
            out,
        ),
        Format::Table | Format::Csv => table(&day, &args, dir_given, out),
    }
}

/// The day's job in `dir`: generated input under `dir/input`.
fn run_day(cfg: &Config, dir: &Path, args: &DemoArgs) -> Result<Day> {
    let started = std::time::Instant::now();
    let input = dir.join("input");
    let params = crate::gen::Params {
        seed: args.seed,
        merchants: args.merchants.max(1),
        txns: args.txns,
        business_date: args.date,
        faults: true,
    };
    let generated = crate::gen::write_day(&params, &input)
        .with_context(|| format!("writing the generated day into {}", input.display()))?;
    let (fees, registry, ingest) = {
        let mut r = Recorder::open(cfg.live()?)?;
        let (fees, registry) = load_reference(&mut r, &input)?;
        let txns = input.join("transactions.jsonl");
        let f =
            std::fs::File::open(&txns).with_context(|| format!("opening {}", txns.display()))?;
        let name = txns.display().to_string();
        let ingest = r.ingest(&name, std::io::BufReader::new(f), |_| {})?;
        (fees, registry, ingest)
    };
    let projected = clearing_app::project(cfg.live()?)?;
    let (settlement, risk, ledger) = {
        let l = ReadLedger::open(cfg)?;
        (
            l.settlement(args.date)?,
            l.risk(args.date)?,
            l.recon_ledger_side(args.date)?,
        )
    };
    // The channel's clearing file for the day, with breaks injected.
    let channel_path = input.join(format!("channel-{}.csv", args.date));
    let (channel_lines, injected) =
        crate::gen::write_channel_file(&ledger, args.date, args.seed, true, &channel_path)
            .with_context(|| format!("writing {}", channel_path.display()))?;
    let recon = crate::commands::recon_file(
        cfg,
        &channel_path,
        args.date,
        clearing_app::Layout::Csv,
        false,
    )?;
    let after = after_recon(cfg, &input, &recon, &settlement)?;
    let digest = ReadLedger::open(cfg)?.digest()?.digest;
    Ok(Day {
        dir: dir.to_path_buf(),
        input_lines: generated.lines,
        fees,
        registry,
        ingest,
        projected,
        digest,
        settlement,
        risk,
        channel_path,
        channel_lines,
        injected,
        recon,
        after,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

/// Operators of the demo's day: who resolves, prepares and approves.
const RECONCILER: &str = "li.wei";
const PREPARER: &str = "zhang.min";
const APPROVER: &str = "wang.fang";

/// Resolves the first break of each category (the ledger stands on a
/// duplicate, the channel on the rest), then pays the day out: the batch
/// of the day's latest payout date, prepared, approved, exported, and a
/// bank file with the first line failed.
fn after_recon(
    cfg: &Config,
    input: &Path,
    recon: &ReconReport,
    settlement: &SettlementReport,
) -> Result<AfterRecon> {
    use clearing_app::core::recon::Category;
    use clearing_app::core::resolution::Decision;
    let mut r = Recorder::open(cfg.live()?)?;
    let mut resolutions = Vec::new();
    for category in Category::ALL.into_iter().filter(|c| c.is_break()) {
        let Some(b) = recon.breaks.iter().find(|b| b.category == category) else {
            continue;
        };
        let (decision, remark) = if category == Category::DuplicateInChannel {
            (
                Decision::Ledger,
                "以平台为准: the channel sent the line twice",
            )
        } else {
            (
                Decision::Channel,
                "以渠道为准: the channel's figures are confirmed",
            )
        };
        resolutions.push(r.resolve_break(&Resolve {
            date: recon.business_date,
            key: b.key.clone(),
            decision,
            operator: RECONCILER,
            remark,
        })?);
    }
    let payout_date = settlement
        .merchants
        .iter()
        .map(|m| m.payout_date)
        .max()
        .unwrap_or(recon.business_date);
    r.prepare_payout(payout_date, PREPARER)?;
    r.approve_payout(payout_date, APPROVER)?;
    let payout_file = input.join(format!("payout-{payout_date}.csv"));
    let mut exported = String::new();
    r.export_payout(payout_date, Some(PREPARER), |csv| {
        exported = csv.to_string();
        std::fs::write(&payout_file, csv)
    })?;
    let bank_file = input.join(format!("bank-{payout_date}.csv"));
    let bank = bank_answer(&exported);
    std::fs::write(&bank_file, &bank)
        .with_context(|| format!("writing {}", bank_file.display()))?;
    let bank_result = r.record_bank_result(
        payout_date,
        clearing_app::Named {
            name: &bank_file.display().to_string(),
            text: &bank,
        },
        Some(PREPARER),
    )?;
    drop(r);
    let adjustments = ReadLedger::open(cfg)?.adjustments(recon.business_date)?;
    Ok(AfterRecon {
        resolutions,
        adjustments,
        payout_file,
        bank_file,
        bank_result,
    })
}

/// The bank's return file of a payout export: every line paid but the
/// first, which fails.
fn bank_answer(export: &str) -> String {
    let mut out = format!("{}\n", clearing_app::core::payout::BANK_HEADER);
    for (i, line) in export.lines().skip(1).enumerate() {
        // payout_date,payee_type,payee_id,name,account,amount — the name
        // may be quoted, so the amount is the last field
        let fields: Vec<&str> = line.splitn(4, ',').collect();
        let amount = line.rsplit(',').next().unwrap_or("");
        let (status, reason) = if i == 0 {
            ("failed", "account frozen")
        } else {
            ("paid", "")
        };
        out.push_str(&format!(
            "{},{},{amount},{status},{reason}\n",
            fields[1], fields[2]
        ));
    }
    out
}

/// Records the fee schedule, calendar and registry of a directory holding
/// `fees.toml`, `holidays.txt`, `merchants.jsonl` and `intermediaries.jsonl`.
pub fn load_reference(r: &mut Recorder, dir: &Path) -> Result<(FeesLoaded, RegistryLoaded)> {
    let fees = FileText::read(&dir.join("fees.toml"))?;
    let holidays = FileText::read(&dir.join("holidays.txt"))?;
    let merchants = FileText::read(&dir.join("merchants.jsonl"))?;
    let intermediaries = FileText::read(&dir.join("intermediaries.jsonl"))?;
    let fees = r.load_fees(fees.named(), Some(holidays.named()))?;
    let registry = r.load_registry(merchants.named(), Some(intermediaries.named()))?;
    Ok((fees, registry))
}

fn table(day: &Day, args: &DemoArgs, dir_given: bool, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "clearing demo — business date {} (seed {})",
        args.date, args.seed
    )?;
    writeln!(
        out,
        "registry: {} merchants, {} intermediaries; fee schedule v{}",
        day.registry.merchants_registered, day.registry.intermediaries_registered, day.fees.version
    )?;
    write!(out, "ingest of {} lines: ", day.input_lines)?;
    let counts_only = IngestSummary {
        first_rejects: Vec::new(),
        ..day.ingest.clone()
    };
    render::ingest_summary(&counts_only, Format::Table, out)?;
    writeln!(
        out,
        "projected {} events; whole job {} ms; projection digest {}",
        day.projected.events_applied, day.elapsed_ms, day.digest
    )?;
    writeln!(out)?;
    render::reports::settlement(&day.settlement, args.format, out)?;
    writeln!(out)?;
    render::reports::risk(&day.risk, args.format, out)?;
    writeln!(out)?;
    let i = &day.injected;
    writeln!(
        out,
        "channel file {} ({} lines): injected {} dropped, {} amount, {} fee, {} duplicated, {} unknown, {} cancelled reported; {} near-cutoff left for tomorrow",
        day.channel_path.display(),
        day.channel_lines,
        i.dropped,
        i.amount_changed,
        i.fee_changed,
        i.duplicated,
        i.unknown_added,
        i.cancelled_reported,
        i.near_cutoff_left_out
    )?;
    render::recon::recon(&day.recon, args.format, out)?;
    let a = &day.after;
    writeln!(out)?;
    for res in &a.resolutions {
        render::payout::resolution(res, Format::Table, out)?;
    }
    writeln!(out)?;
    render::payout::adjustments(&a.adjustments, args.format, out)?;
    writeln!(
        out,
        "\npayout file {}; bank return file {}",
        a.payout_file.display(),
        a.bank_file.display()
    )?;
    render::payout::bank_result(&a.bank_result, Format::Table, out)?;
    if dir_given {
        kept(day, args, out)?;
    }
    Ok(())
}

/// What to try next in a kept data dir.
fn kept(day: &Day, args: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    let dir = day.dir.display();
    writeln!(
        out,
        "\nledger kept in {dir}; try: clearing --data-dir {dir} report settlement --date {}",
        args.date
    )?;
    // a break the ledger holds a record of (not missing_in_ledger)
    if let Some(b) = day.recon.breaks.iter().find(|b| b.txn_id.is_some()) {
        writeln!(
            out,
            "a break's whole story: clearing --data-dir {dir} txn show {}",
            b.key.rrn
        )?;
    }
    Ok(())
}
