//! The Debian package (`scripts/package`), in a fresh Debian 12 container (the test template):
//! installed with `dpkg -i`, its files, directories and man pages in place, the timer not
//! enabled and its service's output in the journal, `phoenix init`, `validate` (finding the
//! shipped features beside the binary) and `doctor` run by the installed binary; a fleet converged
//! on this host by the binary dpkg installed, its state in the container's store; an upgrade to
//! another version that keeps that state and the admin's /etc/default/phoenix; and
//! `dpkg --purge` leaving none of the package's files, and the state only when the user kept it.

mod lab;

use lab::{text, Lab};
use std::path::PathBuf;
use std::process::{Command, Output};

/// Builds the package (`version`: another version of the same build).
fn package(version: Option<&str>) -> PathBuf {
    let mut cmd = Command::new(lab::repo().join("scripts/package"));
    if let Some(v) = version {
        cmd.env("PHOENIX_PACKAGE_VERSION", v);
    }
    let out = cmd.output().expect("scripts/package");
    assert!(out.status.success(), "scripts/package: {}", text(&out));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs `script` with `sh -c` in container 900, as root.
fn sh(lab: &Lab, script: &str) -> Output {
    lab.attach(900, &["sh", "-c", script])
}

fn ok(lab: &Lab, script: &str) -> String {
    let out = sh(lab, script);
    assert!(out.status.success(), "{script}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies a file into container 900, through its stdin.
fn push(lab: &Lab, file: &std::path::Path, to: &str) {
    let status = Command::new("lxc-attach")
        .args([
            "-P",
            lab.lxc_path().to_str().unwrap(),
            "-n",
            &lab.arg(900),
            "--clear-env",
            "--",
        ])
        .args(["sh", "-c", "cat > \"$1\"", "sh", to])
        .stdin(std::fs::File::open(file).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The container's root as this host sees it (through its init's /proc entry).
fn root_of(lab: &Lab) -> PathBuf {
    let out = Command::new("lxc-info")
        .args([
            "-P",
            lab.lxc_path().to_str().unwrap(),
            "-n",
            &lab.arg(900),
            "-p",
            "-H",
        ])
        .output()
        .unwrap();
    PathBuf::from(format!(
        "/proc/{}/root",
        String::from_utf8_lossy(&out.stdout).trim()
    ))
}

#[test]
fn the_package_installs_upgrades_runs_and_purges() {
    let Some(lab) = Lab::new() else { return };
    let (v1, v2) = (package(None), package(Some("0.1.0+upgrade1")));
    lab.fleet().template(900, "debian").write();
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    push(&lab, &v1, "/root/v1.deb");
    push(&lab, &v2, "/root/v2.deb");

    ok(&lab, "dpkg -i /root/v1.deb");
    ok(&lab, "test -x /usr/bin/phoenix && test -f /usr/share/phoenix/features/base_setup.sh && test -f /usr/share/man/man1/phoenix-run.1.gz && test -f /lib/systemd/system/phoenix-converge.timer && test -f /usr/share/bash-completion/completions/phoenix");
    assert_eq!(
        ok(&lab, "stat -c %a /var/lib/phoenix /var/log/phoenix"),
        "700\n700\n"
    );
    assert_eq!(
        ok(&lab, "systemctl is-enabled phoenix-converge.timer || true").trim(),
        "disabled"
    );
    // The shipped features are found beside the installed binary: no "has no script" warning.
    let check = ok(&lab, "phoenix init /root/fleet && sed -i 's/\"hello\"/\"base_setup\"/' /root/fleet/phoenix_lxc_configs.json && phoenix validate --config-dir /root/fleet 2>&1");
    assert!(check.contains("0 error(s), 0 warning(s)"), "{check}");
    let doctor = sh(
        &lab,
        "phoenix doctor --config-dir /root/fleet --backend lxc",
    );
    assert!(
        String::from_utf8_lossy(&doctor.stdout).contains("inotify"),
        "doctor says what it checked: {}",
        text(&doctor)
    );
    assert!(
        !doctor.status.success(),
        "no LXC in this container: a run would fail, and doctor says so"
    );
    // The timer's service runs phoenix, its output in the journal.
    ok(
        &lab,
        "printf 'PHOENIX_CONFIG_DIR=/root/fleet\\nPHOENIX_BACKEND=lxc\\n' > /etc/default/phoenix",
    );
    let _ = sh(&lab, "systemctl start phoenix-converge.service");
    let journal = ok(&lab, "journalctl -u phoenix-converge.service --no-pager");
    assert!(
        journal.contains("phoenix[") && journal.contains("lxc"),
        "{journal}"
    );

    // The installed binary converges a fleet on this host, its state in the container's store.
    let root = root_of(&lab);
    lab.fleet()
        .template(900, "debian")
        .template(910, "base")
        .features(&["marker"])
        .clone_of(950, "app", 910)
        .write();
    let out = Command::new(root.join("usr/bin/phoenix"))
        .envs(lab.phoenix().get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args([
            "--features-dir",
            lab::repo().join("fixtures/features").to_str().unwrap(),
        ])
        .arg("--state-dir")
        .arg(root.join("var/lib/phoenix"))
        .args(["run", &lab.arg(910), &lab.arg(950)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(lab.containers(), ["900", "910", "950"]);

    // An upgrade keeps the state store and what it recorded.
    ok(&lab, "dpkg -i /root/v2.deb");
    assert_eq!(
        ok(&lab, "dpkg-query -W -f='${Version}' phoenix"),
        "0.1.0+upgrade1"
    );
    let state = ok(&lab, "phoenix state show --state-dir /var/lib/phoenix");
    assert!(
        state.contains(&lab.arg(950)) && state.contains("completed"),
        "{state}"
    );
    ok(
        &lab,
        "grep -q PHOENIX_CONFIG_DIR=/root/fleet /etc/default/phoenix",
    );

    // The installed man page renders (with this host's man: the container has none).
    let page = Command::new("man")
        .arg("-l")
        .arg(root.join("usr/share/man/man1/phoenix-run.1.gz"))
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&page.stdout).contains("--dry-run"),
        "{}",
        text(&page)
    );

    // Purge: none of the package's files is left, nor its directories of state and logs, and the
    // state only when the user chose to keep it.
    let files = packaged_files(&v2);
    let none_left = format!(
        "for f in {}; do ! test -e \"$f\" || {{ echo \"$f\"; exit 1; }}; done",
        files.join(" ")
    );
    ok(&lab, "dpkg --purge phoenix");
    ok(&lab, &none_left);
    ok(
        &lab,
        "! test -e /var/lib/phoenix && ! test -e /var/log/phoenix",
    );
    ok(
        &lab,
        "dpkg -i /root/v1.deb && touch /var/lib/phoenix/.keep && dpkg --purge phoenix",
    );
    ok(&lab, &none_left);
    ok(
        &lab,
        "test -e /var/lib/phoenix/.keep && ! test -e /var/log/phoenix",
    );
}

/// The files (not directories) the package holds, as absolute paths.
fn packaged_files(deb: &std::path::Path) -> Vec<String> {
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|p| !p.ends_with('/'))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}
