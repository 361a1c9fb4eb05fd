//! Broker failure on a three-node Apache Kafka cluster of this test's own
//! (`deploy/dev-broker.sh start --nodes 3`): the leader of a partition is
//! SIGKILLed during an ingest. The ingest completes, or stops within its
//! bound and completes on a rerun; no acknowledged event is lost or
//! doubled; the reports equal a clean run on the embedded log; the node
//! restarts and rejoins. The seed of the random moment is printed;
//! `CLEARING_TEST_SEED=N` replays it.

mod day;

use std::process::Stdio;
use std::time::{Duration, Instant};

use clearing_testkit::{test_seed as seed, OwnBroker, Reaped};
use day::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// One partition's line of `kafka-topics --describe`.
#[derive(Debug)]
struct PartitionState {
    partition: u32,
    leader: u32,
    isr: Vec<u32>,
}

/// The topic's replication factor, its configuration, and each partition,
/// as Kafka's own `TopicCommand --describe` prints them.
fn describe(cluster: &OwnBroker, topic: &str) -> (u32, String, Vec<PartitionState>) {
    let out = cluster.tool(
        "org.apache.kafka.tools.TopicCommand",
        &["--describe", "--topic", topic],
    );
    let field = |line: &str, name: &str| -> String {
        line.split('\t')
            .map(str::trim)
            .find_map(|f| f.strip_prefix(&format!("{name}: ")))
            .unwrap_or_default()
            .to_string()
    };
    let mut lines = out.lines();
    let head = lines.next().unwrap_or_else(|| panic!("no output: {out}"));
    let rf = field(head, "ReplicationFactor").parse().unwrap();
    let configs = field(head, "Configs");
    let partitions = lines
        .filter(|l| l.contains("Partition: "))
        .map(|l| PartitionState {
            partition: field(l, "Partition").parse().unwrap(),
            leader: field(l, "Leader").parse().unwrap_or(0),
            isr: field(l, "Isr")
                .split(',')
                .filter_map(|n| n.parse().ok())
                .collect(),
        })
        .collect();
    (rf, configs, partitions)
}

#[test]
fn a_partition_leader_killed_mid_ingest_loses_and_doubles_nothing_and_rejoins() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed("cluster_leader_kill"));
    let day = Day::generate(60_000);
    let cluster = OwnBroker::start(3);
    let prefix = format!("cluster-{}", rng.gen::<u32>());
    let topic = format!("{prefix}.events");
    let kafka = || Some((cluster.address.clone(), prefix.as_str()));
    let writer = tempfile::tempdir().unwrap();
    load_reference_on(writer.path(), kafka(), &day.input);

    // the topics as the ledger created them on this cluster
    let (rf, configs, partitions) = describe(&cluster, &topic);
    assert_eq!(rf, 3, "{configs}");
    assert!(configs.contains("min.insync.replicas=2"), "{configs}");
    assert!(configs.contains("retention.ms=-1"), "{configs}");
    let numbers: Vec<u32> = partitions.iter().map(|p| p.partition).collect();
    assert_eq!(numbers, [0, 1, 2, 3]);
    assert!(
        partitions.iter().all(|p| p.isr.len() == 3),
        "{partitions:?}"
    );

    // The day from stdin at a steady pace (a chunk every 100 ms, ~5 s in
    // all); the leader of partition 0 dies while lines still come in.
    let leader = partitions[0].leader;
    let mut ingest = Reaped::new(
        command_on(writer.path(), kafka(), &["ingest", "-", "--format", "json"])
            .env("CLEARING_KAFKA_TIMEOUT_SECS", "60")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let feeder = feed(ingest.stdin.take().unwrap(), &day.file, 1_200, |_| {
        std::thread::sleep(Duration::from_millis(100))
    });
    std::thread::sleep(Duration::from_millis(rng.gen_range(1500..3500)));
    assert!(
        ingest.try_wait().unwrap().is_none(),
        "the ingest ended before the leader was killed"
    );
    let killed_at = Instant::now();
    cluster.crash(leader);
    let out = ingest.into_inner().wait_with_output().unwrap();
    feeder.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "node {leader} killed; the ingest ended {:?} later ({}): {stderr}",
        killed_at.elapsed(),
        out.status
    );
    let summary: Value = if out.status.success() {
        serde_json::from_slice(&out.stdout).unwrap()
    } else {
        // stopped within its bound, saying how far it got; a rerun on the
        // two nodes left completes it
        assert!(killed_at.elapsed() < Duration::from_secs(120), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("run the same file again"), "{stderr}");
        json_on(
            writer.path(),
            kafka(),
            &["ingest", &day.file, "--format", "json"],
        )
    };
    assert_completes_the_clean_run(&summary, &day);

    // nothing lost, nothing doubled: the chains hold over every partition
    // (a doubled record breaks its chain), a fresh projection of the
    // cluster gives the clean run's reports
    ok(command_on(writer.path(), kafka(), &["verify"])
        .output()
        .unwrap());
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(reports_on(fresh.path(), kafka()), day.clean_reports);
    assert_eq!(reports_on(writer.path(), kafka()), day.clean_reports);

    // the node comes back and rejoins every partition's in-sync replicas
    cluster.resume(leader);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, _, partitions) = describe(&cluster, &topic);
        if partitions.iter().all(|p| p.isr.contains(&leader)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {leader} did not rejoin: {partitions:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // and the ledger reads the same from the whole cluster again
    let again = tempfile::tempdir().unwrap();
    assert_eq!(reports_on(again.path(), kafka()), day.clean_reports);
}
