//! What can be checked here of the production deployment (there is no
//! container engine): `deploy/compose.yaml` parses (PyYAML, installed by
//! `deploy/test.sh` beside the outside Kafka client) and runs the Kafka
//! version and the replication settings the tests run; every setting it
//! and the systemd units give the ledger is one `clearing` reads; the
//! units pass `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_clearing");

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .canonicalize()
        .unwrap()
        .join(name)
}

fn compose() -> Value {
    let python = std::env::var("CLEARING_TEST_PYTHON").expect(
        "CLEARING_TEST_PYTHON is not set: run ./deploy/test.sh, which installs the outside client",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/deploy/yaml_to_json.py");
    let out = Command::new(python)
        .arg(script)
        .arg(deploy("compose.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compose.yaml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The Kafka version `deploy/dev-broker.sh` (the tests' broker) runs.
fn tested_kafka_version() -> String {
    let script = std::fs::read_to_string(deploy("dev-broker.sh")).unwrap();
    script
        .lines()
        .find_map(|l| l.strip_prefix("KAFKA_VERSION="))
        .expect("KAFKA_VERSION in dev-broker.sh")
        .to_string()
}

/// The environment variables `clearing` reads, from its own help.
fn settings_clearing_reads() -> String {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    help(&["--help"]) + &help(&["serve", "--help"])
}

#[test]
fn the_compose_file_runs_three_kafka_nodes_as_the_tests_do_and_the_ledger_on_them() {
    let c = compose();
    let services = c["services"].as_object().unwrap();
    let version = tested_kafka_version();
    for n in 1..=3 {
        let node = &services[&format!("kafka-{n}")];
        assert_eq!(node["image"], format!("apache/kafka:{version}"));
        let env = &node["environment"];
        assert_eq!(env["KAFKA_NODE_ID"], n.to_string());
        assert_eq!(env["KAFKA_PROCESS_ROLES"], "broker,controller");
        assert_eq!(
            env["KAFKA_CONTROLLER_QUORUM_VOTERS"],
            "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        );
        // what dev-broker.sh writes for three nodes
        for (key, value) in [
            ("KAFKA_DEFAULT_REPLICATION_FACTOR", "3"),
            ("KAFKA_MIN_INSYNC_REPLICAS", "2"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "3"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "2"),
            ("KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE", "false"),
            ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false"),
            ("KAFKA_LOG_RETENTION_MS", "-1"),
        ] {
            assert_eq!(env[key], value, "kafka-{n} {key}");
        }
        assert!(node["healthcheck"]["test"].is_array(), "kafka-{n}");
        assert!(node["volumes"][0]
            .as_str()
            .unwrap()
            .ends_with(":/var/lib/kafka/data"));
    }
    let ledger = &services["clearing"];
    assert_eq!(
        ledger["command"],
        serde_json::json!(["serve", "--listen", "0.0.0.0:8080"])
    );
    assert_eq!(ledger["ports"][0], "127.0.0.1:8080:8080");
    let help = settings_clearing_reads();
    for key in ledger["environment"].as_object().unwrap().keys() {
        assert!(
            help.contains(&format!("[env: {key}=")) || key == "CLEARING_LOG",
            "clearing reads no {key}"
        );
    }
    assert_eq!(
        ledger["environment"]["CLEARING_KAFKA"],
        "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    );
    for n in 1..=3 {
        assert_eq!(
            ledger["depends_on"][format!("kafka-{n}")]["condition"],
            "service_healthy"
        );
    }
}

#[test]
fn the_systemd_units_verify_and_give_only_settings_the_ledger_reads() {
    let help = settings_clearing_reads();
    let env = std::fs::read_to_string(deploy("systemd/clearing.env")).unwrap();
    for line in env.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (key, _) = line.split_once('=').unwrap();
        assert!(
            help.contains(&format!("[env: {key}=")) || key == "CLEARING_LOG",
            "clearing reads no {key}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in std::fs::read_dir(deploy("systemd")).unwrap() {
        let path = unit.unwrap().path();
        if path.extension().is_none_or(|e| e != "service") {
            continue;
        }
        // the unit as installed, pointed at this checkout's binary and env
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/local/bin/clearing", BIN)
            .replace(
                "/etc/clearing/clearing.env",
                &deploy("systemd/clearing.env").display().to_string(),
            );
        let copy = dir.path().join(path.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .expect("systemd-analyze (Debian's systemd) checks the units");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
