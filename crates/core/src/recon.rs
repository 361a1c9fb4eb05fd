//! Reconciliation against the channel's clearing file (SPEC §8, §11): the
//! categories, the held pool, the events a run records, and the matcher.
//!
//! The matcher is pure: the ledger's side of a business date goes in (every
//! sale and refund of the date with its status, plus the items the previous
//! run held), channel lines are fed one at a time in file order, and
//! `finish` classifies what is left on the ledger side. Every channel line
//! and every expected ledger record ends in exactly one category.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use chrono::NaiveDate;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::channel::TxnType;
use crate::money::Fen;

crate::wire_enum! {
    /// The eight categories, in SPEC order.
    pub enum Category {
        Matched = "matched",
        MissingInLedger = "missing_in_ledger",
        MissingInChannel = "missing_in_channel",
        AmountMismatch = "amount_mismatch",
        FeeMismatch = "fee_mismatch",
        StatusMismatch = "status_mismatch",
        DuplicateInChannel = "duplicate_in_channel",
        Held = "held",
    }
}

impl Category {
    /// A break is a finding an operator must look at: everything but
    /// `matched` and `held`.
    pub fn is_break(self) -> bool {
        !matches!(self, Category::Matched | Category::Held)
    }
}

crate::wire_enum! {
    /// The transaction types a clearing file carries.
    pub enum ReconType {
        Sale = "sale",
        Refund = "refund",
    }
}

impl ReconType {
    /// The type a channel file gives a record: sales and refunds only
    /// (voids and reversals cancel a sale and appear in no file).
    pub fn of(txn_type: TxnType) -> Option<ReconType> {
        match txn_type {
            TxnType::Sale => Some(ReconType::Sale),
            TxnType::Refund => Some(ReconType::Refund),
            TxnType::Void | TxnType::Reversal => None,
        }
    }
}

/// The match key: `(terminal_id, rrn, txn_type)`.
///
/// Its texts, and the ids of a `LedgerItem`, are kept inline (up to 24
/// bytes, which every terminal id, RRN and id the ledger issues fits): a
/// run holds a million of them, and a text on the heap of its own was an
/// allocation to make and free, and a cache miss to compare, apiece.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchKey {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub terminal_id: CompactString,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub rrn: CompactString,
    pub txn_type: ReconType,
}

crate::wire_enum! {
    /// How the ledger holds a sale or refund.
    pub enum LedgerStatus {
        Approved = "approved",
        Declined = "declined",
        Voided = "voided",
        Reversed = "reversed",
    }
}

/// One sale or refund on the ledger's side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerItem {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub txn_id: CompactString,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub merchant_id: CompactString,
    #[serde(flatten)]
    pub key: MatchKey,
    pub amount: Fen,
    pub fee: Fen,
    pub status: LedgerStatus,
    /// In the last 10 minutes before the cutoff of its business date.
    pub near_cutoff: bool,
}

/// An item a run held for the next day's file: ledger state, recorded in
/// the run's event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeldItem {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub txn_id: CompactString,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub merchant_id: CompactString,
    #[serde(flatten)]
    pub key: MatchKey,
    pub amount: Fen,
    pub fee: Fen,
    /// The business date it belongs to (the run that held it).
    #[serde(with = "crate::dates")]
    pub business_date: NaiveDate,
}

/// One line of a clearing file, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelLine {
    pub line: u64,
    pub business_date: Option<NaiveDate>,
    pub merchant_id: CompactString,
    pub key: MatchKey,
    pub amount: Fen,
    pub fee: Fen,
}

/// A finding: one record, or one pair, and its category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    pub category: Category,
    #[serde(flatten)]
    pub key: MatchKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub merchant_id: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub txn_id: Option<CompactString>,
    /// The channel file's line, for findings that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_amount: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_fee: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_amount: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_fee: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_status: Option<LedgerStatus>,
}

/// Counts per category, all eight always present.
pub type Counts = BTreeMap<Category, u64>;

pub fn zero_counts() -> Counts {
    Category::ALL.iter().map(|c| (*c, 0)).collect()
}

/// The event a run records last: what it found, in sum, and the items it
/// holds for the next run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconciliationRun {
    #[serde(with = "crate::dates")]
    pub business_date: NaiveDate,
    /// Name of the file as given, for people; the digest identifies it.
    pub file: String,
    pub file_sha256: String,
    pub layout: String,
    pub lines: u64,
    pub bad_lines: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub counts: Counts,
    /// Number of `ReconciliationBreak` events recorded before this one.
    pub breaks: u64,
    pub held: Vec<HeldItem>,
}

/// One break of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconciliationBreak {
    #[serde(with = "crate::dates")]
    pub business_date: NaiveDate,
    pub file_sha256: String,
    /// 0, 1, … within the run, in report order.
    pub index: u64,
    #[serde(flatten)]
    pub finding: Finding,
}

/// The result of matching one file against the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub counts: Counts,
    /// Breaks in report order: by category (SPEC order), then key.
    pub breaks: Vec<Finding>,
    /// Items held for the next run, by key.
    pub held: Vec<HeldItem>,
    /// Pairs and held items that are not breaks (for audits and tests).
    pub settled: Vec<Finding>,
}

struct Candidate {
    item: LedgerItem,
    /// From the previous run's held pool rather than this date.
    carried: Option<NaiveDate>,
    paired: bool,
    /// The file named this record's key.
    named: bool,
    /// Next candidate whose key hashes alike (`NONE` ends the chain).
    next: u32,
}

const NONE: u32 = u32::MAX;

fn key_hash(k: &MatchKey) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(k)
}

/// Matches one clearing file against the ledger's side of its date.
pub struct Matcher {
    date: NaiveDate,
    candidates: Vec<Candidate>,
    /// First candidate per key hash; the rest are chained through `next`
    /// (no key is copied to build the index).
    by_hash: HashMap<u64, u32>,
    /// Keys the file named that the ledger does not hold.
    unknown_seen: HashSet<MatchKey>,
    /// Keep the non-break findings too (audits and tests); a production run
    /// needs only their counts.
    audit: bool,
    out: Outcome,
}

fn expected(c: &Candidate) -> bool {
    c.item.status == LedgerStatus::Approved
}

impl Matcher {
    /// `ledger`: every sale and refund of business date `date`, whatever
    /// its status; `held_in`: what the previous run held, with its status
    /// now (an item since voided is no longer expected).
    pub fn new(
        date: NaiveDate,
        ledger: impl IntoIterator<Item = LedgerItem>,
        held_in: Vec<(HeldItem, LedgerStatus)>,
    ) -> Matcher {
        let ledger = ledger.into_iter();
        // Room for all at once, when the ledger says how many at most.
        let (least, most) = ledger.size_hint();
        let mut candidates: Vec<Candidate> =
            Vec::with_capacity(most.unwrap_or(least) + held_in.len());
        candidates.extend(ledger.map(|item| Candidate {
            item,
            carried: None,
            paired: false,
            named: false,
            next: NONE,
        }));
        for (h, status) in held_in {
            candidates.push(Candidate {
                item: LedgerItem {
                    txn_id: h.txn_id,
                    merchant_id: h.merchant_id,
                    key: h.key,
                    amount: h.amount,
                    fee: h.fee,
                    status,
                    near_cutoff: false,
                },
                carried: Some(h.business_date),
                paired: false,
                named: false,
                next: NONE,
            });
        }
        assert!(
            candidates.len() < NONE as usize,
            "too many ledger records for one run"
        );
        let mut by_hash: HashMap<u64, u32> =
            HashMap::with_capacity_and_hasher(candidates.len(), Default::default());
        // Chains keep log order: build them back to front.
        for i in (0..candidates.len()).rev() {
            let h = key_hash(&candidates[i].item.key);
            if let Some(head) = by_hash.insert(h, i as u32) {
                candidates[i].next = head;
            }
        }
        Matcher {
            date,
            candidates,
            by_hash,
            unknown_seen: HashSet::default(),
            audit: false,
            out: Outcome {
                counts: zero_counts(),
                ..Outcome::default()
            },
        }
    }

    /// Also keep the findings that are not breaks, in `Outcome::settled`.
    pub fn with_audit(mut self) -> Matcher {
        self.audit = true;
        self
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }

    fn record(&mut self, f: Finding) {
        *self.out.counts.entry(f.category).or_insert(0) += 1;
        if f.category.is_break() {
            self.out.breaks.push(f);
        } else if self.audit {
            self.out.settled.push(f);
        }
    }

    /// Classifies one channel line (SPEC §11's order).
    pub fn line(&mut self, l: &ChannelLine) {
        let channel_only = |category| Finding {
            category,
            key: l.key.clone(),
            merchant_id: Some(l.merchant_id.clone()),
            txn_id: None,
            line: Some(l.line),
            channel_amount: Some(l.amount),
            channel_fee: Some(l.fee),
            ledger_amount: None,
            ledger_fee: None,
            ledger_status: None,
        };
        // The ledger's side of a pair fills in what the line left open.
        let paired = |category, item: &LedgerItem| Finding {
            merchant_id: Some(item.merchant_id.clone()),
            txn_id: Some(item.txn_id.clone()),
            ledger_amount: Some(item.amount),
            ledger_fee: Some(item.fee),
            ledger_status: Some(item.status),
            ..channel_only(category)
        };
        // The ledger records with this key, in log order, in one walk:
        // the file names them all (a second line with the key is its
        // duplicate); the line pairs with an expected record not yet
        // paired first, else with any not yet paired, else the first.
        let head = self.by_hash.get(&key_hash(&l.key)).copied().unwrap_or(NONE);
        let (mut first, mut unpaired, mut unpaired_expected) = (None, None, None);
        let mut at = head;
        while at != NONE {
            let i = at as usize;
            let c = &mut self.candidates[i];
            at = c.next;
            if c.item.key != l.key {
                continue;
            }
            if first.is_none() {
                if c.named {
                    // Named by an earlier line: so are all the others.
                    return self.record(channel_only(Category::DuplicateInChannel));
                }
                first = Some(i);
            }
            c.named = true;
            if !c.paired {
                unpaired.get_or_insert(i);
                if expected(c) {
                    unpaired_expected.get_or_insert(i);
                }
            }
        }
        let Some(first) = first else {
            let category = if self.unknown_seen.insert(l.key.clone()) {
                Category::MissingInLedger
            } else {
                Category::DuplicateInChannel
            };
            return self.record(channel_only(category));
        };
        let i = unpaired_expected.or(unpaired).unwrap_or(first);
        let c = &mut self.candidates[i];
        c.paired = true;
        let category = if c.item.status != LedgerStatus::Approved {
            Category::StatusMismatch
        } else if c.item.amount != l.amount {
            Category::AmountMismatch
        } else if c.item.fee != l.fee {
            Category::FeeMismatch
        } else {
            Category::Matched
        };
        if !category.is_break() && !self.audit {
            *self.out.counts.entry(category).or_insert(0) += 1;
            return;
        }
        let f = paired(category, &c.item);
        self.record(f)
    }

    /// Classifies what the file did not name and returns the outcome.
    pub fn finish(mut self) -> Outcome {
        let candidates = std::mem::take(&mut self.candidates);
        for c in candidates {
            if c.paired || !expected(&c) {
                continue;
            }
            let category = if c.carried.is_none() && c.item.near_cutoff {
                Category::Held
            } else {
                Category::MissingInChannel
            };
            if category == Category::Held {
                self.out.held.push(HeldItem {
                    txn_id: c.item.txn_id.clone(),
                    merchant_id: c.item.merchant_id.clone(),
                    key: c.item.key.clone(),
                    amount: c.item.amount,
                    fee: c.item.fee,
                    business_date: self.date,
                });
            }
            self.record(Finding {
                category,
                key: c.item.key,
                merchant_id: Some(c.item.merchant_id),
                txn_id: Some(c.item.txn_id),
                line: None,
                channel_amount: None,
                channel_fee: None,
                ledger_amount: Some(c.item.amount),
                ledger_fee: Some(c.item.fee),
                ledger_status: Some(c.item.status),
            });
        }
        let order = |f: &Finding| (f.category, f.key.clone(), f.line, f.txn_id.clone());
        self.out.breaks.sort_by_key(order);
        self.out.settled.sort_by_key(order);
        self.out
            .held
            .sort_by(|a, b| a.key.cmp(&b.key).then(a.txn_id.cmp(&b.txn_id)));
        self.out
    }
}
