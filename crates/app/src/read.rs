//! Reading the ledger: reports, the digest, reconciliation results and
//! the dispute queries, on projections brought to the end of the log — or,
//! in a replayed dir, as the replay left them.

use std::io::Write;
use std::sync::Arc;

use chrono::NaiveDate;
use clearing_core::recon::LedgerItem;
use clearing_core::settlement::{risk_report, settlement_report, RiskReport, SettlementReport};
use clearing_core::Timestamp;
use clearing_log::{EventLog, Topic};
use clearing_projector::Projector;

use crate::config::{open_projector, Config};
use crate::dispute::bundle::{dispute_bundle, BundleContent, State};
use crate::dispute::journal::hledger_journal;
use crate::dispute::statement::{statement, Statement};
use crate::dispute::story::{stories, StoriesView};
use crate::error::{AppError, Context};
use crate::replay::{events_log, marker, ReplayMarker};
use crate::views::DigestView;

/// How far one partition's projections stood behind the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lag {
    pub partition: u32,
    /// The next offset the projections had to apply.
    pub applied: u64,
    /// The log's end (past its last record).
    pub end: u64,
}

impl Lag {
    /// Offsets between the projections and the end of the log.
    pub fn behind(&self) -> u64 {
        self.end.saturating_sub(self.applied)
    }
}

/// A ledger opened to read.
pub struct ReadLedger {
    projector: Projector,
    /// Where events are read from: the live log, or the log a replay read.
    events: Option<Arc<dyn EventLog>>,
    config: Config,
    replay: Option<ReplayMarker>,
}

impl ReadLedger {
    /// Opens the projections of `cfg`'s data dir and brings them to the end
    /// of the log, dead-lettering messages that are not events; a replayed
    /// dir is used as it is.
    pub fn open(cfg: &Config) -> Result<ReadLedger, AppError> {
        Ok(ReadLedger::open_measured(cfg)?.0)
    }

    /// `open`, telling how far behind the end of the log each partition's
    /// projections were when opened (none for a replayed dir).
    pub fn open_measured(cfg: &Config) -> Result<(ReadLedger, Vec<Lag>), AppError> {
        let replay = marker(&cfg.data_dir)?;
        let mut projector = open_projector(&cfg.data_dir)?;
        let mut events = None;
        let mut lag = Vec::new();
        if replay.is_none() {
            let log = crate::config::open_log(cfg)?;
            if let Some(ends) = log
                .high_water(Topic::Events)
                .context("reading the log's end")?
            {
                let applied = projector.stored_positions();
                lag = ends
                    .iter()
                    .map(|(partition, end)| Lag {
                        partition,
                        applied: applied.next(partition),
                        end,
                    })
                    .collect();
            }
            crate::project::catch_up(cfg, &*log, &mut projector)?;
            events = Some(log);
        }
        let ledger = ReadLedger {
            projector,
            events,
            config: cfg.clone(),
            replay,
        };
        Ok((ledger, lag))
    }

    /// The projections, for reads of their own (the demo, the benchmark).
    pub fn projector(&self) -> &Projector {
        &self.projector
    }

    /// The replay this dir is, if it is one.
    pub fn replay(&self) -> Option<&ReplayMarker> {
        self.replay.as_ref()
    }

    /// The log events are read from, opened when first needed.
    fn events(&mut self) -> Result<Arc<dyn EventLog>, AppError> {
        if self.events.is_none() {
            self.events = Some(events_log(&self.config, self.replay.as_ref())?);
        }
        Ok(self.events.clone().expect("opened above"))
    }

    /// SPEC §7.
    pub fn settlement(&self, date: NaiveDate) -> Result<SettlementReport, AppError> {
        let rows = self.projector.settlement_rows(date)?;
        settlement_report(date, rows).context("settlement totals overflow")
    }

    /// SPEC §7 and §11: flagged records and second-party exposure.
    pub fn risk(&self, date: NaiveDate) -> Result<RiskReport, AppError> {
        let s = self.settlement(date)?;
        risk_report(&s, self.projector.flagged(date)?).context("exposure overflows")
    }

    /// The digest of the projection state and the positions it reflects.
    pub fn digest(&self) -> Result<DigestView, AppError> {
        Ok(DigestView::new(
            self.projector.digest()?,
            self.projector.stored_positions(),
        ))
    }

    /// SPEC §9: every story of a `txn_id` or `rrn`; none is "not found".
    pub fn stories(&mut self, id: &str) -> Result<StoriesView, AppError> {
        let log = self.events()?;
        let transactions = stories(&self.projector, &*log, id)?;
        if transactions.is_empty() {
            return Err(AppError::not_found(format!(
                "no transaction with txn_id or rrn {id:?} in the ledger"
            )));
        }
        Ok(StoriesView {
            query: id.to_string(),
            transactions,
        })
    }

    /// A merchant's settlement of `date` as known at `as_of`.
    pub fn statement(
        &self,
        merchant_id: &str,
        date: NaiveDate,
        as_of: Option<&Timestamp>,
    ) -> Result<Statement, AppError> {
        statement(&self.projector, merchant_id, date, as_of)
    }

    /// A dispute bundle of `id`, taken from the state as it stands.
    pub fn dispute_bundle(&mut self, id: &str) -> Result<BundleContent, AppError> {
        let state = State {
            digest: self.projector.digest()?,
            log_position: self.projector.stored_positions().clone(),
            generated_at: self.config.clock.now(),
        };
        let log = self.events()?;
        dispute_bundle(&self.projector, &*log, id, state)
    }

    /// Writes the journal of `date` to `out`; returns the transactions
    /// written.
    pub fn hledger(&mut self, date: NaiveDate, out: &mut dyn Write) -> Result<u64, AppError> {
        let log = self.events()?;
        hledger_journal(&self.projector, &*log, date, out)
    }

    /// The ledger's side of a date's reconciliation: every sale and refund
    /// of the date with its status now.
    pub fn recon_ledger_side(&self, date: NaiveDate) -> Result<Vec<LedgerItem>, AppError> {
        let cutoff = self
            .projector
            .fee_schedules()?
            .last()
            .map(|f| f.value.schedule.cutoff)
            .ok_or_else(|| AppError::conflict("no fee schedule is recorded yet"))?;
        Ok(clearing_recon::ledger_side(
            self.projector.recon_entries(date)?,
            cutoff,
        ))
    }
}
