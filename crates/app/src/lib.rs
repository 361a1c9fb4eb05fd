//! The application layer of the clearing ledger: every use case as a
//! library call with typed results, so that the command line and the HTTP
//! service call the same code and print the same JSON.
//!
//! Layout: `config` validates what a front end was given and opens the
//! configured log; `replay` holds the read-only rule of a replayed dir
//! (`Config::live` is the one place it is checked) and the replay itself;
//! `record` is the `Recorder`, through which every change is recorded
//! (fees, registry, ingest, reconciliation); `project` brings projections
//! up or follows the log; `read` is the `ReadLedger` every report and
//! query reads from; `dispute` the stories, statements, bundles and
//! journals of SPEC §9; `verify` the integrity check of SPEC §15; `views` the view structs front ends serialise;
//! `measure` the baselines the benchmark compares with; `error` the one
//! error type, with the kind a front end maps to an exit status or an
//! HTTP status.

pub mod config;
pub mod dispute;
pub mod error;
pub mod measure;
pub mod payout;
pub mod project;
pub mod read;
pub mod record;
pub mod replay;
pub mod resolve;
pub mod snapshots;
pub mod verify;
pub mod views;

pub use config::{now, Config, ConfigInput, Snapshots};
pub use error::{AppError, Context, ErrorKind};
pub use project::{follow, project, Following};
pub use read::{Lag, ReadLedger};
pub use record::{Named, ReconReport, Recorder};
pub use replay::{replay, Live, ReplayMarker, ReplayOptions, Replayed};
pub use verify::{verify, VerifyReport};

/// The crates below the application, for front ends that need their
/// types (`clearing_app::core::Fen`, …) without depending on them.
pub use clearing_core as core;
pub use clearing_kafka as kafka;
pub use clearing_log as log;
pub use clearing_producer::{FeesLoaded, IngestSummary, RegistryLoaded, RejectedLine};
pub use clearing_recon::reader::CSV_HEADER;
pub use clearing_recon::{BadLine, Layout};
