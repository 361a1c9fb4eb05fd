//! Helpers shared by the ledger's tests.
//!
//! Layout: `test_seed` and `seeded_runner` give every randomized test a
//! seed they print (so a failure replays exactly with
//! `CLEARING_TEST_SEED=N`); `test_broker` is the test broker's address;
//! `copy_dir` copies a data directory, as an operator restoring a backup
//! would; `Reaped` kills a child process when a test ends, passing or not;
//! `dev_broker` and `OwnBroker` run `deploy/dev-broker.sh` (a test's own
//! Kafka cluster, Kafka's own tools).

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

/// A child process killed (SIGKILL) and reaped when dropped, so that a
/// failing test leaves no follower or ingest running behind it.
pub struct Reaped(Option<std::process::Child>);

impl Reaped {
    pub fn new(child: std::process::Child) -> Reaped {
        Reaped(Some(child))
    }

    /// The child, no longer killed on drop.
    pub fn into_inner(mut self) -> std::process::Child {
        self.0.take().expect("present until dropped")
    }
}

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.0.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("present until dropped")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `deploy/dev-broker.sh` with `args`, on the broker whose state is in
/// `broker_dir` (`None`: the one `deploy/test.sh` started). Returns the
/// last line of its output (the address, for `start` and `resume`), or
/// the whole output for `tool`; panics when it fails.
pub fn dev_broker(broker_dir: Option<&Path>, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/dev-broker.sh");
    let mut c = std::process::Command::new(script);
    c.args(args);
    if let Some(dir) = broker_dir {
        c.env("CLEARING_BROKER_DIR", dir);
    }
    let out = c.output().expect("running deploy/dev-broker.sh");
    assert!(
        out.status.success(),
        "dev-broker.sh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    if args.first() == Some(&"tool") {
        text
    } else {
        text.lines().last().unwrap_or_default().to_string()
    }
}

/// A Kafka cluster of a test's own (`deploy/dev-broker.sh start --nodes N`
/// with its own state dir), so that crashing its nodes disturbs no other
/// test. Stopped on drop.
pub struct OwnBroker {
    dir: tempfile::TempDir,
    pub address: String,
}

impl OwnBroker {
    pub fn start(nodes: u32) -> OwnBroker {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let address = dev_broker(Some(dir.path()), &["start", "--nodes", &nodes.to_string()]);
        OwnBroker { dir, address }
    }

    /// SIGKILLs node `n` (1, 2, …), as a crash of its machine would.
    pub fn crash(&self, n: u32) {
        dev_broker(Some(self.dir.path()), &["kill", &n.to_string()]);
    }

    /// Starts node `n` again on its ports and its storage; waits until the
    /// cluster serves metadata.
    pub fn resume(&self, n: u32) {
        dev_broker(Some(self.dir.path()), &["resume", &n.to_string()]);
    }

    /// One of Kafka's own tools against this cluster; its standard output.
    pub fn tool(&self, class: &str, args: &[&str]) -> String {
        let mut all = vec!["tool", class, "--bootstrap-server", &self.address];
        all.extend_from_slice(args);
        dev_broker(Some(self.dir.path()), &all)
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        dev_broker(Some(self.dir.path()), &["stop"]);
    }
}
