//! Secrets by reference: a password (or hash) is named in the config by where it is kept, and read
//! only when a step hands it to its consumer, through stdin, never an argument. Upstream's files
//! hold values in clear; those are still read, with a warning saying how to move them.
//!
//! ```json
//! "password_hash": {"file": "/etc/phoenix/secrets/ops.hash"}
//! "password_hash": {"env": "PHOENIX_OPS_HASH"}
//! "password_hash": {"credential": "ops-hash"}     // systemd: $CREDENTIALS_DIRECTORY/ops-hash
//! ```

use super::decode::Node;
use super::values::Secret;
use serde::Serialize;

/// Where a secret is kept. Serialized (for step digests and plans) without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    File(String),
    Env(String),
    Credential(String),
    /// A value written in the file itself (upstream's shape).
    Inline(Secret),
}

impl SecretRef {
    /// The value, read now on the machine Phoenix runs on; an empty one is an error.
    pub fn resolve(&self) -> Result<Secret, String> {
        let secret = self.read()?;
        match secret.expose().trim().is_empty() {
            true => Err(format!("the secret ({}) is empty", self.place())),
            false => Ok(secret),
        }
    }

    /// Where it is kept, for messages (never the value).
    fn place(&self) -> String {
        match self {
            SecretRef::File(p) => format!("file {p}"),
            SecretRef::Env(v) => format!("environment variable {v}"),
            SecretRef::Credential(c) => format!("credential {c}"),
            SecretRef::Inline(_) => "written in the config".into(),
        }
    }

    fn read(&self) -> Result<Secret, String> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
                .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))
        };
        match self {
            SecretRef::Inline(s) => Ok(s.clone()),
            SecretRef::File(p) => read(std::path::Path::new(p)),
            SecretRef::Env(v) => std::env::var(v)
                .map(Secret::new)
                .map_err(|_| format!("the environment variable {v} holding the secret is not set")),
            SecretRef::Credential(name) => match std::env::var_os("CREDENTIALS_DIRECTORY") {
                Some(dir) => read(&std::path::Path::new(&dir).join(name)),
                None => Err(format!(
                    "the systemd credential {name:?} is not available (CREDENTIALS_DIRECTORY is not set: \
                     run Phoenix from a unit with LoadCredential={name}:...)"
                )),
            },
        }
    }
}

/// A secret field: `{"file"|"env"|"credential": ...}`, or a value in clear (warned). `absent`
/// values (upstream's `"NOT_SET"`, `""`) mean none.
pub fn secret(n: Node<'_>, absent: &[&str]) -> Option<SecretRef> {
    if let Some(s) = n.value.as_str() {
        if absent.contains(&s) {
            return None;
        }
        n.warning(
            "a secret written in clear in the config file",
            Some(
                "keep it elsewhere and name it: {\"file\": PATH}, {\"env\": VAR} or {\"credential\": NAME}"
                    .into(),
            ),
        );
        return Some(SecretRef::Inline(Secret::new(s)));
    }
    let o = n.object()?;
    let found = [
        ("file", SecretRef::File as fn(String) -> SecretRef),
        ("env", SecretRef::Env),
        ("credential", SecretRef::Credential),
    ]
    .into_iter()
    .find_map(|(k, make)| Some(make(o.get(k)?.node().nonempty_str()?.to_string())));
    o.finish();
    if found.is_none() {
        n.error(
            "a secret reference names none of file, env, credential",
            Some("{\"file\": \"/etc/phoenix/secrets/NAME\"}".into()),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_secret_is_an_error_that_names_where_it_is_kept() {
        let inline = SecretRef::Inline(Secret::new("  "));
        assert!(inline.resolve().unwrap_err().contains("empty"));
        let missing = SecretRef::Env("PHOENIX_TEST_SURELY_UNSET_VAR".into());
        assert!(missing
            .resolve()
            .unwrap_err()
            .contains("PHOENIX_TEST_SURELY_UNSET_VAR"));
        let value = SecretRef::Inline(Secret::new("$6$salt$hash"));
        assert_eq!(value.resolve().unwrap().expose(), "$6$salt$hash");
        // Serialized for digests and plans: never the value.
        assert!(!serde_json::to_string(&value).unwrap().contains("hash"));
    }
}
