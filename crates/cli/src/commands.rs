//! One function per command: read the arguments' files, call the
//! application layer, render its typed result.

use std::fs;
use std::io::{BufReader, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clearing_app::{Config, Following, Named, ReadLedger, Recorder};

use crate::args::{
    Cli, Command, ExportCommand, FeesCommand, MerchantCommand, RegistryCommand, ReportCommand,
    TxnCommand,
};
use crate::render::{self, Format};

pub fn run(cli: Cli) -> Result<()> {
    let cfg = Config::new(&cli.config_input())?;
    let data_dir_given = cli.data_dir.is_some();
    let mut stdout = std::io::stdout().lock();
    let out: &mut dyn Write = &mut stdout;
    match cli.command {
        Command::Demo(args) => crate::demo::run(&cfg, data_dir_given, args, out),
        Command::Fees { command } => fees(&cfg, command, out),
        Command::Registry { command } => registry(&cfg, command, out),
        Command::Ingest { file, format } => ingest(&cfg, &file, format, out),
        Command::Project {
            follow,
            poll_interval_ms,
            format,
        } => project(&cfg, follow, poll_interval_ms, format, out),
        Command::Report { command } => report(&cfg, command, out),
        Command::Digest { format } => {
            let l = ReadLedger::open(&cfg)?;
            render::digest(&l.digest()?, format, out)
        }
        Command::Recon {
            command: Some(command),
            ..
        } => crate::payouts::resolve(&cfg, command, out),
        Command::Recon {
            command: None,
            file,
            date,
            layout,
            format,
        } => {
            let (Some(file), Some(date)) = (file, date) else {
                anyhow::bail!("recon needs --file and --date");
            };
            recon(&cfg, &file, date, layout.into(), format, out)
        }
        Command::Payout { command } => crate::payouts::payout(&cfg, command, out),
        Command::Serve {
            listen,
            tokens,
            body_limit_bytes,
            requests_per_minute,
            request_timeout_secs,
            poll_ms,
        } => {
            let tokens_read = clearing_http::Tokens::load(&tokens)?;
            let options = clearing_http::Options {
                listen,
                body_limit_bytes,
                requests_per_minute,
                request_timeout: Duration::from_secs(request_timeout_secs),
                poll: Duration::from_millis(poll_ms),
            };
            clearing_http::serve(cfg, tokens_read, options, |addr| {
                let _ = writeln!(out, "clearing serve: listening on http://{addr}");
                let _ = out.flush();
            })?;
            Ok(())
        }
        Command::Token {
            command: crate::args::TokenCommand::Add { tokens, name, role },
        } => {
            use crate::args::TokenRole;
            let role = match role {
                TokenRole::Viewer => clearing_http::Role::Viewer,
                TokenRole::Operator => clearing_http::Role::Operator,
                TokenRole::Approver => clearing_http::Role::Approver,
                TokenRole::Admin => clearing_http::Role::Admin,
            };
            let token = clearing_http::tokens::add(&tokens, &name, role)?;
            writeln!(out, "{token}")?;
            Ok(())
        }
        Command::Replay {
            until,
            into,
            leg_events,
            from_scratch,
            format,
        } => {
            let options = clearing_app::ReplayOptions {
                leg_events,
                from_scratch,
            };
            replay(&cfg, &until, &into, options, format, out)
        }
        Command::Txn {
            command: TxnCommand::Show { id, format },
        } => {
            let mut l = ReadLedger::open(&cfg)?;
            render::story::stories(&l.stories(&id)?, format, out)
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
            let l = ReadLedger::open(&cfg)?;
            let s = l.statement(&merchant_id, date, as_of.as_ref())?;
            render::statement::statement(&s, format, out)
        }
        Command::Export { command } => export(&cfg, command, out),
        Command::Verify { format } => {
            let report = clearing_app::verify(cfg.live()?)?;
            render::verify(&report, format, out)?;
            match report.failure() {
                None => Ok(()),
                Some(why) => anyhow::bail!("verify: {why}"),
            }
        }
        Command::Bench(args) => crate::bench::run(&cfg, args, out),
    }
}

fn read_file(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A file's text, named by its path.
pub struct FileText {
    name: String,
    text: String,
}

impl FileText {
    pub fn read(path: &Path) -> Result<FileText> {
        Ok(FileText {
            name: path.display().to_string(),
            text: read_file(path)?,
        })
    }

    pub fn named(&self) -> Named<'_> {
        Named {
            name: &self.name,
            text: &self.text,
        }
    }
}

fn fees(cfg: &Config, command: FeesCommand, out: &mut dyn Write) -> Result<()> {
    let FeesCommand::Load { file, holidays } = command;
    let fees = FileText::read(&file)?;
    let holidays = holidays.as_deref().map(FileText::read).transpose()?;
    let mut r = Recorder::open(cfg.live()?)?;
    let loaded = r.load_fees(fees.named(), holidays.as_ref().map(FileText::named))?;
    render::fees_loaded(&loaded, out)
}

fn registry(cfg: &Config, command: RegistryCommand, out: &mut dyn Write) -> Result<()> {
    let RegistryCommand::Load {
        merchants,
        intermediaries,
    } = command;
    let merchants = FileText::read(&merchants)?;
    let intermediaries = intermediaries.as_deref().map(FileText::read).transpose()?;
    let mut r = Recorder::open(cfg.live()?)?;
    let loaded = r.load_registry(
        merchants.named(),
        intermediaries.as_ref().map(FileText::named),
    )?;
    render::registry_loaded(&loaded, out)
}

fn ingest(cfg: &Config, file: &str, format: Format, out: &mut dyn Write) -> Result<()> {
    let live = cfg.live()?;
    let summary = if file == "-" {
        let stdin = std::io::stdin();
        Recorder::open(live)?.ingest_live("-", stdin.lock(), |_| {})?
    } else {
        let f = fs::File::open(file).with_context(|| format!("opening {file}"))?;
        let input = BufReader::with_capacity(1 << 20, f);
        Recorder::open(live)?.ingest(file, input, |_| {})?
    };
    render::ingest_summary(&summary, format, out)
}

fn project(
    cfg: &Config,
    follow: bool,
    poll_interval_ms: u64,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let live = cfg.live()?;
    if !follow {
        return render::projected(&clearing_app::project(live)?, format, out);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the signal handler")?;
    let poll = Duration::from_millis(poll_interval_ms.max(10));
    let applied = clearing_app::follow(live, &stop, poll, |f| {
        if let Following::Joined { topic, group } = f {
            eprintln!("clearing: following {topic} as consumer group {group}");
        }
    })?;
    eprintln!("clearing: stopped following after {applied} events");
    Ok(())
}

fn report(cfg: &Config, command: ReportCommand, out: &mut dyn Write) -> Result<()> {
    let l = ReadLedger::open(cfg)?;
    match command {
        ReportCommand::Settlement(a) => {
            render::reports::settlement(&l.settlement(a.date)?, a.format, out)
        }
        ReportCommand::Risk(a) => render::reports::risk(&l.risk(a.date)?, a.format, out),
        ReportCommand::Payout(a) => render::payout::batch(&l.payout(a.date)?, a.format, out),
        ReportCommand::Adjustments(a) => {
            render::payout::adjustments(&l.adjustments(a.date)?, a.format, out)
        }
    }
}

/// Files larger than this get a progress bar when stderr is a terminal.
const PROGRESS_BYTES_MIN: u64 = 512 * 1024;

fn recon(
    cfg: &Config,
    file: &Path,
    date: chrono::NaiveDate,
    layout: clearing_app::Layout,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let r = recon_file(cfg, file, date, layout, true)?;
    if format == Format::Json && r.bad_lines > 0 {
        for b in &r.bad {
            eprintln!(
                "clearing: {}: line {}: {} ({})",
                r.file, b.line, b.detail, b.field
            );
        }
    }
    render::recon::recon(&r, format, out)
}

/// Reconciles a file, with a progress bar on a terminal when asked.
pub fn recon_file(
    cfg: &Config,
    file: &Path,
    date: chrono::NaiveDate,
    layout: clearing_app::Layout,
    progress: bool,
) -> Result<clearing_app::ReconReport> {
    let label = file.display().to_string();
    let f = fs::File::open(file).with_context(|| format!("opening {label}"))?;
    let size = f
        .metadata()
        .with_context(|| format!("reading {label}"))?
        .len();
    let mut recorder = Recorder::open(cfg.live()?)?;
    let bar =
        (progress && size >= PROGRESS_BYTES_MIN && std::io::stderr().is_terminal()).then(|| {
            indicatif::ProgressBar::new(size).with_style(
                indicatif::ProgressStyle::with_template(
                    "recon {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("progress template"),
            )
        });
    let input: Box<dyn std::io::Read> = match &bar {
        Some(b) => Box::new(b.wrap_read(f)),
        None => Box::new(f),
    };
    let r = recorder.reconcile(&label, input, layout, date);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(r?)
}

fn replay(
    cfg: &Config,
    until: &clearing_app::core::Cut,
    into: &Path,
    options: clearing_app::ReplayOptions,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let bar = std::io::stderr()
        .is_terminal()
        .then(indicatif::ProgressBar::no_length);
    let r = clearing_app::replay(cfg.live()?, until, into, options, |n, total| {
        if let Some(b) = &bar {
            if let (Some(t), None) = (total, b.length()) {
                b.set_length(t);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "replay {bar:40} {pos}/{len} events {per_sec} eta {eta}",
                    )
                    .expect("progress template"),
                );
            }
            b.set_position(n);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for w in &r.warnings {
        eprintln!("clearing: warning: {w}");
    }
    // `--format json` output goes to stdout alone.
    if format != Format::Json {
        let start = match &r.marker.from_snapshot {
            Some(s) => format!(
                " after snapshot {} ({}, {} events)",
                s.file,
                s.reason,
                s.log_position.total()
            ),
            None => " from the first event".to_string(),
        };
        eprintln!(
            "clearing: replayed {} events{start} of {} until {} into {}",
            r.marker.events,
            r.marker.source,
            r.marker.until,
            into.display()
        );
    }
    render::digest(&r.digest, format, out)
}

fn export(cfg: &Config, command: ExportCommand, out: &mut dyn Write) -> Result<()> {
    let mut l = ReadLedger::open(cfg)?;
    match command {
        ExportCommand::Dispute { id, out: path } => {
            let content = l.dispute_bundle(&id)?;
            let bytes = clearing_app::dispute::bundle::bundle_bytes(&content);
            fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            writeln!(
                out,
                "dispute bundle for {id}: {} transaction(s), {} statement(s), state digest {} written to {}",
                content.transactions.len(),
                content.statements.len(),
                content.state_digest,
                path.display()
            )?;
        }
        ExportCommand::Hledger { date, out: None } => {
            l.hledger(date, out)?;
        }
        ExportCommand::Hledger {
            date,
            out: Some(path),
        } => {
            let file =
                fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let mut f = std::io::BufWriter::new(file);
            let n = l.hledger(date, &mut f)?;
            f.flush()?;
            writeln!(
                out,
                "{n} transactions of {date} written to {}",
                path.display()
            )?;
        }
    }
    Ok(())
}
