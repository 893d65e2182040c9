//! The SSH runner against a real OpenSSH server on the loopback.

mod sshd;

use phoenix::exec::ssh::{SshOptions, SshRunner, Target};
use phoenix::exec::{Cmd, ExecError, Runner};
use std::time::{Duration, Instant};

fn runner(s: &sshd::Sshd, known_hosts: &str, accept_new: bool) -> SshRunner {
    let opts = SshOptions {
        identity: Some(s.path("client_key")),
        known_hosts: s.path(known_hosts),
        accept_new_host_keys: accept_new,
        connect_timeout: Duration::from_secs(5),
        keepalive: Duration::from_secs(15),
    };
    SshRunner::new(s.target().parse::<Target>().unwrap(), opts, false)
}

#[test]
fn commands_exit_codes_stdin_env_and_one_session() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    let out = r
        .output(
            &Cmd::probe(["sh", "-c", "cat; echo \"[$GREETING]\" >&2; exit 7"])
                .stdin("from stdin\n")
                .env("GREETING", "hello world"),
        )
        .unwrap();
    assert_eq!(out.code, Some(7));
    assert_eq!(out.stdout_str(), "from stdin\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "[hello world]\n");
    assert!(matches!(
        r.run(&Cmd::probe(["false"])),
        Err(ExecError::Failed { code: Some(1), .. })
    ));
    for i in 0..20 {
        assert_eq!(
            r.run(&Cmd::probe(["echo", &i.to_string()]))
                .unwrap()
                .stdout_str(),
            format!("{i}\n")
        );
    }
    assert_eq!(s.logins(), 1, "every command shares one session");
}

#[test]
fn hostile_arguments_survive_the_remote_shell() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    let corpus = [
        "",
        " ",
        "it's",
        "\"",
        "$(id)",
        "`id`",
        "${HOME}",
        "a;b",
        "a&&b",
        "a|b",
        "a\nb",
        "*",
        "?",
        "[a-z]",
        "~",
        "#x",
        "!",
        "\\",
        "-n",
        "é ü 漢字 🦀",
        "> /tmp/x",
        "{a,b}",
        "%s",
    ];
    let mut argv = vec!["printf".to_string(), "%s\\0".to_string()];
    argv.extend(corpus.iter().map(|s| s.to_string()));
    let out = r.run(&Cmd::probe(argv)).unwrap();
    let mut got: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    got.pop();
    assert_eq!(got, corpus);
}

#[test]
fn unknown_host_keys_are_refused_with_their_fingerprint() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "empty_known_hosts", false);
    let err = r.connect().unwrap_err().to_string();
    let fp = s.host_fingerprint();
    assert!(fp.starts_with("SHA256:"));
    assert!(err.contains(&fp), "{err} lacks {fp}");
    assert!(
        err.contains("ssh-keyscan -p") && err.contains("--accept-new-host-keys"),
        "{err}"
    );
    assert!(r.output(&Cmd::probe(["true"])).is_err());
    // With --accept-new-host-keys the key is added, and trusted from then on.
    runner(&s, "empty_known_hosts", true)
        .run(&Cmd::probe(["true"]))
        .unwrap();
    runner(&s, "empty_known_hosts", false)
        .run(&Cmd::probe(["true"]))
        .unwrap();
}

#[test]
fn a_changed_host_key_is_refused_even_with_accept_new() {
    let Some(s) = sshd::Sshd::start() else { return };
    let other = s.path("other_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    std::fs::write(
        s.path("wrong_known_hosts"),
        format!("[127.0.0.1]:{} {pubkey}", s.port),
    )
    .unwrap();
    let err = runner(&s, "wrong_known_hosts", true)
        .connect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CHANGED") && err.contains("ssh-keygen -R"),
        "{err}"
    );
}

#[test]
fn a_wrong_key_fails_authentication_clearly() {
    let Some(s) = sshd::Sshd::start() else { return };
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(s.path("stranger"))
        .status()
        .unwrap();
    let mut opts = SshOptions {
        identity: Some(s.path("stranger")),
        known_hosts: s.path("known_hosts"),
        ..SshOptions::default()
    };
    opts.connect_timeout = Duration::from_secs(5);
    let err = SshRunner::new(s.target().parse().unwrap(), opts, false)
        .connect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("authentication as root") && err.contains("--identity"),
        "{err}"
    );
}

#[test]
fn command_and_connect_timeouts() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    let t = Instant::now();
    let err = r
        .run(&Cmd::probe(["sleep", "30"]).timeout(Duration::from_millis(400)))
        .unwrap_err();
    assert!(matches!(err, ExecError::Timeout { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        r.run(&Cmd::probe(["echo", "still here"]))
            .unwrap()
            .stdout_str(),
        "still here\n"
    );

    // A listener that never speaks SSH: the handshake times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let opts = SshOptions {
        identity: Some(s.path("client_key")),
        known_hosts: s.path("known_hosts"),
        connect_timeout: Duration::from_millis(500),
        ..SshOptions::default()
    };
    let t = Instant::now();
    let err = SshRunner::new(
        format!("root@127.0.0.1:{port}").parse().unwrap(),
        opts.clone(),
        false,
    )
    .connect()
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot connect"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // Nothing listening: refused at once.
    drop(silent);
    let err = SshRunner::new(
        format!("root@127.0.0.1:{port}").parse().unwrap(),
        opts,
        false,
    )
    .connect()
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn a_dropped_session_is_reconnected_once() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    r.run(&Cmd::probe(["true"])).unwrap();
    s.drop_sessions();
    assert_eq!(
        r.run(&Cmd::probe(["echo", "again"])).unwrap().stdout_str(),
        "again\n"
    );
    assert_eq!(s.logins(), 2);
}

#[test]
fn large_output_on_both_streams() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    let script =
        "head -c 3000000 /dev/zero | tr '\\0' o & head -c 2000000 /dev/zero | tr '\\0' e >&2; wait";
    let out = r
        .run(&Cmd::probe(["sh", "-c", script]).timeout(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(out.stdout.len(), 3_000_000);
    assert_eq!(out.stderr.len(), 2_000_000);
    assert!(out.stdout.iter().all(|b| *b == b'o') && out.stderr.iter().all(|b| *b == b'e'));
}

#[test]
fn files_travel_over_sftp() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    let dest = s.path("uploaded.sh");
    r.put_file(&dest, b"#!/bin/sh\necho uploaded\n", 0o700)
        .unwrap();
    assert_eq!(
        r.run(&Cmd::probe([dest.to_str().unwrap()]))
            .unwrap()
            .stdout_str(),
        "uploaded\n"
    );
}

#[test]
fn keepalives_while_idle_keep_the_one_session_usable() {
    let Some(s) = sshd::Sshd::start() else { return };
    let opts = SshOptions {
        identity: Some(s.path("client_key")),
        known_hosts: s.path("known_hosts"),
        keepalive: Duration::from_millis(300),
        ..SshOptions::default()
    };
    let r = SshRunner::new(s.target().parse::<Target>().unwrap(), opts, false);
    r.run(&Cmd::probe(["true"])).unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // several keepalives go out
    assert_eq!(
        r.run(&Cmd::probe(["echo", "after idling"]))
            .unwrap()
            .stdout_str(),
        "after idling\n"
    );
    assert_eq!(s.logins(), 1, "the same session served both commands");
}

#[test]
fn commands_from_several_threads_run_at_once_on_one_connection() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    let dir = tempfile::tempdir().unwrap();
    let stamp = |i: usize, what: &str| dir.path().join(format!("{i}.{what}"));
    std::thread::scope(|scope| {
        for i in 0..4 {
            let (r, start, end) = (&r, stamp(i, "start"), stamp(i, "end"));
            scope.spawn(move || {
                let script = "date +%s.%N > \"$1\"; sleep 1; date +%s.%N > \"$2\"";
                let argv = ["sh", "-c", script, "sh"].map(String::from);
                let paths = [start, end].map(|p| p.to_string_lossy().into_owned());
                r.run(&Cmd::probe(argv.into_iter().chain(paths))).unwrap();
            });
        }
    });
    let read = |i, what| -> f64 {
        std::fs::read_to_string(stamp(i, what))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let last_start = (0..4).map(|i| read(i, "start")).fold(f64::MIN, f64::max);
    let first_end = (0..4).map(|i| read(i, "end")).fold(f64::MAX, f64::min);
    assert!(
        last_start < first_end,
        "all four started ({last_start}) before any ended ({first_end})"
    );
    assert_eq!(s.logins(), 1, "the four commands shared one connection");
}

#[test]
fn a_timeout_ends_only_its_own_command() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    r.run(&Cmd::probe(["true"])).unwrap();
    std::thread::scope(|scope| {
        let slow =
            scope.spawn(|| r.run(&Cmd::probe(["sleep", "30"]).timeout(Duration::from_millis(300))));
        let fine = scope.spawn(|| r.run(&Cmd::probe(["sh", "-c", "sleep 1; echo done"])));
        let err = slow.join().unwrap().unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }), "{err}");
        assert_eq!(fine.join().unwrap().unwrap().stdout_str(), "done\n");
    });
    assert_eq!(
        r.run(&Cmd::probe(["echo", "after"])).unwrap().stdout_str(),
        "after\n"
    );
    assert_eq!(s.logins(), 1, "the timeout did not cost the connection");
}

#[test]
fn uploads_replace_a_file_without_it_ever_missing() {
    let Some(s) = sshd::Sshd::start() else { return };
    let r = runner(&s, "known_hosts", false);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("config");
    r.put_file(&dest, b"first\n", 0o644).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut missing = 0;
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut missing = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                missing += usize::from(!dest.exists());
            }
            missing
        });
        // A command runs on another channel while the uploads go.
        let other = scope.spawn(|| r.run(&Cmd::probe(["sh", "-c", "sleep 1; echo other"])));
        for i in 0..20 {
            r.put_file(&dest, format!("version {i}\n").as_bytes(), 0o600)
                .unwrap();
        }
        assert_eq!(other.join().unwrap().unwrap().stdout_str(), "other\n");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        missing = watcher.join().unwrap();
    });
    assert_eq!(missing, 0, "the file went missing during an upload");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "version 19\n");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["config"], "no temp file is left");
    assert_eq!(s.logins(), 1);
}
