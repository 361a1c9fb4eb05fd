//! Recording: every use case that adds events to the ledger goes through a
//! `Recorder`, which owns the one writer (ADR 9). It is opened on a `Live`
//! dir only, so a replayed dir can never be written.

use std::io::{BufRead, Read};
use std::sync::Arc;

use chrono::NaiveDate;
use clearing_core::calendar::Calendar;
use clearing_log::EventLog;
use clearing_producer::{FeesLoaded, IngestSummary, Input, RegistryLoaded, Writer};
use clearing_recon::Layout;

use crate::config::{open_log, open_projector, open_writer, Config};
use crate::error::{AppError, Context};
use crate::replay::Live;

/// A text and the name it goes by in messages (a file's path, `-`, a
/// request).
#[derive(Clone, Copy, Debug)]
pub struct Named<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// What a reconciliation run found and recorded, and how its breaks have
/// been resolved since (a rerun of the same file shows them).
#[derive(Clone, Debug)]
pub struct ReconReport {
    pub run: clearing_recon::Report,
    pub resolutions:
        std::collections::BTreeMap<clearing_core::recon::MatchKey, crate::resolve::ResolutionNote>,
}

impl std::ops::Deref for ReconReport {
    type Target = clearing_recon::Report;
    fn deref(&self) -> &clearing_recon::Report {
        &self.run
    }
}

pub struct Recorder {
    config: Config,
    log: Arc<dyn EventLog>,
    writer: Writer,
}

impl Recorder {
    /// Opens the log and the write model of a live data dir, the write
    /// model caught up with the log.
    pub fn open(live: Live<'_>) -> Result<Recorder, AppError> {
        let config = live.config().clone();
        let log = open_log(&config)?;
        let writer = open_writer(log.clone(), &config.data_dir)?;
        Ok(Recorder {
            config,
            log,
            writer,
        })
    }

    /// The log this recorder writes to.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Reference data as recorded.
    pub fn reference(&self) -> &clearing_core::registry::Reference {
        self.writer.reference()
    }

    /// Records a fee schedule (and calendar) unless it equals the one in
    /// force.
    pub fn load_fees(
        &mut self,
        fees: Named<'_>,
        holidays: Option<Named<'_>>,
    ) -> Result<FeesLoaded, AppError> {
        let schedule = clearing_producer::fees::parse_fees(fees.name, fees.text)?;
        let calendar = match holidays {
            Some(h) => clearing_producer::fees::parse_holidays(h.name, h.text)?,
            None => Calendar::default(),
        };
        let loaded = clearing_producer::load_fees(
            &mut self.writer,
            schedule,
            calendar,
            &self.config.clock.now(),
        )?;
        self.writer.flush()?;
        Ok(loaded)
    }

    /// Records registrations and changes; all or nothing.
    pub fn load_registry(
        &mut self,
        merchants: Named<'_>,
        intermediaries: Option<Named<'_>>,
    ) -> Result<RegistryLoaded, AppError> {
        let loaded = clearing_producer::load_registry(
            &mut self.writer,
            (merchants.name, merchants.text),
            intermediaries.map(|i| (i.name, i.text)),
            &self.config.clock.now(),
        )?;
        self.writer.flush()?;
        Ok(loaded)
    }

    /// Validates and records a transactions input; every line ends as
    /// events, a counted duplicate or a dead letter.
    pub fn ingest(
        &mut self,
        source: &str,
        input: impl BufRead,
        progress: impl FnMut(&IngestSummary),
    ) -> Result<IngestSummary, AppError> {
        self.ingest_from(source, Input::File(input), progress)
    }

    /// `ingest` of a feed that may pause between lines (stdin): each batch
    /// is durable before the next is read.
    pub fn ingest_live(
        &mut self,
        source: &str,
        input: impl BufRead,
        progress: impl FnMut(&IngestSummary),
    ) -> Result<IngestSummary, AppError> {
        self.ingest_from(source, Input::Live(input), progress)
    }

    fn ingest_from(
        &mut self,
        source: &str,
        input: Input<impl BufRead>,
        progress: impl FnMut(&IngestSummary),
    ) -> Result<IngestSummary, AppError> {
        let summary = clearing_producer::ingest(
            &mut self.writer,
            source,
            input,
            &self.config.clock.0,
            progress,
        )?;
        self.writer.flush()?;
        Ok(summary)
    }

    /// The projections, brought to the end of the log.
    pub(crate) fn caught_up_projector(&self) -> Result<clearing_projector::Projector, AppError> {
        let mut p = open_projector(&self.config.data_dir)?;
        crate::project::catch_up(&self.config, &*self.log, &mut p)?;
        Ok(p)
    }

    /// The recording time of what is recorded now.
    pub(crate) fn now(&self) -> clearing_core::Timestamp {
        self.config.clock.now()
    }

    /// Records `events` and projects them into `p`.
    pub(crate) fn record(
        &mut self,
        p: &mut clearing_projector::Projector,
        events: Vec<clearing_core::Event>,
    ) -> Result<(), AppError> {
        clearing_producer::record_events(&mut self.writer, events).context("recording")?;
        self.writer.flush()?;
        crate::project::catch_up(&self.config, &*self.log, p)?;
        p.flush()?;
        Ok(())
    }

    /// Reconciles a channel clearing file for `date` (SPEC §8), records the
    /// result once per (date, file content), and projects what it recorded.
    pub fn reconcile(
        &mut self,
        file: &str,
        input: impl Read,
        layout: Layout,
        date: NaiveDate,
    ) -> Result<ReconReport, AppError> {
        let cutoff = self.writer.reference().cutoff().ok_or_else(|| {
            AppError::conflict(
                "no fee schedule is recorded yet, so the cutoff is unknown: run `clearing fees load FILE` first",
            )
        })?;
        let mut p = open_projector(&self.config.data_dir)?;
        crate::project::catch_up(&self.config, &*self.log, &mut p)?;
        let run = clearing_recon::reconcile(
            &p,
            cutoff,
            file,
            input,
            layout,
            date,
            &self.config.clock.now(),
        )?;
        clearing_producer::record_events(&mut self.writer, run.events)
            .context("recording the result")?;
        self.writer.flush()?;
        crate::project::catch_up(&self.config, &*self.log, &mut p)?;
        p.flush()?;
        let resolutions = p
            .resolutions(date)?
            .iter()
            .map(|r| (r.value.key.clone(), crate::resolve::ResolutionNote::of(r)))
            .collect();
        Ok(ReconReport {
            run: run.report,
            resolutions,
        })
    }
}
