//! Snapshots (issue 14): a replay that starts from the newest snapshot at
//! or before its cut comes to the digest of the same cut replayed from the
//! first event, whatever the cut; a damaged snapshot is passed over with a
//! warning, never trusted, and `verify` names it.

mod common;

use clearing_app::core::{Cut, Positions, Timestamp};
use clearing_app::{
    replay, verify, Config, ReadLedger, Recorder, ReplayOptions, Replayed, Snapshots,
};
use common::*;

/// A small deterministic generator (splitmix64) for the cuts.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// The fixture day's transactions moved to 2026-11-(20 + day), with their
/// own ids and rrns.
fn day_lines(day: u32) -> Vec<String> {
    let date = 20 + day;
    read("transactions.jsonl")
        .lines()
        .map(|l| {
            l.replace("20261120", &format!("202611{date}"))
                .replace("2026-11-20", &format!("2026-11-{date}"))
                .replace("\"4321", &format!("\"43{day}1"))
        })
        .collect()
}

/// The test configuration, with a snapshot every `every` events, all kept.
fn snapshotting(dir: &std::path::Path, every: u64) -> Config {
    Config {
        snapshots: Snapshots { every, keep: 1_000 },
        ..config(dir)
    }
}

/// `cfg`'s log replayed to `cut` into `into`, in legs of 1,000 events.
fn replay_to(cfg: &Config, cut: &Cut, into: &std::path::Path, from_scratch: bool) -> Replayed {
    let options = ReplayOptions {
        leg_events: 1_000,
        from_scratch,
    };
    replay(cfg.live().unwrap(), cut, into, options, |_, _| {}).unwrap()
}

/// Three days ingested in random pieces, projected now and then, with a
/// snapshot every few events and at each date close; returns the times
/// taken between pieces.
fn ledger(cfg: &Config, rng: &mut Rng) -> Vec<Timestamp> {
    let mut r = Recorder::open(cfg.live().unwrap()).unwrap();
    load_reference(&mut r);
    drop(r);
    let mut times = Vec::new();
    for day in 0..3 {
        let lines = day_lines(day);
        let mut at = 0;
        while at < lines.len() {
            let end = (at + 1 + rng.below(12) as usize).min(lines.len());
            let piece = lines[at..end].join("\n") + "\n";
            let mut r = Recorder::open(cfg.live().unwrap()).unwrap();
            r.ingest("piece.jsonl", piece.as_bytes(), |_| {}).unwrap();
            drop(r);
            // Projected at random points, and at each day's end, so that
            // every day has a snapshot, whatever the seed.
            if rng.below(2) == 0 || end == lines.len() {
                clearing_app::project(cfg.live().unwrap()).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(3));
            times.push(cfg.clock.now());
            std::thread::sleep(std::time::Duration::from_millis(3));
            at = end;
        }
    }
    clearing_app::project(cfg.live().unwrap()).unwrap();
    times
}

fn random_cut(rng: &mut Rng, end: &Positions, times: &[Timestamp]) -> Cut {
    match rng.below(4) {
        0 => Cut::End,
        1 => Cut::RecordedBy(times[rng.below(times.len() as u64) as usize].clone()),
        _ => Cut::Before(end.iter().map(|(p, o)| (p, rng.below(o + 1))).collect()),
    }
}

#[test]
fn a_replay_from_a_snapshot_has_the_digest_of_the_same_cut_replayed_from_scratch() {
    let seed = clearing_testkit::test_seed("snapshot_replay");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let cfg = snapshotting(dir.path(), 5);
    let times = ledger(&cfg, &mut rng);
    let live = ReadLedger::open(&cfg).unwrap().digest().unwrap();
    let written = std::fs::read_dir(cfg.snapshot_dir()).unwrap().count();
    // Each day has more than 5 events and ends with a projection, which
    // writes a snapshot unless one was written during that day already.
    assert!(written >= 3, "only {written} snapshots were written");

    let mut from_snapshot = 0;
    for case in 0..10 {
        let cut = random_cut(&mut rng, &live.log_position, &times);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let fast = replay_to(&cfg, &cut, a.path(), false);
        let slow = replay_to(&cfg, &cut, b.path(), true);
        assert!(slow.marker.from_snapshot.is_none());
        assert!(fast.warnings.is_empty(), "{:?}", fast.warnings);
        assert_eq!(
            fast.digest, slow.digest,
            "seed {seed} case {case} cut {cut} from {:?}",
            fast.marker.from_snapshot
        );
        if let Some(s) = &fast.marker.from_snapshot {
            from_snapshot += 1;
            // only the tail was applied
            assert_eq!(
                fast.marker.events + s.log_position.total(),
                slow.marker.events,
                "seed {seed} case {case}"
            );
        }
        if cut == Cut::End {
            assert_eq!(fast.digest.digest, live.digest);
        }
    }
    // an end replay always has a snapshot to start from
    let end = tempfile::tempdir().unwrap();
    let r = replay_to(&cfg, &Cut::End, end.path(), false);
    assert!(r.marker.from_snapshot.is_some());
    assert!(
        from_snapshot >= 1,
        "seed {seed}: no random cut started from a snapshot"
    );
    assert!(verify(cfg.live().unwrap()).unwrap().ok);
}

#[test]
fn a_damaged_snapshot_is_passed_over_with_a_warning_and_verify_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = snapshotting(dir.path(), 10);
    ledger(&cfg, &mut Rng(7));
    let live = ReadLedger::open(&cfg).unwrap().digest().unwrap();
    let report = verify(cfg.live().unwrap()).unwrap();
    assert!(report.ok, "{:?}", report.failure());
    assert!(report.snapshots.len() >= 2);
    assert!(report.snapshots.iter().all(|c| c.equal));

    // the newest snapshot with one byte changed in its state
    let newest = clearing_app::snapshots::newest(&cfg).unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x20;
    std::fs::write(&newest, &bytes).unwrap();
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();

    let into = tempfile::tempdir().unwrap();
    let r = replay_to(&cfg, &Cut::End, into.path(), false);
    assert_eq!(r.digest.digest, live.digest);
    assert!(
        r.warnings.iter().any(|w| w.contains(&name)),
        "{:?}",
        r.warnings
    );
    let started = r.marker.from_snapshot.expect("an older snapshot is used");
    assert_ne!(started.file, name);

    let report = verify(cfg.live().unwrap()).unwrap();
    assert!(!report.ok);
    assert!(
        report.failure().unwrap().contains(&name),
        "{:?}",
        report.failure()
    );
}
