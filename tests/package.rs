//! The Debian package (`scripts/package`), in a fresh Debian 12 container (the test template):
//! installed with `dpkg -i`, its files, directories and man pages in place, `phoenix init`,
//! `validate` and `doctor` run by the installed binary, an upgrade that keeps the state store,
//! a fleet converged on this host by the binary dpkg installed (its shipped files found beside
//! it), and `dpkg --purge` leaving nothing but the state the user chose to keep.

mod lab;

use lab::{text, Lab};
use std::path::PathBuf;
use std::process::{Command, Output};

/// Builds the package once per test binary.
fn package() -> PathBuf {
    let out = Command::new(lab::repo().join("scripts/package"))
        .output()
        .expect("scripts/package");
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

#[test]
fn the_package_installs_upgrades_runs_and_purges() {
    let Some(lab) = Lab::new() else { return };
    let deb = package();
    lab.fleet().template(900, "debian").write();
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    // Into the container, through its stdin.
    let mut push = Command::new("lxc-attach");
    push.args([
        "-P",
        lab.lxc_path().to_str().unwrap(),
        "-n",
        &lab.arg(900),
        "--clear-env",
        "--",
    ])
    .args(["sh", "-c", "cat > /root/phoenix.deb"])
    .stdin(std::fs::File::open(&deb).unwrap());
    assert!(push.status().unwrap().success());

    ok(&lab, "dpkg -i /root/phoenix.deb");
    ok(&lab, "test -x /usr/bin/phoenix && test -f /usr/share/phoenix/features/base_setup.sh && test -f /usr/share/man/man1/phoenix-run.1.gz && test -f /lib/systemd/system/phoenix-converge.timer && test -f /usr/share/bash-completion/completions/phoenix");
    assert_eq!(
        ok(&lab, "stat -c %a /var/lib/phoenix /var/log/phoenix"),
        "700\n700\n"
    );
    ok(
        &lab,
        "phoenix init /root/fleet && phoenix validate --config-dir /root/fleet",
    );
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

    // An upgrade keeps the state store.
    ok(
        &lab,
        "phoenix state reset --all --yes --config-dir /root/fleet --state-dir /var/lib/phoenix",
    );
    let store = "ls /var/lib/phoenix/db >/dev/null";
    ok(&lab, store);
    ok(&lab, "dpkg -i /root/phoenix.deb");
    ok(&lab, store);

    // The installed binary converges a fleet on this host, finding its shipped files beside it.
    let pid = String::from_utf8_lossy(
        &Command::new("lxc-info")
            .args([
                "-P",
                lab.lxc_path().to_str().unwrap(),
                "-n",
                &lab.arg(900),
                "-p",
                "-H",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let installed = PathBuf::from(format!("/proc/{pid}/root/usr/bin/phoenix"));
    lab.fleet()
        .template(900, "debian")
        .template(910, "base")
        .features(&["marker"])
        .clone_of(950, "app", 910)
        .write();
    let out = Command::new(&installed)
        .envs(lab.phoenix().get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args([
            "--features-dir",
            lab::repo().join("fixtures/features").to_str().unwrap(),
        ])
        .args(["run", &lab.arg(910), &lab.arg(950)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(lab.containers(), ["900", "910", "950"]);

    // Purge: nothing of the package is left, and the state only when the user kept it.
    ok(&lab, "dpkg --purge phoenix");
    ok(&lab, "! test -e /usr/bin/phoenix && ! test -e /var/lib/phoenix && ! test -e /var/log/phoenix && ! test -e /lib/systemd/system/phoenix-converge.timer && ! test -e /usr/share/phoenix");
    ok(
        &lab,
        "dpkg -i /root/phoenix.deb && touch /var/lib/phoenix/.keep && dpkg --purge phoenix",
    );
    ok(&lab, "test -e /var/lib/phoenix/.keep && ! test -e /usr/bin/phoenix && ! test -e /etc/default/phoenix");
}
