//! What reports, reconciliation and disputes read from the projections.

use chrono::NaiveDate;
use clearing_core::events::{RowDelta, RowKey};
use clearing_core::payout::Batch;
use clearing_core::recon::{MatchKey, ReconciliationBreak, ReconciliationRun};
use clearing_core::resolution::BreakResolved;
use clearing_core::settlement::FlaggedTxn;
use clearing_core::{Position, Recorded};

use crate::entries::{ReconEntry, RowValue, TxnEntry};
use crate::keys::{self, Key, Prefix, SegmentKind};
use crate::{Projector, ProjectorError};

impl Projector {
    fn recorded<T: serde::de::DeserializeOwned>(
        &self,
        k: &[u8],
    ) -> Result<Option<Recorded<T>>, ProjectorError> {
        match self.tree.get(k).map_err(|e| self.storage(e))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| self.corrupt(format!("{}: {e}", String::from_utf8_lossy(k)))),
        }
    }

    /// The reconciliation run of `date` over the file with this digest.
    pub fn recon_run(
        &self,
        date: NaiveDate,
        file_sha256: &str,
    ) -> Result<Option<Recorded<ReconciliationRun>>, ProjectorError> {
        self.recorded(&Key::ReconRun(date, file_sha256).bytes())
    }

    /// The latest reconciliation run recorded for `date`.
    pub fn recon_latest(
        &self,
        date: NaiveDate,
    ) -> Result<Option<Recorded<ReconciliationRun>>, ProjectorError> {
        match self
            .tree
            .get(Key::ReconLatest(date).bytes())
            .map_err(|e| self.storage(e))?
        {
            None => Ok(None),
            Some(sha) => self.recon_run(date, &String::from_utf8_lossy(&sha)),
        }
    }

    /// The latest reconciliation run of every date, by date.
    pub fn recon_latest_runs(&self) -> Result<Vec<Recorded<ReconciliationRun>>, ProjectorError> {
        let prefix = Prefix::ReconLatestAll.bytes();
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, sha) = kv.map_err(|e| self.storage(e))?;
            let date = std::str::from_utf8(&k[prefix.len()..])
                .ok()
                .and_then(|d| d.parse::<NaiveDate>().ok())
                .ok_or_else(|| self.corrupt("recon/latest key"))?;
            if let Some(run) = self.recon_run(date, &String::from_utf8_lossy(&sha))? {
                out.push(run);
            }
        }
        Ok(out)
    }

    /// Every fee schedule recorded, oldest first.
    pub fn fee_schedules(
        &self,
    ) -> Result<Vec<Recorded<clearing_core::registry::VersionedFees>>, ProjectorError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(Prefix::FeeSchedules.bytes()) {
            let (k, _) = kv.map_err(|e| self.storage(e))?;
            if let Some(f) = self.recorded(&k)? {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Every version of a merchant's registry entry, oldest first.
    pub fn merchant_versions(
        &self,
        merchant_id: &str,
    ) -> Result<Vec<(u32, Recorded<clearing_core::registry::Merchant>)>, ProjectorError> {
        self.versions(Prefix::MerchantVersions(merchant_id))
    }

    /// Every version of an intermediary, oldest first.
    pub fn intermediary_versions(
        &self,
        intermediary_id: &str,
    ) -> Result<Vec<(u32, Recorded<clearing_core::registry::Intermediary>)>, ProjectorError> {
        self.versions(Prefix::IntermediaryVersions(intermediary_id))
    }

    fn versions<T: serde::de::DeserializeOwned>(
        &self,
        prefix: Prefix<'_>,
    ) -> Result<Vec<(u32, Recorded<T>)>, ProjectorError> {
        let mut out = Vec::new();
        let prefix = prefix.bytes();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(|e| self.storage(e))?;
            let version =
                keys::version_after(&prefix, &k).ok_or_else(|| self.corrupt("registry key"))?;
            if let Some(r) = self.recorded(&k)? {
                out.push((version, r));
            }
        }
        Ok(out)
    }

    /// The breaks a run recorded, in report order.
    pub fn recon_breaks(
        &self,
        date: NaiveDate,
        file_sha256: &str,
    ) -> Result<Vec<Recorded<ReconciliationBreak>>, ProjectorError> {
        let prefix = Prefix::ReconBreaks(date, file_sha256).bytes();
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(|e| self.storage(e))?;
            if let Some(b) = self.recorded(&k)? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Settlement rows of one business date.
    pub fn settlement_rows(
        &self,
        date: NaiveDate,
    ) -> Result<Vec<(RowKey, RowDelta)>, ProjectorError> {
        self.rows(Prefix::RowsOf(date))
    }

    /// Every settlement row of every business date.
    pub fn all_settlement_rows(&self) -> Result<Vec<(RowKey, RowDelta)>, ProjectorError> {
        self.rows(Prefix::Rows)
    }

    /// Every payout batch, by payout date.
    pub fn payout_batches(&self) -> Result<Vec<Batch>, ProjectorError> {
        let mut out: Vec<Batch> = Vec::new();
        for kv in self.tree.scan_prefix(Prefix::Payouts.bytes()) {
            let (k, v) = kv.map_err(|e| self.storage(e))?;
            let corrupt = |e: serde_json::Error| {
                self.corrupt(format!("{}: {e}", String::from_utf8_lossy(&k)))
            };
            // `payout/YYYY-MM-DD/` then the step
            let step = k.get(18..).unwrap_or_default();
            match step.first() {
                Some(b'0') => out.push(Batch {
                    prepared: serde_json::from_slice(&v).map_err(corrupt)?,
                    approved: None,
                    exported: None,
                    results: Vec::new(),
                }),
                Some(s) => {
                    let batch = out
                        .last_mut()
                        .ok_or_else(|| self.corrupt("a payout step without its batch"))?;
                    match s {
                        b'1' => batch.approved = Some(serde_json::from_slice(&v).map_err(corrupt)?),
                        b'2' => batch.exported = Some(serde_json::from_slice(&v).map_err(corrupt)?),
                        _ => batch
                            .results
                            .push(serde_json::from_slice(&v).map_err(corrupt)?),
                    }
                }
                None => return Err(self.corrupt("payout key")),
            }
        }
        for b in &mut out {
            b.results.sort_by_key(|r| r.position.offset);
        }
        Ok(out)
    }

    /// The resolutions of one business date, by key.
    pub fn resolutions(
        &self,
        date: NaiveDate,
    ) -> Result<Vec<Recorded<BreakResolved>>, ProjectorError> {
        self.all_recorded(Prefix::ResolutionsOf(date))
    }

    /// Every resolution of every date.
    pub fn all_resolutions(&self) -> Result<Vec<Recorded<BreakResolved>>, ProjectorError> {
        self.all_recorded(Prefix::Resolutions)
    }

    /// The resolution of one break.
    pub fn resolution(
        &self,
        date: NaiveDate,
        key: &MatchKey,
    ) -> Result<Option<Recorded<BreakResolved>>, ProjectorError> {
        self.recorded(&Key::Resolution(date, key).bytes())
    }

    fn all_recorded<T: serde::de::DeserializeOwned>(
        &self,
        prefix: Prefix<'_>,
    ) -> Result<Vec<Recorded<T>>, ProjectorError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(prefix.bytes()) {
            let (k, _) = kv.map_err(|e| self.storage(e))?;
            if let Some(r) = self.recorded(&k)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn rows(&self, prefix: Prefix<'_>) -> Result<Vec<(RowKey, RowDelta)>, ProjectorError> {
        self.tree
            .scan_prefix(prefix.bytes())
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.storage(e))?;
                let row: RowValue =
                    serde_json::from_slice(&v).map_err(|e| self.corrupt(format!("row: {e}")))?;
                Ok((row.key, row.totals))
            })
            .collect()
    }

    /// The records of a stored segment, as the fold encoded them.
    fn segment<T: serde::de::DeserializeOwned>(
        &self,
        kind: SegmentKind,
        v: &[u8],
    ) -> Result<Vec<T>, ProjectorError> {
        let corrupt = |e: &dyn std::fmt::Display| self.corrupt(format!("{kind:?} segment: {e}"));
        let plain = lz4_flex::decompress_size_prepended(v).map_err(|e| corrupt(&e))?;
        match kind {
            SegmentKind::Risk => serde_json::from_slice(&plain).map_err(|e| corrupt(&e)),
            SegmentKind::Txn | SegmentKind::Recon => {
                postcard::from_bytes(&plain).map_err(|e| corrupt(&e))
            }
        }
    }

    /// Every segment under `prefix`, in key (log) order, each decoded by
    /// `decode`, in parallel: a date's index can hold a million records.
    fn decoded_segments<T: Send>(
        &self,
        prefix: Prefix<'_>,
        decode: impl Fn(&[u8]) -> Result<Vec<T>, ProjectorError> + Sync,
    ) -> Result<Vec<Vec<T>>, ProjectorError> {
        use rayon::prelude::*;
        let raw = self
            .tree
            .scan_prefix(prefix.bytes())
            .values()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.storage(e))?;
        raw.par_iter().map(|v| decode(v)).collect()
    }

    /// What reconciliation needs of every accepted record of a business
    /// date, in log order, segment by segment (decoded in parallel).
    pub fn recon_entries(&self, date: NaiveDate) -> Result<Vec<Vec<ReconEntry>>, ProjectorError> {
        let kind = SegmentKind::Recon;
        self.decoded_segments(Prefix::Segments(kind, date), |v| self.segment(kind, v))
    }

    /// Flagged records of one business date, in log order.
    pub fn flagged(&self, date: NaiveDate) -> Result<Vec<FlaggedTxn>, ProjectorError> {
        let kind = SegmentKind::Risk;
        let decoded =
            self.decoded_segments(Prefix::Segments(kind, date), |v| self.segment(kind, v))?;
        Ok(decoded.into_iter().flatten().collect())
    }

    /// The accepted records of one business date, in log order.
    pub fn txns_on(&self, date: NaiveDate) -> Result<Vec<TxnEntry>, ProjectorError> {
        self.matching_txns(Prefix::Segments(SegmentKind::Txn, date), "", |_| true)
    }

    /// The records of one business date that belong to `merchant_id`: its
    /// own, and any moving money in its settlement row (a void naming its
    /// sale under another merchant id), in log order.
    pub fn merchant_txns_on(
        &self,
        date: NaiveDate,
        merchant_id: &str,
    ) -> Result<Vec<TxnEntry>, ProjectorError> {
        self.matching_txns(Prefix::Segments(SegmentKind::Txn, date), merchant_id, |t| {
            t.merchant_id == merchant_id
                || t.settlement
                    .as_ref()
                    .is_some_and(|r| r.merchant_id == merchant_id)
        })
    }

    /// Every accepted record whose `txn_id`, `rrn` or `original_txn_id` is
    /// `id`, in log order per business date. A scan of the whole index
    /// that parses only the segments containing `id`: for look-ups by
    /// people, not for hot paths.
    pub fn find_txns(&self, id: &str) -> Result<Vec<TxnEntry>, ProjectorError> {
        self.matching_txns(Prefix::AllSegments(SegmentKind::Txn), id, |t| {
            t.txn_id == id || t.rrn == id || t.original_txn_id.as_deref() == Some(id)
        })
    }

    /// The records under `prefix` that `keep` accepts, decoding only the
    /// segments whose bytes contain `needle` (all of them when it is empty).
    fn matching_txns(
        &self,
        prefix: Prefix<'_>,
        needle: &str,
        keep: impl Fn(&TxnEntry) -> bool + Sync,
    ) -> Result<Vec<TxnEntry>, ProjectorError> {
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let decoded = self.decoded_segments(prefix, |v| {
            let plain = lz4_flex::decompress_size_prepended(v)
                .map_err(|e| self.corrupt(format!("txn: {e}")))?;
            if !needle.is_empty() && finder.find(&plain).is_none() {
                return Ok(Vec::new());
            }
            let items: Vec<TxnEntry> =
                postcard::from_bytes(&plain).map_err(|e| self.corrupt(format!("txn: {e}")))?;
            Ok(items.into_iter().filter(|t| keep(t)).collect())
        })?;
        Ok(decoded.into_iter().flatten().collect())
    }

    /// Events that could not be decoded: `(position, reason)`.
    pub fn undecodable(&self) -> Result<Vec<(Position, String)>, ProjectorError> {
        self.tree
            .scan_prefix(Prefix::Bad.bytes())
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.storage(e))?;
                let p = keys::bad_position(&k).ok_or_else(|| self.corrupt("bad key"))?;
                Ok((p, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }
}
