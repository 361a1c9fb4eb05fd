//! `clearing bench`: the pipeline benchmark. Figures, never assertions.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use crate::app::{Config, Format};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 100_000)]
    pub txns: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn run(_cfg: &Config, _args: BenchArgs, _out: &mut impl Write) -> Result<()> {
    anyhow::bail!("bench: not built yet")
}
