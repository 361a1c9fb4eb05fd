//! The clearing ledger's pure domain.
//!
//! Layout: `money` (integer fen, the one half-up rounding function),
//! `channel` (vocabulary), `fees` (schedule, sale and refund fee),
//! `calendar` (business date, payout date), `registry` (merchants,
//! intermediaries, terminals), `mask` (PAN masking), `risk` (跳码/跳商户
//! flags), `postings` (double entry, asserted balanced), `recon` (the
//! clearing-file matcher and its categories), `events` (versioned
//! envelope), `ingest` (`decide` a record, `apply` an event to the write
//! model) and `settlement` (reports). Nothing here does I/O, reads a clock
//! or is async: time arrives inside records and events.

pub mod calendar;
pub mod chain;
pub mod channel;
pub mod dates;
pub mod events;
pub mod fees;
pub mod hashing;
pub mod hex;
pub mod ingest;
pub mod mask;
pub mod money;
pub mod payout;
pub mod position;
pub mod postings;
pub mod recon;
pub mod registry;
pub mod resolution;
pub mod risk;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod settlement;
pub mod time;
pub mod wire;

pub use channel::{Channel, TxnResult, TxnType};
pub use events::{Event, EventBody};
pub use money::Fen;
pub use position::{Cut, Position, Positions, Recorded};
pub use time::Timestamp;
