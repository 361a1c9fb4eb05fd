//! `clearing`: the clearing ledger's command line.
//!
//! Layout: `args` is what clap parses; `commands` calls the application
//! layer (`clearing_app`) for each command and hands the typed result to
//! `render` (json, table, csv); `demo` runs the whole day on data from
//! `gen`, the seeded generator; `bench` drives the benchmark. `main` only
//! turns the outcome into an exit status and a one-line reason.

mod args;
mod bench;
mod commands;
mod demo;
mod gen;
mod payouts;
mod render;

use std::process::ExitCode;

use clap::Parser;

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
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1)
    };
    // Transparent huge pages made the kernel zero 2 MiB per first touch of
    // each fresh arena page: half the time of a reconciliation run went to
    // clearing pages. Plain pages are touched only as far as they are used.
    // (mimalloc's own allow_thp option is read before main; this is what it
    // does with it.)
    // SAFETY: prctl with integer arguments only.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0)
    };
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLEARING_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader closed our stdout (`| head`): stop quietly.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("clearing: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version go to stdout as clap prints them; any other usage
/// error is one line on stderr and exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    eprintln!("clearing: {}", usage_line(&e.render().to_string()));
    ExitCode::from(2)
}

/// One line out of clap's message: its first line without "error: ", and
/// when that line announces a list ("…not provided:"), the list's items
/// (the missing options' names) on it too.
fn usage_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    if !first.ends_with(':') {
        return first;
    }
    let items: Vec<&str> = lines
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    format!("{first} {}", items.join(", "))
}
