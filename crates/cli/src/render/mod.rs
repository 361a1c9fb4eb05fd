//! Rendering what the application returns: `json` (stdout alone, exactly
//! the view's serialisation: SPEC §7/§11 shapes), `table` (for people),
//! `csv` (for spreadsheets).
//!
//! Layout: this module holds the format, the JSON writer and the small
//! outputs (ingest summary, projection, digest, loads); `reports` the
//! settlement and risk reports; `recon` a reconciliation run; `story` a
//! transaction's story; `statement` a merchant statement.

pub mod payout;
pub mod recon;
pub mod reports;
pub mod statement;
pub mod story;

use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;
use clearing_app::views::{DigestView, ProjectedView};
use clearing_app::{FeesLoaded, IngestSummary, RegistryLoaded};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Table,
    Csv,
}

/// One compact JSON document and a newline: what `--format json` prints.
pub fn json(value: &impl Serialize, out: &mut dyn Write) -> Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

pub fn ingest_summary(s: &IngestSummary, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(s, out),
        Format::Table => ingest_table(s, out),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["outcome", "count"])?;
            w.write_record(["accepted", &s.accepted.to_string()])?;
            w.write_record(["duplicates", &s.duplicates.to_string()])?;
            for (r, n) in &s.rejected {
                w.write_record([&format!("rejected:{r}"), &n.to_string()])?;
            }
            w.flush()?;
            Ok(())
        }
    }
}

fn ingest_table(s: &IngestSummary, out: &mut dyn Write) -> Result<()> {
    let reasons: Vec<String> = s.rejected.iter().map(|(r, n)| format!("{r} {n}")).collect();
    write!(
        out,
        "accepted {}, duplicates {}, rejected {}",
        s.accepted,
        s.duplicates,
        s.rejected_total()
    )?;
    if reasons.is_empty() {
        writeln!(out)?;
    } else {
        writeln!(out, " ({})", reasons.join(", "))?;
    }
    for r in &s.first_rejects {
        let field = r.field.map(|f| format!(" ({f})")).unwrap_or_default();
        writeln!(
            out,
            "  line {}: {}{field}: {}",
            r.line,
            r.reason.as_str(),
            r.detail
        )?;
    }
    let listed = s.first_rejects.len() as u64;
    if listed > 0 && s.rejected_total() > listed {
        writeln!(
            out,
            "  … and {} more rejected lines; every one is on the rejected topic",
            s.rejected_total() - listed
        )?;
    }
    Ok(())
}

pub fn projected(p: &ProjectedView, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(p, out),
        _ => {
            let at: Vec<String> = p.stand.iter().map(|(p, o)| format!("{p}:{o}")).collect();
            writeln!(
                out,
                "projected {} events ({} redelivered, skipped); next positions {}",
                p.events_applied,
                p.redelivered_skipped,
                at.join(" ")
            )?;
            Ok(())
        }
    }
}

pub fn digest(d: &DigestView, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(d, out),
        _ => {
            writeln!(out, "{}", d.digest)?;
            Ok(())
        }
    }
}

pub fn verify(r: &clearing_app::VerifyReport, format: Format, out: &mut dyn Write) -> Result<()> {
    if format == Format::Json {
        return json(r, out);
    }
    for c in &r.chains {
        match &c.broken {
            None => writeln!(
                out,
                "partition {}: {} records, chain holds (head {})",
                c.partition, c.records, c.head
            )?,
            Some(b) => writeln!(
                out,
                "partition {}: chain BREAKS at {} after {} records: {}",
                c.partition, b.position, c.records, b.reason
            )?,
        }
    }
    let d = &r.digest;
    if let Some(e) = &d.error {
        writeln!(out, "projections: {e}")?;
        writeln!(out, "NOT verified")?;
        return Ok(());
    }
    writeln!(
        out,
        "projections at {}: digest {} {} the digest rebuilt from the log ({})",
        d.log_position,
        d.live,
        if d.equal { "equals" } else { "DIFFERS FROM" },
        d.rebuilt
    )?;
    for c in &r.snapshots {
        match &c.error {
            Some(e) if c.other_format => writeln!(out, "snapshot {} {e}: not checked", c.file)?,
            Some(e) => writeln!(out, "snapshot {} {e}", c.file)?,
            None => writeln!(
                out,
                "snapshot {} at {}: digest {} {} the digest rebuilt from the log ({})",
                c.file,
                c.log_position,
                c.digest,
                if c.equal { "equals" } else { "DIFFERS FROM" },
                c.rebuilt
            )?,
        }
    }
    writeln!(out, "{}", if r.ok { "verified" } else { "NOT verified" })?;
    Ok(())
}

pub fn fees_loaded(loaded: &FeesLoaded, out: &mut dyn Write) -> Result<()> {
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

pub fn registry_loaded(s: &RegistryLoaded, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "merchants: {} registered, {} updated; intermediaries: {} registered, {} updated; {} unchanged",
        s.merchants_registered,
        s.merchants_updated,
        s.intermediaries_registered,
        s.intermediaries_updated,
        s.unchanged
    )?;
    Ok(())
}
