//! The tokens file of SPEC §12: `[[token]]` entries of `name`, `role` and
//! `sha256` (hex of the token's SHA-256). The token itself is never
//! stored; `add` prints it once.

use std::path::Path;

use clearing_app::core::hex;
use clearing_app::AppError;
use serde::Deserialize;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every read.
    Viewer,
    /// Viewer, plus ingest, reconciliation, break resolution and payout
    /// prepare, export and result.
    Operator,
    /// Viewer, plus payout approval.
    Approver,
    /// Everything, reference-data loads included.
    Admin,
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Read,
    Operate,
    Approve,
    Administer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what a route needs.
    pub fn may(self, need: Need) -> bool {
        matches!(
            (self, need),
            (Role::Admin, _)
                | (_, Need::Read)
                | (Role::Operator, Need::Operate)
                | (Role::Approver, Need::Approve)
        )
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Token {
    pub name: String,
    pub role: Role,
    pub sha256: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Tokens {
    #[serde(default)]
    pub token: Vec<Token>,
}

impl Tokens {
    /// Reads a tokens file; a missing file is no tokens.
    pub fn load(path: &Path) -> Result<Tokens, AppError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(AppError::storage(format!(
                    "reading {}: {e}",
                    path.display()
                )))
            }
        };
        let tokens: Tokens = toml::from_str(&text)
            .map_err(|e| AppError::input(format!("{}: {}", path.display(), e.message())))?;
        for t in &tokens.token {
            if hex::decode(&t.sha256).map(|b| b.len()) != Some(32) {
                return Err(AppError::input(format!(
                    "{}: token {:?}: sha256 must be 64 hex digits",
                    path.display(),
                    t.name
                )));
            }
        }
        Ok(tokens)
    }

    /// The entry of a presented token.
    pub fn find(&self, presented: &str) -> Option<&Token> {
        let digest = hex::sha256(presented.as_bytes());
        self.token
            .iter()
            .find(|t| t.sha256.eq_ignore_ascii_case(&digest))
    }
}

/// `clearing token add`: appends an entry for a new random token (256
/// bits) and returns the token, to be printed once.
pub fn add(path: &Path, name: &str, role: Role) -> Result<String, AppError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        return Err(AppError::input(
            "--name must be letters, digits, '.', '_', '-' or '@'",
        ));
    }
    let tokens = Tokens::load(path)?;
    if tokens.token.iter().any(|t| t.name == name) {
        return Err(AppError::conflict(format!(
            "{} already has a token named {name:?}",
            path.display()
        )));
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| AppError::storage(format!("no randomness for a token: {e}")))?;
    let token = hex::encode(&bytes);
    let entry = format!(
        "\n[[token]]\nname = \"{name}\"\nrole = \"{}\"\nsha256 = \"{}\"\n",
        role.as_str(),
        hex::sha256(token.as_bytes())
    );
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(entry.as_bytes()).map(|_| f))
        .map_err(|e| AppError::storage(format!("writing {}: {e}", path.display())))?;
    f.flush()
        .and_then(|_| f.sync_all())
        .map_err(|e| AppError::storage(format!("writing {}: {e}", path.display())))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_may_what_section_12_says() {
        use Need::*;
        use Role::*;
        let table = [
            (Viewer, [true, false, false, false]),
            (Operator, [true, true, false, false]),
            (Approver, [true, false, true, false]),
            (Admin, [true, true, true, true]),
        ];
        for (role, may) in table {
            for (need, want) in [Read, Operate, Approve, Administer].into_iter().zip(may) {
                assert_eq!(role.may(need), want, "{role:?} {need:?}");
            }
        }
    }

    #[test]
    fn an_added_token_is_found_by_itself_and_stored_only_as_its_digest() {
        let dir = tempfile_dir();
        let path = dir.join("tokens.toml");
        let a = add(&path, "alice", Role::Operator).unwrap();
        let b = add(&path, "bob", Role::Approver).unwrap();
        assert_eq!(a.len(), 64);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&a) && !text.contains(&b));
        let t = Tokens::load(&path).unwrap();
        assert_eq!(t.find(&a).unwrap().name, "alice");
        assert_eq!(t.find(&b).unwrap().role, Role::Approver);
        assert!(t.find("nope").is_none());
        assert!(add(&path, "alice", Role::Viewer).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "clearing-tokens-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
