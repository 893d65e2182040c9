//! The one function that turns a value into shell text. Phoenix passes argv vectors everywhere;
//! this is used only where a command line must travel through a shell (SSH) or be shown to a
//! person. POSIX single quotes: every byte is literal inside them; a single quote is written as
//! `'\''`.

/// Quotes `s` for a POSIX shell. Plain words (letters, digits, and `_-./=:,+@%`) stay as they are.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes each element and joins them with spaces: a command line a shell splits back into
/// exactly `argv`.
pub fn join(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile strings survive a real shell round trip unchanged.
    #[test]
    fn hostile_corpus_round_trips_through_sh() {
        let corpus = [
            "",
            " ",
            "plain",
            "two words",
            "it's",
            "'",
            "''",
            "\"",
            "$(id)",
            "`id`",
            "${HOME}",
            "$HOME",
            "a;b",
            "a&&b",
            "a|b",
            "a\nb",
            "a\tb",
            "*",
            "?",
            "[a-z]",
            "~",
            "~root",
            "#comment",
            "!",
            "\\",
            "\\'",
            "-n",
            "--",
            "é ü 漢字 🦀",
            "a\rb",
            "$'\\x41'",
            "> /tmp/x",
            "< /etc/passwd",
            "(subshell)",
            "{a,b}",
            "%s%n",
            "=",
            "a=b c",
        ];
        let argv: Vec<String> = corpus.iter().map(|s| s.to_string()).collect();
        let script = format!("for a in {}; do printf '%s\\0' \"$a\"; done", join(&argv));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut got: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        got.pop();
        assert_eq!(got, argv);
    }

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(quote("lxc-attach"), "lxc-attach");
        assert_eq!(quote("/var/lib/lxc"), "/var/lib/lxc");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
