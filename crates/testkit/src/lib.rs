//! Helpers shared by the ledger's tests.
//!
//! Layout: `seeded_runner` gives every randomized test a seed it prints (so
//! a failure replays exactly with `CLEARING_TEST_SEED=N`); `copy_dir`
//! copies a data directory, as an operator restoring a backup would.

use std::path::Path;

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A property-test runner seeded from `CLEARING_TEST_SEED`, or from the
/// clock when unset. The seed is printed; cargo shows it when a test fails.
pub fn seeded_runner(name: &str, cases: u32) -> TestRunner {
    let seed: u64 = std::env::var("CLEARING_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos() as u64
        });
    eprintln!("{name}: seed {seed} (replay with CLEARING_TEST_SEED={seed})");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
