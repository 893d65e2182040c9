//! Upstream application scripts, run unchanged. The bash tool ran each from `/tmp/phoenix_run/`
//! inside the container, beside its helper library and copies of the config files; the scripts
//! source the library from there (`/tmp/phoenix_run/phoenix_hypervisor_common_utils.sh`, or the
//! directory of the script) and read the copies through it. Phoenix stages the same: its own
//! library with the functions those scripts call (`upstream_utils.sh`) and the copies, with every
//! secret taken out.

use crate::config::Fleet;
use serde_json::Value;
use std::path::Path;

/// Where upstream's scripts run from, and expect their helpers.
pub const STAGE_DIR: &str = "/tmp/phoenix_run";
const UTILS_NAME: &str = "phoenix_hypervisor_common_utils.sh";
const UTILS: &[u8] = include_bytes!("upstream_utils.sh");

/// A file put beside the script before it runs.
#[derive(Debug, Clone)]
pub struct Staged {
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Where the application script named `name` (a path in the config) goes.
pub fn script_path(name: &str) -> String {
    let base = Path::new(name)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_else(|| "application_script.sh".into());
    format!("{STAGE_DIR}/{base}")
}

/// The helper library, as its digest input (a new library runs the scripts again).
pub fn utils() -> &'static [u8] {
    UTILS
}

/// The library and the three config files, as upstream named them, without secrets.
pub fn staged(fleet: &Fleet) -> Vec<Staged> {
    let files = [
        (
            "phoenix_lxc_configs.json",
            &fleet.sources.lxc,
            r#"{"lxc_configs":{}}"#,
        ),
        (
            "phoenix_vm_configs.json",
            &fleet.sources.vm,
            r#"{"vms":[]}"#,
        ),
        (
            "phoenix_hypervisor_config.json",
            &fleet.sources.hypervisor,
            "{}",
        ),
    ];
    let mut out = vec![Staged {
        path: format!("{STAGE_DIR}/{UTILS_NAME}"),
        data: UTILS.to_vec(),
        mode: 0o644,
    }];
    for (name, source, empty) in files {
        let mut value: Value = source
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::from_str(empty).unwrap_or(Value::Null));
        scrub(&mut value);
        out.push(Staged {
            path: format!("{STAGE_DIR}/{name}"),
            data: serde_json::to_vec_pretty(&value).unwrap_or_default(),
            mode: 0o600,
        });
    }
    out
}

/// Takes out every value whose key names a secret (`admin_password`, `api_key`, `password_hash`,
/// `token`, ...), at any depth; keys that name files holding secrets (`hf_token_file`) stay.
pub fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !is_secret_key(k));
            map.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Whether `key` names a secret: one of its words (snake_case or camelCase) is `password`,
/// `passwd`, `secret`, `token`, `passphrase`, or `api`+`key`, `private`+`key`; keys naming a file
/// or path that holds one (`hf_token_file`) are not secrets themselves.
fn is_secret_key(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "secrets",
        "token",
        "passphrase",
        "apikey",
    ];
    let words = words_of(key);
    if matches!(words.last().map(String::as_str), Some("file" | "path")) {
        return false;
    }
    let pair = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    words.iter().any(|w| WORDS.contains(&w.as_str()))
        || pair("api", "key")
        || pair("private", "key")
}

/// `adminPassword` and `admin_password` alike: `["admin", "password"]`.
fn words_of(key: &str) -> Vec<String> {
    let mut words = vec![String::new()];
    let mut prev_lower = false;
    for c in key.chars() {
        if c == '_' || c == '-' || c == '.' {
            words.push(String::new());
        } else {
            if c.is_ascii_uppercase() && prev_lower {
                words.push(String::new());
            }
            if let Some(w) = words.last_mut() {
                w.push(c.to_ascii_lowercase());
            }
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    words.retain(|w| !w.is_empty());
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_taken_out_at_any_depth_and_file_paths_stay() {
        let mut v = json!({
            "portainer_api": {"admin_password": "p", "api_key": "k", "url": "u"},
            "users": [{"name": "a", "password_hash": "h", "ssh_public_key": "pk"}],
            "core_paths": {"hf_token_file": "/etc/hf"},
            "vllm": {"max_num_batched_tokens": 8192, "token": "t"},
            "cloud": {"aws_secret_access_key": "a", "adminPassword": "b", "secrets": {"x": 1},
                      "secret_key": "c", "private_key_path": "/k", "keyboard": "us"}
        });
        scrub(&mut v);
        assert_eq!(
            v,
            json!({
                "portainer_api": {"url": "u"},
                "users": [{"name": "a", "ssh_public_key": "pk"}],
                "core_paths": {"hf_token_file": "/etc/hf"},
                "vllm": {"max_num_batched_tokens": 8192},
                "cloud": {"private_key_path": "/k", "keyboard": "us"}
            })
        );
    }

    #[test]
    fn the_script_goes_where_upstream_put_it() {
        assert_eq!(
            script_path("bin/phoenix_hypervisor_lxc_vllm.sh"),
            "/tmp/phoenix_run/phoenix_hypervisor_lxc_vllm.sh"
        );
    }
}
