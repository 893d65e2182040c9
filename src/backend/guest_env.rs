//! The environment every command run inside a guest starts from (then the command's own
//! variables): nothing of the host's leaks in.

pub const BASE: [(&str, &str); 3] = [
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("HOME", "/root"),
    ("LANG", "C.UTF-8"),
];

/// `K=V` words: the base environment, then `extra`.
pub fn assignments(extra: &[(String, String)]) -> Vec<String> {
    BASE.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(extra.iter().map(|(k, v)| format!("{k}={v}")))
        .collect()
}
