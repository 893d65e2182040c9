//! `phoenix setup` over SSH against a stand-in host: a systemd container of the lab with its own
//! sshd, converged from a hypervisor file as the job `host/<node>`.

mod lab;

use lab::Lab;
use phoenix::converge::{Event, Outcome};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The stand-in host's template: the test template plus Samba, dnsmasq and sudo
/// (`scripts/build-template host`).
const HOST_TEMPLATE: &str = "/var/cache/phoenix/templates/phoenix-bookworm-host.tar.zst";
/// The Samba password of the test, handed to Phoenix by reference (an environment variable).
const SMB_PASSWORD: &str = "n0t-in-any-log";

/// The stand-in host: a lab container reachable over SSH as root with a key of the test's.
struct Host<'l> {
    lab: &'l Lab,
    id: u32,
    key: PathBuf,
}

impl<'l> Host<'l> {
    fn start(lab: &'l Lab) -> Host<'l> {
        lab.fleet()
            .template(950, "standin-host")
            .set("template", json!(HOST_TEMPLATE))
            .write();
        lab.run_json(&[&lab.arg(950)]).all(Outcome::Converged);
        let key = keygen(&lab.path("root_key"));
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let install = format!(
            "mkdir -p -m 700 /root/.ssh && printf '%s' '{}' > /root/.ssh/authorized_keys && ssh-keygen -A >/dev/null && systemctl enable --now ssh",
            public.trim()
        );
        let out = lab.attach(950, &["sh", "-c", &install]);
        assert!(out.status.success(), "{}", lab::text(&out));
        Host { lab, id: 950, key }
    }

    /// `phoenix ARGS` over SSH, with the host's config dir and a state dir of its own.
    fn setup(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.lab.phoenix();
        cmd.env("PHOENIX_CONFIG_DIR", self.lab.path("hostcfg"))
            .env("PHOENIX_STATE_DIR", self.lab.path("hoststate"))
            .env("PHOENIX_HOST", format!("root@{}", self.lab.ip_of(self.id)))
            .env("PHOENIX_BACKEND", "auto")
            .env("PHOENIX_TEST_SMB_PW", SMB_PASSWORD)
            .env("PHOENIX_SSH_IDENTITY", &self.key)
            .env("PHOENIX_KNOWN_HOSTS", self.lab.path("known_hosts"))
            .arg("--accept-new-host-keys")
            .args(args);
        cmd
    }

    fn setup_json(&self) -> lab::run::Run {
        lab::run::Run::parse(&self.setup(&["--output", "json", "setup"]))
    }

    fn sh(&self, script: &str) -> String {
        let out = self.lab.attach(self.id, &["sh", "-c", script]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Installs the stand-in node's tools (`fixtures/pve`) in the host, its `/etc/pve` made as a
    /// fresh Proxmox VE node has it (`fixtures/pve/node host /`).
    fn install_pve_tools(&self) {
        let fixtures = lab::repo().join("fixtures");
        let tar = format!(
            "tar -C {} --exclude __pycache__ -cf - pve",
            fixtures.display()
        );
        self.pipe(&tar, "tar -C /usr/local/lib -xf -");
        let out = self
            .lab
            .attach(self.id, &["/usr/local/lib/pve/node", "host", "/"]);
        assert!(out.status.success(), "{}", lab::text(&out));
    }

    /// Runs `inside` (a shell command, in the host) with what `outside` (one here) prints as its
    /// input.
    fn pipe(&self, outside: &str, inside: &str) {
        let line = format!(
            "{outside} | lxc-attach -P {} -n {} --clear-env -- sh -c '{inside}'",
            self.lab.lxc_path().display(),
            self.lab.arg(self.id)
        );
        let out = Command::new("sh").arg("-c").arg(line).output().unwrap();
        assert!(out.status.success(), "{}", lab::text(&out));
    }

    fn write_config(&self, hypervisor: &Value) {
        let dir = self.lab.path("hostcfg");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("phoenix_hypervisor_config.json"),
            hypervisor.to_string(),
        )
        .unwrap();
    }
}

fn keygen(path: &Path) -> PathBuf {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "phoenix-test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", lab::text(&out));
    path.to_path_buf()
}

/// A SHA-512 crypt(3) hash of `password`, as `openssl passwd -6` makes it.
fn sha512_crypt(password: &str) -> String {
    let out = Command::new("openssl")
        .args(["passwd", "-6", "-salt", "phoenixtestsalt", password])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", lab::text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn changed_steps(run: &lab::run::Run) -> Vec<String> {
    run.events
        .iter()
        .filter_map(|e| match e {
            Event::StepSucceeded {
                step,
                changed: true,
                ..
            } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn setup_converges_the_host_then_changes_nothing_and_puts_drift_back() {
    let Some(lab) = Lab::new() else { return };
    let host = Host::start(&lab);
    host.install_pve_tools();
    let user_key = keygen(&lab.path("ops_key"));
    let user_public = std::fs::read_to_string(user_key.with_extension("pub")).unwrap();
    host.sh("printf '/srv/theirs 10.0.0.9(ro)\\n' > /etc/exports");
    // The password hash is kept in a file of its own and named by reference.
    let hash = sha512_crypt("correct horse");
    std::fs::write(lab.path("ops.hash"), format!("{hash}\n")).unwrap();
    let subnet = format!("10.254.{}.0/24", lab.net);
    let mut config = json!({
        "timezone": "Europe/Berlin",
        "network": {"hostname": "pve-standin"},
        "users": {"username": "ops", "sudo_access": true, "ssh_public_key": user_public.trim(),
                  "password_hash": {"file": lab.path("ops.hash")}},
        "nfs": {"exports": [{"path": "/srv/exports/models", "clients": [subnet],
                             "options": ["rw", "sync", "no_subtree_check"]}]},
        "firewall": {"enabled": true, "default_input_policy": "DROP",
                     "global_firewall_rules": [{"type": "in", "action": "ACCEPT", "proto": "tcp",
                                                "port": "22", "comment": "ssh"}]},
        "samba": {"user": "ops", "password": {"env": "PHOENIX_TEST_SMB_PW"},
                  "shares": [{"name": "models", "path": "srv/shares/models", "valid_users": ["ops"],
                              "options": "browseable=yes writable=yes"},
                             {"name": "scratch", "path": "srv/shares/scratch", "valid_users": ["ops"],
                              "options": "browseable=yes writable=no"}]},
        "domain_name": "lab.internal",
        "dns_server": {"enabled": true, "upstream_servers": [lab.ip(1)]}
    });
    host.write_config(&config);
    // The fleet whose names dnsmasq answers (not built here).
    let guest = |name: &str, host_byte: u8| {
        json!({"name": name, "memory_mb": 256, "cores": 1, "template": HOST_TEMPLATE,
               "network_config": {"name": "eth0", "bridge": lab.bridge, "ip": format!("{}/24", lab.ip(host_byte)), "gw": lab.ip(1)}})
    };
    std::fs::write(
        lab.path("hostcfg/phoenix_lxc_configs.json"),
        json!({"lxc_configs": {"120": guest("API-Server", 77), "121": guest("db", 78)}})
            .to_string(),
    )
    .unwrap();

    // The plan is a diff of the node against the file.
    let plan = host.setup(&["plan", "--setup", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", lab::text(&plan));
    let planned = String::from_utf8_lossy(&plan.stdout);
    assert!(
        planned.contains("~ host hostname: hostname standin-host → pve-standin"),
        "{planned}"
    );
    assert!(
        planned.contains("+ host user:ops: user ops exists"),
        "{planned}"
    );

    let dry = host.setup(&["setup", "--dry-run"]);
    assert!(dry.status.success(), "{}", lab::text(&dry));
    let said = lab::text(&dry);
    assert!(
        said.contains("hostname") && said.contains("nfs_exports"),
        "{said}"
    );
    assert_eq!(
        host.sh("hostname"),
        "standin-host\n",
        "a dry run changes nothing"
    );

    let first_out = host.setup(&["--output", "json", "setup"]);
    let first = lab::run::Run::parse(&first_out);
    first.expect(&lab, 0, &[]);
    assert_eq!(
        first.summary.guests[0].outcome,
        Outcome::Converged,
        "{first}"
    );
    assert_eq!(host.sh("cat /etc/timezone"), "Europe/Berlin\n");
    assert_eq!(
        host.sh("readlink /etc/localtime"),
        "/usr/share/zoneinfo/Europe/Berlin\n"
    );
    assert_eq!(host.sh("hostname"), "pve-standin\n");
    assert_eq!(
        host.sh("cat /etc/sudoers.d/phoenix-ops"),
        "ops ALL=(ALL:ALL) ALL\n"
    );
    assert_eq!(
        host.sh("getent shadow ops | cut -d: -f2"),
        format!("{hash}\n")
    );
    let exports = host.sh("cat /etc/exports");
    assert!(
        exports.starts_with("/srv/theirs 10.0.0.9(ro)\n"),
        "{exports}"
    );
    assert!(
        exports.contains(&format!(
            "/srv/exports/models {subnet}(rw,sync,no_subtree_check)\n"
        )),
        "{exports}"
    );
    assert_eq!(host.sh("test -d /srv/exports/models && echo yes"), "yes\n");
    let fw = host.sh("cat /etc/pve/firewall/cluster.fw");
    assert!(fw.contains("enable: 1\npolicy_in: DROP\n"), "{fw}");
    assert!(fw.contains("IN ACCEPT -p tcp -dport 22 # ssh\n"), "{fw}");
    // The user logs in with their key.
    let login = Command::new("ssh")
        .args(["-i", user_key.to_str().unwrap(), "-o", "BatchMode=yes"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .arg(format!("ops@{}", lab.ip_of(950)))
        .arg("id -un")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&login.stdout),
        "ops\n",
        "{}",
        lab::text(&login)
    );

    // Samba serves its shares to the user with the configured password.
    host.sh(&format!(
        "printf 'username = ops\\npassword = {SMB_PASSWORD}\\n' > /root/smb.auth"
    ));
    let listed = host.sh("smbclient //127.0.0.1/models -A /root/smb.auth -c ls 2>&1");
    assert!(listed.contains("blocks of size"), "{listed}");
    let smb_conf = host.sh("cat /etc/samba/smb.conf");
    assert!(
        smb_conf.contains("[global]"),
        "smb.conf kept its own: {smb_conf}"
    );
    // dnsmasq answers the fleet's names.
    let dig = |name: &str| host.sh(&format!("dig +short @127.0.0.1 {name}"));
    assert_eq!(dig("api-server.lab.internal"), format!("{}\n", lab.ip(77)));
    assert_eq!(dig("db"), format!("{}\n", lab.ip(78)));

    let again_out = host.setup(&["--output", "json", "setup"]);
    let again = lab::run::Run::parse(&again_out);
    assert_eq!(
        again.summary.guests[0].outcome,
        Outcome::Unchanged,
        "{:?} {again}",
        changed_steps(&again)
    );
    let plan = host.setup(&["plan", "--setup", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", lab::text(&plan));
    // No secret is in an event, a log or a state file (commands are argv; secrets go on stdin).
    let salt_and_hash = hash.rsplit('$').next().unwrap();
    for secret in [salt_and_hash, SMB_PASSWORD] {
        for out in [&first_out, &again_out] {
            assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
        }
        for dir in ["log", "hoststate"] {
            let grep = Command::new("grep")
                .args(["-r", "-a", "-F", secret])
                .arg(lab.path(dir))
                .output()
                .unwrap();
            assert_eq!(
                grep.status.code(),
                Some(1),
                "a secret reached {dir}: {}",
                lab::text(&grep)
            );
        }
    }

    config["nfs"]["exports"][0]["options"] = json!(["ro", "sync", "no_subtree_check"]);
    host.write_config(&config);
    let changed = host.setup_json();
    assert_eq!(changed_steps(&changed), ["nfs_exports"], "{changed}");
    config["samba"]["shares"][1]["options"] = json!("browseable=no writable=no");
    host.write_config(&config);
    let changed = host.setup_json();
    assert_eq!(
        changed_steps(&changed),
        ["samba_share:scratch"],
        "{changed}"
    );
    assert!(host
        .sh("cat /etc/exports")
        .contains("(ro,sync,no_subtree_check)"));

    host.sh("ln -sfn /usr/share/zoneinfo/UTC /etc/localtime; echo UTC > /etc/timezone");
    let drift = host.setup_json();
    assert!(
        drift
            .events
            .iter()
            .any(|e| matches!(e, Event::Drift { what, .. } if what.starts_with("timezone"))),
        "{drift}"
    );
    assert_eq!(changed_steps(&drift), ["timezone"], "{drift}");
    assert_eq!(host.sh("cat /etc/timezone"), "Europe/Berlin\n");

    let shown = host.setup(&["--output", "json", "state", "show", "host"]);
    let state: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(state["state"], "completed", "{}", lab::text(&shown));
    let reset = host.setup(&["state", "reset", "host", "--to", "accounts", "--yes"]);
    assert!(reset.status.success(), "{}", lab::text(&reset));
    let shown = host.setup(&["--output", "json", "state", "show", "host"]);
    let state: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(state["state"], "accounts", "{}", lab::text(&shown));
    let redo = host.setup_json();
    assert_eq!(redo.summary.guests[0].outcome, Outcome::Unchanged, "{redo}");
}

/// `phoenix setup` SIGKILLed as each step starts, one run per step: the next run goes on from
/// that step, and the last one finishes the host with every step done once.
#[test]
fn setup_killed_at_each_step_resumes_there() {
    let Some(lab) = Lab::new() else { return };
    let host = Host::start(&lab);
    host.install_pve_tools();
    make_apt_repo(&host);
    let dir = lab.path("hostcfg/host");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("renew.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    host.write_config(&json!({
        "timezone": "Europe/Berlin",
        "apt": {"sources": [{"name": "lab", "uris": "file:/srv/repo", "suites": "./", "trusted": true}],
                "packages": ["phoenix-lab-tool"]},
        "network": {"hostname": "pve-killed",
                    "interfaces": {"name": "vmbr7", "address": "10.254.253.1/24", "bridge_ports": "none"}},
        "users": [{"username": "ops", "sudo_access": false}],
        "nfs": {"exports": [{"path": "/srv/exports/a", "clients": ["10.254.0.0/16"], "options": ["ro"]}]},
        "storages": [{"id": "scratch", "type": "dir", "path": "/srv/pve/scratch", "content": "images"}],
        "firewall": {"enabled": true, "global_firewall_rules": []},
        "apparmor": {"tunables": {"home": ["@{HOMEDIRS}+=/srv/home/"]}},
        "certificate_renewal": {"script": "renew"}
    }));
    let steps = [
        "timezone",
        "hostname",
        "apt_sources",
        "apt_packages",
        "network",
        "user:ops",
        "pve_user:ops",
        "nfs_exports",
        "storage:scratch",
        "storages_unlisted",
        "firewall",
        "apparmor",
        "cert_renewal",
    ];
    for step in steps {
        // The step an earlier run was killed in starts again first; this run dies in the next.
        let mut live = lab::live::LiveRun::of(host.command(&["--output", "json", "setup"]));
        while let Some((_, started)) = live.next_step() {
            if started == step {
                break;
            }
        }
        live.kill();
    }
    let last = host.setup_json();
    last.expect(&lab, 0, &[]);
    let shown = host.setup(&["--output", "json", "state", "show", "host", "--history"]);
    let state: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(state["state"], "completed", "{}", lab::text(&shown));
    let succeeded: Vec<&str> = state["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "step_succeeded")
        .map(|e| {
            e["detail"]
                .as_str()
                .unwrap_or("")
                .split(' ')
                .next()
                .unwrap_or("")
        })
        .collect();
    assert_eq!(succeeded, steps, "each step done once: {state:#}");
    assert_eq!(
        host.sh("grep -c '^dir: scratch' /etc/pve/storage.cfg"),
        "1\n",
        "added once"
    );
    assert_eq!(host.sh("hostname"), "pve-killed\n");
    assert_eq!(host.sh("id -un ops"), "ops\n");
}

/// A host script whose change takes effect at the next boot: the run stops with exit 4 naming
/// it; a run before the reboot runs nothing again; after the stand-in host restarts (another boot)
/// the next run records it and finishes. With `--reboot` Phoenix reboots the node itself.
#[test]
fn a_step_that_needs_a_reboot_is_a_state_of_the_run() {
    let Some(lab) = Lab::new() else { return };
    let host = Host::start(&lab);
    let script = |version: &str| {
        let dir = lab.path("hostcfg/host");
        std::fs::create_dir_all(&dir).unwrap();
        let body = format!(
            "#!/bin/sh\n# {version}: a change the kernel reads at boot\nmkdir -p /var/lib/phoenix-test\necho ran >> /var/lib/phoenix-test/host-script-runs\nexit 100\n"
        );
        std::fs::write(dir.join("kernel_param.sh"), body).unwrap();
    };
    script("v1");
    host.write_config(&json!({"timezone": "Europe/Berlin", "host_scripts": ["kernel_param"]}));
    let runs = || {
        host.sh("cat /var/lib/phoenix-test/host-script-runs | wc -l")
            .trim()
            .to_string()
    };

    for attempt in ["first", "before the reboot"] {
        let out = host.setup(&["setup"]);
        assert_eq!(out.status.code(), Some(4), "{attempt}: {}", lab::text(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("reboot required: host script kernel_param"),
            "{said}"
        );
        assert_eq!(runs(), "1", "{attempt}: the script ran once");
    }
    restart(&lab, &host, Restart::ByHand);
    let after = host.setup(&["setup"]);
    assert_eq!(after.status.code(), Some(0), "{}", lab::text(&after));
    assert_eq!(runs(), "1", "the reboot completed it: not run again");

    script("v2");
    let out = host.setup(&["setup", "--reboot"]);
    assert_eq!(out.status.code(), Some(4), "{}", lab::text(&out));
    assert_eq!(runs(), "2");
    restart(&lab, &host, Restart::AskedByPhoenix);
    let after = host.setup(&["--output", "json", "setup"]);
    assert_eq!(after.status.code(), Some(0), "{}", lab::text(&after));
    assert_eq!(runs(), "2");
}

enum Restart {
    ByHand,
    AskedByPhoenix,
}

/// The stand-in host restarted (by hand, or by the reboot Phoenix asked for), and its sshd up.
fn restart(lab: &Lab, host: &Host<'_>, how: Restart) {
    let pid1 = || host.sh("cut -d' ' -f22 /proc/1/stat");
    let before = pid1();
    if let Restart::ByHand = how {
        let path = lab.lxc_path();
        for tool in ["lxc-stop", "lxc-start"] {
            let out = Command::new(tool)
                .args(["-P", path.to_str().unwrap(), "-n", &lab.arg(host.id)])
                .output()
                .unwrap();
            assert!(out.status.success(), "{tool}: {}", lab::text(&out));
        }
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let up = host.sh("systemctl is-active ssh") == "active\n";
        if up && pid1() != before && !pid1().is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "the stand-in host did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// A local apt repository in the host (`file:/srv/repo`, flat, trusted) with one package,
/// `phoenix-lab-tool`, in place of Debian's sources (tests reach no mirror), and an enterprise
/// source as a Proxmox VE node has it.
fn make_apt_repo(host: &Host<'_>) {
    let out = host.sh(concat!(
        "set -e; d=/srv/build/phoenix-lab-tool; mkdir -p $d/DEBIAN $d/usr/bin /srv/repo; ",
        "printf 'Package: phoenix-lab-tool\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: lab <lab@example.invalid>\\nDescription: a package of the test repository\\n' > $d/DEBIAN/control; ",
        "printf '#!/bin/sh\\necho lab-tool\\n' > $d/usr/bin/phoenix-lab-tool; chmod 755 $d/usr/bin/phoenix-lab-tool; ",
        "dpkg-deb --build $d /srv/repo/phoenix-lab-tool_1.0_all.deb >/dev/null; cd /srv/repo; f=phoenix-lab-tool_1.0_all.deb; ",
        "{ dpkg-deb -f $f; echo \"Filename: ./$f\"; echo \"Size: $(stat -c %s $f)\"; echo \"SHA256: $(sha256sum $f | cut -d' ' -f1)\"; echo; } > Packages; ",
        ": > /etc/apt/sources.list; ",
        "printf 'Types: deb\\nURIs: https://enterprise.proxmox.com/debian/pve\\nSuites: trixie\\nComponents: pve-enterprise\\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\\n' > /etc/apt/sources.list.d/pve-enterprise.sources; ",
        "echo ok"
    ));
    assert_eq!(out, "ok\n");
}

/// The rest of the node: apt, the management bridge, the Proxmox user, storages (one of the
/// file's, upstream's NFS storage of an export, one Phoenix did not create), AppArmor tunables,
/// certificate renewal, and the NVIDIA driver, whose reboot is a state of the run.
#[test]
fn setup_converges_apt_network_proxmox_storage_and_the_driver() {
    let Some(lab) = Lab::new() else { return };
    let host = Host::start(&lab);
    host.install_pve_tools();
    make_apt_repo(&host);
    let pvesm = |args: &str| host.sh(&format!("pvesm {args} 2>&1"));
    pvesm("add dir old-backups --path /srv/old-backups --content backup");
    host.sh("mkdir -p /srv/nvidia");
    let runfile = "/srv/nvidia/NVIDIA-Linux-x86_64-580.76.05.run";
    let standin = lab::repo().join("fixtures/host/nvidia_runfile_standin.run");
    host.pipe(
        &format!("cat {}", standin.display()),
        &format!("cat > {runfile}"),
    );
    let dir = lab.path("hostcfg/host");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("renew.sh"),
        "#!/bin/sh\necho renewed >> /var/log/renewals\n",
    )
    .unwrap();
    let me = lab.ip_of(host.id);
    let mut config = json!({
        "network": {"nfs_server": me,
                    "interfaces": {"name": "vmbr7", "address": "10.254.253.1/24", "bridge_ports": "none"}},
        "users": [{"username": "ops", "sudo_access": true}],
        "apt": {"sources": [{"name": "lab", "uris": "file:/srv/repo", "suites": "./", "trusted": true}],
                "disable": ["pve-enterprise"], "packages": ["phoenix-lab-tool"]},
        "nfs": {"exports": [{"path": "/srv/exports/models", "clients": [format!("{me}/32")], "options": ["rw", "sync"]}]},
        "storages": [{"id": "scratch", "type": "dir", "path": "/srv/pve/scratch", "content": ["images", "rootdir"]}],
        "apparmor": {"tunables": {"home": ["@{HOMEDIRS}+=/srv/home/"]}},
        "certificate_renewal": {"script": "renew"},
        "nvidia_driver": {"install": true, "version": "580.76.05", "runfile_url": runfile}
    });
    host.write_config(&config);
    let plan = host.setup(&["plan", "--setup"]);
    let planned = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(planned.contains("host storage:scratch"), "{planned}");
    assert!(
        !planned.contains("old-backups"),
        "kept without --allow-destructive: {planned}"
    );

    let first = host.setup(&["setup"]);
    assert_eq!(first.status.code(), Some(4), "{}", lab::text(&first));
    let said = lab::text(&first);
    assert!(
        said.contains("reboot required: the NVIDIA driver 580.76.05"),
        "{said}"
    );
    let cfg = host.sh("cat /etc/pve/storage.cfg");
    assert!(
        cfg.contains("dir: scratch\n\tpath /srv/pve/scratch\n"),
        "{cfg}"
    );
    assert!(cfg.contains("nfs: nfs-models\n"), "{cfg}");
    assert!(
        cfg.contains("dir: old-backups\n"),
        "not Phoenix's, kept: {cfg}"
    );
    let users = host.sh("pveum user list --output-format json");
    assert!(users.contains("\"ops@pam\""), "{users}");
    let acl = host.sh("pveum acl list --output-format json");
    assert!(
        acl.contains("\"Administrator\"") && acl.contains("\"ops@pam\""),
        "{acl}"
    );
    assert_eq!(host.sh("phoenix-lab-tool"), "lab-tool\n");
    let enterprise = host.sh("cat /etc/apt/sources.list.d/pve-enterprise.sources");
    assert!(enterprise.ends_with("Enabled: no\n"), "{enterprise}");
    let bridge = host.sh("ip -o -4 addr show dev vmbr7");
    assert!(bridge.contains("inet 10.254.253.1/24"), "{bridge}");
    let tunables = host.sh("cat /etc/apparmor.d/tunables/home");
    assert!(
        tunables.contains("\n@{HOMEDIRS}+=/srv/home/\n"),
        "{tunables}"
    );
    assert_eq!(
        host.sh("systemctl is-enabled phoenix-cert-renewal.timer"),
        "enabled\n"
    );
    assert_eq!(host.sh("cat /var/lib/nvidia-standin/runs"), "580.76.05\n");

    let before_reboot = host.setup(&["setup"]);
    assert_eq!(
        before_reboot.status.code(),
        Some(4),
        "{}",
        lab::text(&before_reboot)
    );
    assert_eq!(
        host.sh("cat /var/lib/nvidia-standin/runs"),
        "580.76.05\n",
        "not run again"
    );
    restart(&lab, &host, Restart::ByHand);
    let after = host.setup_json();
    after.expect(&lab, 0, &[]);
    assert_eq!(changed_steps(&after), ["gpu_init"], "{after}");
    assert_eq!(
        host.sh("nvidia-smi --query-gpu=driver_version --format=csv,noheader"),
        "580.76.05\n"
    );
    assert_eq!(
        host.sh("systemctl is-enabled nvidia-gpu-init.service"),
        "enabled\n"
    );
    let again = host.setup_json();
    assert_eq!(
        again.summary.guests[0].outcome,
        Outcome::Unchanged,
        "{:?} {again}",
        changed_steps(&again)
    );

    // What destroys data is listed first, and done only when asked.
    let plan = host.setup(&["plan", "--setup", "--allow-destructive"]);
    let planned = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        planned.contains("storages_unlisted: storage old-backups"),
        "{planned}"
    );
    config["storages"] = json!([]);
    host.write_config(&config);
    let dropped = host.setup_json();
    assert_eq!(changed_steps(&dropped), ["storages_unlisted"], "{dropped}");
    let cfg = host.sh("cat /etc/pve/storage.cfg");
    assert!(
        !cfg.contains("scratch") && cfg.contains("old-backups"),
        "Phoenix's went: {cfg}"
    );
    // Even so, not while a guest's config names one of its volumes.
    let guest_conf = "/etc/pve/nodes/$(ls /etc/pve/nodes | head -1)/lxc/990.conf";
    host.sh(&format!(
        "echo 'mp0: old-backups:990/vm-990-disk-0.raw,mp=/data' > {guest_conf}"
    ));
    let used = host.setup(&["--output", "json", "setup", "--allow-destructive"]);
    let used = lab::run::Run::parse(&used);
    assert!(changed_steps(&used).is_empty(), "{used}");
    assert!(host
        .sh("cat /etc/pve/storage.cfg")
        .contains("dir: old-backups\n"));
    host.sh(&format!("rm {guest_conf}"));
    let destructive = host.setup(&["--output", "json", "setup", "--allow-destructive"]);
    let destructive = lab::run::Run::parse(&destructive);
    assert_eq!(
        changed_steps(&destructive),
        ["storages_unlisted"],
        "{destructive}"
    );
    let cfg = host.sh("cat /etc/pve/storage.cfg");
    assert!(
        !cfg.contains("old-backups") && cfg.contains("dir: local\n"),
        "{cfg}"
    );
    // Moving the address this run reaches the node by would cut it off: refused.
    config["network"]["interfaces"] =
        json!({"name": "eth0", "address": format!("{}/24", lab.ip(251))});
    host.write_config(&config);
    let cut = host.setup(&["setup"]);
    assert_eq!(cut.status.code(), Some(1), "{}", lab::text(&cut));
    assert!(
        lab::text(&cut).contains("cuts off this run"),
        "{}",
        lab::text(&cut)
    );
    let eth0 = host.sh("ip -o -4 addr show dev eth0");
    assert!(eth0.contains(&format!("inet {me}/")), "{eth0}");
}
