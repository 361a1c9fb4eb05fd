//! `clearing`: the clearing ledger's command line.
//!
//! Layout: `app` parses arguments and configuration and dispatches to one
//! function per command; `report` formats reports (json, table, csv);
//! `gen` generates the seeded demo day; `bench` measures the pipeline.
//! `main` only turns the outcome into an exit status and a one-line reason.

mod app;
mod bench;
mod gen;
mod report;

use std::process::ExitCode;

fn main() -> ExitCode {
    app::main()
}
