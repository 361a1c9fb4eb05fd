//! The whole API driven from its own OpenAPI document by schemathesis
//! (PyPI, installed by `deploy/test.sh` beside the outside Kafka client):
//! every operation of `/v1/openapi.json`, generated valid and invalid
//! requests, with every check but "valid data is accepted" (a fee schedule
//! can be a well-formed string and still not TOML): no 5xx, every status,
//! content type, header and body as the document says.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::service::{call, reconciled_day, serve, token};
use serde_json::Value;

/// The schemathesis of the venv whose python the tests were given.
fn schemathesis() -> PathBuf {
    let python = std::env::var("CLEARING_TEST_PYTHON").expect(
        "CLEARING_TEST_PYTHON is not set: run ./deploy/test.sh, which installs schemathesis",
    );
    PathBuf::from(python).with_file_name("schemathesis")
}

#[test]
fn every_operation_of_the_openapi_document_holds_under_schemathesis() {
    let dir = reconciled_day();
    let d = dir.path();
    let tokens = d.join("tokens.toml");
    let admin = token(&tokens, "ada", "admin");
    let s = serve(d, &tokens, &[], &["--requests-per-minute", "1000000"]);
    let (code, doc) = call(&s, "GET", "/v1/openapi.json", None, "");
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let junit = d.join("schemathesis.xml");
    let seed = std::env::var("CLEARING_TEST_SCHEMATHESIS_SEED").unwrap_or("20261120".into());
    let out = Command::new(schemathesis())
        .arg("run")
        .arg(format!("{}/v1/openapi.json", s.url))
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "all"])
        .args(["--exclude-checks", "positive_data_acceptance"])
        // one worker: with two, hypothesis's cache of lambda sources can
        // race and the run ends in an error of the tool's own (not a
        // finding about the API)
        .args(["--max-examples", "40", "--workers", "1", "--seed", &seed])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&junit)
        // its cache (.schemathesis/) goes beside the ledger
        .current_dir(d)
        .output()
        .expect("schemathesis");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{printed}"
    );
    // every operation of the document was run, none failed
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains(r#"failures="0""#) && report.contains(r#"errors="0""#));
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let name = format!("{} {path}", method.to_uppercase());
            assert!(
                report.contains(&format!("<testcase name=\"{name}\"")),
                "{name} was not run:\n{printed}"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 18, "every §12 route is in the document");
    // the bodies are described by their views, not as any object
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for view in ["SettlementReport", "StoriesView", "Statement", "PayoutView"] {
        assert!(
            schemas[view]["properties"]
                .as_object()
                .is_some_and(|p| !p.is_empty()),
            "{view}: {}",
            schemas[view]
        );
    }
    let settlement = &doc["paths"]["/v1/settlement/{date}"]["get"]["responses"]["200"];
    assert_eq!(
        settlement["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SettlementReport"
    );
}
