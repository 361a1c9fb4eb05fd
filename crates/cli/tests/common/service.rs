//! `clearing serve` started on a free port of 127.0.0.1 for a test, its
//! tokens, and one request at a time against it.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use clearing_testkit::Reaped;

use super::{ok, BIN};

/// A running service: stopped (and reaped) when dropped.
pub struct Service {
    pub child: Reaped,
    pub url: String,
}

/// Starts `clearing serve` on a free port of 127.0.0.1: `global` options
/// before the command, `options` of `serve` after it. Returns once it
/// listens.
pub fn serve(dir: &Path, tokens: &Path, global: &[&str], options: &[&str]) -> Service {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir);
    c.args(global);
    c.args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(tokens)
        .args(options)
        .env_remove("CLEARING_KAFKA")
        .env_remove("CLEARING_TOPIC_PREFIX")
        .stdout(Stdio::piped());
    let mut child = Reaped::new(c.spawn().unwrap());
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("clearing serve: listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    Service { child, url }
}

/// One request: status and body.
pub fn call(
    s: &Service,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut r = ureq::request(method, &format!("{}{path}", s.url));
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    let out = if method == "GET" {
        r.call()
    } else {
        r.send_string(body)
    };
    match out {
        Ok(resp) => (resp.status(), resp.into_string().unwrap()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// `clearing token add`: the new token.
pub fn token(tokens: &Path, name: &str, role: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "add", "--tokens"])
        .arg(tokens)
        .args(["--name", name, "--role", role])
        .output()
        .unwrap();
    ok(out).trim().to_string()
}

/// The fixture day, reconciled against its channel file.
pub fn reconciled_day() -> tempfile::TempDir {
    let dir = super::ingested();
    let f = super::fixture("channel-2026-11-20.csv")
        .display()
        .to_string();
    ok(super::clearing(
        dir.path(),
        &["recon", "--file", &f, "--date", "2026-11-20"],
    ));
    dir
}
