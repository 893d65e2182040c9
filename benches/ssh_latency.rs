//! Benchmark: per-command latency over SSH, Phoenix's runner (one session, a channel per command)
//! against OpenSSH's own `ssh -o ControlMaster` multiplexing, both to a real sshd on the loopback.
//! Run as root: `cargo bench --bench ssh_latency`.

#[path = "../tests/sshd/mod.rs"]
mod sshd;

use phoenix::exec::ssh::{SshOptions, SshRunner};
use phoenix::exec::{Cmd, Runner};
use std::process::Command;
use std::time::{Duration, Instant};

const N: usize = 200;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let Some(s) = sshd::Sshd::start() else { return };
    let opts = SshOptions {
        identity: Some(s.path("client_key")),
        known_hosts: s.path("known_hosts"),
        ..SshOptions::default()
    };
    let runner = SshRunner::new(s.target().parse().unwrap(), opts, false);
    let t = Instant::now();
    runner.connect().unwrap();
    let connect = t.elapsed();
    let phoenix: Vec<Duration> = (0..N)
        .map(|_| {
            let t = Instant::now();
            runner.run(&Cmd::probe(["true"])).unwrap();
            t.elapsed()
        })
        .collect();

    let control = s.path("cm.sock");
    let ssh = |extra: &[&str]| {
        let mut c = Command::new("ssh");
        c.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ControlMaster=auto",
            "-o",
            "ControlPersist=60",
        ])
        .arg("-o")
        .arg(format!("ControlPath={}", control.display()))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            s.path("known_hosts").display()
        ))
        .arg("-i")
        .arg(s.path("client_key"))
        .args(["-p", &s.port.to_string(), "root@127.0.0.1"])
        .args(extra);
        c
    };
    assert!(ssh(&["true"]).status().unwrap().success(), "ssh master");
    let openssh: Vec<Duration> = (0..N)
        .map(|_| {
            let t = Instant::now();
            assert!(ssh(&["true"]).status().unwrap().success());
            t.elapsed()
        })
        .collect();
    let _ = ssh(&["-O", "exit"]).status();
    let (p, o) = (median(phoenix), median(openssh));
    println!("ssh_latency: {N} commands (`true`) each");
    println!(
        "  phoenix runner (one session):  median {p:.2} ms per command (first connect {:.0} ms)",
        connect.as_secs_f64() * 1000.0
    );
    println!("  ssh -o ControlMaster:          median {o:.2} ms per command");
    println!(
        "  ratio phoenix / openssh:       {:.2} (target <= 1.5)",
        p / o
    );
}
