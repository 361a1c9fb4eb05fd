//! Helpers shared by the ledger's tests.
//!
//! Layout: `test_seed` and `seeded_runner` give every randomized test a
//! seed they print (so a failure replays exactly with
//! `CLEARING_TEST_SEED=N`); `test_broker` is the test broker's address;
//! `copy_dir` copies a data directory, as an operator restoring a backup
//! would.

use std::path::Path;

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The seed of a randomized test: `CLEARING_TEST_SEED`, or the clock when
/// unset. It is printed; cargo shows it when the test fails.
pub fn test_seed(name: &str) -> u64 {
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
    seed
}

/// The bootstrap address of the broker `deploy/test.sh` starts. Tests that
/// need Kafka fail, not skip, when it is missing.
pub fn test_broker() -> String {
    std::env::var("CLEARING_TEST_KAFKA")
        .ok()
        .filter(|s| !s.is_empty())
        .expect("CLEARING_TEST_KAFKA is not set: run ./deploy/test.sh, which starts a broker and sets it")
}

/// A property-test runner seeded by `test_seed`.
pub fn seeded_runner(name: &str, cases: u32) -> TestRunner {
    let seed = test_seed(name);
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
