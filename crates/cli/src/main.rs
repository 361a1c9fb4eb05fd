//! `clearing`: the clearing ledger's command line.
//!
//! Layout: `app` parses arguments and configuration and dispatches to one
//! function per command; `report` formats reports (json, table, csv);
//! `gen` generates the seeded demo day; `bench` measures the pipeline.
//! `main` only turns the outcome into an exit status and a one-line reason.

mod app;
mod bench;
mod dispute;
mod gen;
mod replay;
mod report;

use std::process::ExitCode;

// The ledger allocates many small strings and maps per record (JSON in,
// JSON out); mimalloc makes that markedly cheaper than the system malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3): how long freed
/// memory stays mapped before it is returned to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Ingest and projection free and reallocate tens of MiB per batch; with
    // mimalloc's default 10 ms purge delay the kernel spent a quarter of
    // ingest zeroing pages handed back and forth. The processes are short
    // (or steady), so keeping freed memory mapped costs nothing.
    // SAFETY: setting an allocator option before any thread is spawned.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // Transparent huge pages made the kernel zero 2 MiB per first touch of
    // each fresh arena page: half the time of a reconciliation run went to
    // clearing pages. Plain pages are touched only as far as they are used.
    // (mimalloc's own allow_thp option is read before main; this is what it
    // does with it.)
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    app::main()
}
