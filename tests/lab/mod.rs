//! A lab for tests that drive real LXC containers: its own bridge on a 10.254.N.0/24 subnet it
//! allocates ([`net`]), its own LXC path, state, log and config directories, and the `phoenix`
//! binary pointed at all of them. Fleets are written with [`fleet::Fleet`], runs come back typed
//! ([`run::Run`]). Everything is destroyed on drop. Outside CI, a machine without root or LXC
//! skips (loudly); with CI=true the tests must run.
#![allow(dead_code)]

pub mod fleet;
pub mod live;
pub mod net;
pub mod run;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const TEMPLATE: &str = "/var/cache/phoenix/templates/phoenix-bookworm-minbase.tar.zst";

#[path = "../sshd/mod.rs"]
pub mod sshd;

/// Which backend a lab drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Lxc,
    /// A stand-in Proxmox node on this machine (`fixtures/pve/node`, on real LXC).
    Proxmox,
    /// The same, over SSH to a real sshd on the loopback.
    ProxmoxSsh,
}

pub struct Lab {
    pub net: u8,
    _net: net::Net,
    pub bridge: String,
    pub backend: Backend,
    pub sshd: Option<sshd::Sshd>,
    pub dir: tempfile::TempDir,
}

fn template() -> Option<PathBuf> {
    let t = std::env::var("PHOENIX_TEST_TEMPLATE").unwrap_or_else(|_| TEMPLATE.to_string());
    Path::new(&t).exists().then(|| PathBuf::from(t))
}

impl Lab {
    /// A plain-LXC lab on a subnet of its own, or `None` (after saying why) where LXC cannot run.
    pub fn new() -> Option<Lab> {
        Self::with_backend(Backend::Lxc)
    }

    pub fn with_backend(backend: Backend) -> Option<Lab> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let lxc = Command::new("lxc-start")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let why = if !sshd::is_root() {
            Some("not root")
        } else if !lxc {
            Some("lxc is not installed (apt-get install lxc)")
        } else if template().is_none() {
            Some("the test template is not built (scripts/build-template)")
        } else {
            None
        };
        if let Some(why) = why {
            assert!(!ci, "CI=true but real-LXC tests cannot run: {why}");
            eprintln!("\n\n*** SKIPPING real-LXC test: {why} ***\n\n");
            return None;
        }
        let held = net::allocate();
        let net = held.n;
        let bridge = format!("phxt{net}");
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        for args in [
            vec!["link", "add", &bridge, "type", "bridge"],
            vec!["addr", "add", &format!("10.254.{net}.1/24"), "dev", &bridge],
            vec!["link", "set", &bridge, "up"],
        ] {
            let out = Command::new("ip").args(&args).output().expect("ip");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("phoenix-lab-")
            .tempdir()
            .expect("tempdir");
        for d in ["lxc", "state", "log", "config", "host"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        std::fs::create_dir_all(dir.path().join("config/scripts")).expect("mkdir");
        std::fs::copy(
            repo().join("fixtures/scripts/app_sleep.sh"),
            dir.path().join("config/scripts/app_sleep.sh"),
        )
        .expect("copy");
        let mut sshd = None;
        if backend != Backend::Lxc {
            let out = Command::new(repo().join("fixtures/pve/node"))
                .arg("up")
                .arg(dir.path().join("node"))
                .args(["--net", &net.to_string(), "--bridge", &bridge, "--template"])
                .arg(template().expect("template"))
                .output()
                .expect("fixtures/pve/node");
            assert!(
                out.status.success(),
                "node up: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if backend == Backend::ProxmoxSsh {
                sshd = Some(sshd::Sshd::start()?);
            }
        }
        Some(Lab {
            net,
            _net: held,
            bridge,
            backend,
            sshd,
            dir,
        })
    }

    /// The lab's own id for `x`: `net*1000 + x` (900 in lab 21 is 21900). LXC cannot run two
    /// containers of the same name at once, even in different LXC paths, so labs never share ids.
    pub fn id(&self, x: u32) -> u32 {
        u32::from(self.net) * 1000 + x
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn ip(&self, host: u8) -> String {
        format!("10.254.{}.{host}", self.net)
    }

    /// A container definition on this lab's bridge.
    pub fn ct(&self, name: &str, host: u8) -> Value {
        json!({
            "name": name, "memory_mb": 256, "cores": 1,
            "network_config": {"name": "eth0", "bridge": self.bridge, "ip": format!("{}/24", self.ip(host)), "gw": self.ip(1)},
        })
    }

    pub fn template_ct(&self, name: &str, host: u8) -> Value {
        let mut c = self.ct(name, host);
        c["template"] = json!(template().expect("template").display().to_string());
        c["template_snapshot_name"] = json!("final-form");
        // On the stand-in node, the storage that can snapshot (`local` is a dir storage).
        c["storage_pool"] = json!(match self.backend {
            Backend::Lxc => "local",
            Backend::Proxmox | Backend::ProxmoxSsh => "tank",
        });
        c
    }

    /// A clone of `parent` (a lab-relative id like 900).
    pub fn clone_ct(&self, name: &str, host: u8, parent: u32) -> Value {
        let mut c = self.ct(name, host);
        c["clone_from_ctid"] = json!(self.arg(parent));
        c
    }

    /// The address host byte of a lab-relative guest: its own, so guests never share one.
    pub fn host_of(&self, id: u32) -> u8 {
        (10 + id % 240) as u8
    }

    /// The address of a lab-relative guest written by [`fleet::Fleet`].
    pub fn ip_of(&self, id: u32) -> String {
        self.ip(self.host_of(id))
    }

    /// A fleet to write, guest by guest.
    pub fn fleet(&self) -> fleet::Fleet<'_> {
        fleet::Fleet::new(self)
    }

    /// Writes the fleet's LXC file; ids are lab-relative (900 becomes `id(900)`), and so are the
    /// entries of `dependencies` (clone parents already are, see `clone_ct`).
    pub fn write_fleet(&self, cts: &[(u32, Value)]) {
        let cts: Vec<(u32, Value)> = cts
            .iter()
            .map(|(id, v)| {
                let mut v = v.clone();
                if let Some(deps) = v.get("dependencies").and_then(|d| d.as_array()).cloned() {
                    v["dependencies"] = deps
                        .iter()
                        .map(|d| json!(self.arg(d.as_str().unwrap_or("0").parse().unwrap_or(0))))
                        .collect();
                }
                (*id, v)
            })
            .collect();
        self.write_raw(&cts);
    }

    /// Writes the LXC file with lab-relative keys and the values as they are.
    pub fn write_raw(&self, cts: &[(u32, Value)]) {
        let map: serde_json::Map<String, Value> = cts
            .iter()
            .map(|(id, v)| (self.arg(*id), v.clone()))
            .collect();
        std::fs::write(
            self.path("config/phoenix_lxc_configs.json"),
            serde_json::to_vec_pretty(&json!({"lxc_configs": map})).unwrap(),
        )
        .unwrap();
    }

    pub fn phoenix(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_phoenix"));
        c.env("NO_COLOR", "1")
            .env("PHOENIX_CONFIG_DIR", self.path("config"))
            .env("PHOENIX_STATE_DIR", self.path("state"))
            .env("PHOENIX_LOG_DIR", self.path("log"))
            .env("PHOENIX_METRICS_FILE", self.path("metrics.prom"))
            .env("PHOENIX_LXC_PATH", self.path("lxc"))
            .arg("--features-dir")
            .arg(repo().join("fixtures/features"));
        match self.backend {
            Backend::Lxc => {
                c.env("PHOENIX_BACKEND", "lxc");
            }
            Backend::Proxmox | Backend::ProxmoxSsh => {
                c.env("PHOENIX_BACKEND", "proxmox")
                    .env("PHOENIX_PVE_TOOLS", self.path("node/bin"))
                    .env("PHOENIX_PVE_ROOT", self.path("node"));
            }
        }
        if let Some(s) = &self.sshd {
            c.env("PHOENIX_HOST", s.target())
                .env("PHOENIX_SSH_IDENTITY", s.path("client_key"))
                .env("PHOENIX_KNOWN_HOSTS", s.path("known_hosts"));
        }
        c
    }

    /// Runs phoenix with `args`, returning its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.phoenix().args(args).output().expect("phoenix")
    }

    /// A lab-relative id as the CLI argument.
    pub fn arg(&self, id: u32) -> String {
        self.id(id).to_string()
    }

    /// `phoenix --output json run ARGS` (lab-relative ids are written as `lab.arg(id)`).
    pub fn run_json(&self, args: &[&str]) -> run::Run {
        let out = self
            .phoenix()
            .args(["--output", "json", "run"])
            .args(args)
            .output()
            .expect("phoenix");
        run::Run::parse(&out)
    }

    /// `state show --history` of a lab-relative id, as JSON.
    pub fn state(&self, id: u32) -> Value {
        let out = self.run(&[
            "--output",
            "json",
            "state",
            "show",
            &self.arg(id),
            "--history",
        ]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// What the test features recorded in guest `id` (`/var/lib/phoenix-test/effects`).
    pub fn effects(&self, id: u32) -> String {
        let out = self.attach(id, &["cat", "/var/lib/phoenix-test/effects"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where the containers are: the lab's LXC path, or the stand-in node's.
    pub fn lxc_path(&self) -> PathBuf {
        match self.backend {
            Backend::Lxc => self.path("lxc"),
            Backend::Proxmox | Backend::ProxmoxSsh => self.path("node/lxc"),
        }
    }

    /// The stand-in node's config file of a container (lab-relative id).
    pub fn pve_conf(&self, id: u32) -> String {
        let path = self.path(&format!("node/etc/pve/lxc/{}.conf", self.arg(id)));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Makes the stand-in node's tasks take `ms` longer, so that a test can interrupt one.
    pub fn set_task_delay_ms(&self, ms: u64) {
        let path = self.path("node/node.json");
        let mut meta: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        meta["task_delay_ms"] = json!(ms);
        std::fs::write(&path, meta.to_string()).unwrap();
    }

    /// A tool of the stand-in node (`pct`, `pvesh`, ...), with `args`.
    pub fn node_tool(&self, tool: &str, args: &[&str]) -> Output {
        Command::new(self.path(&format!("node/bin/{tool}")))
            .args(args)
            .output()
            .expect("stand-in tool")
    }

    /// Runs argv inside a container (lab-relative id).
    pub fn attach(&self, id: u32, argv: &[&str]) -> Output {
        Command::new("lxc-attach")
            .args([
                "-P",
                self.lxc_path().to_str().unwrap(),
                "-n",
                &self.arg(id),
                "--clear-env",
                "--",
            ])
            .args(argv)
            .output()
            .expect("lxc-attach")
    }

    /// Container names, as lab-relative ids.
    pub fn containers(&self) -> Vec<String> {
        self.raw_containers()
            .iter()
            .filter_map(|n| n.parse::<u32>().ok())
            .map(|n| (n - u32::from(self.net) * 1000).to_string())
            .collect()
    }

    fn raw_containers(&self) -> Vec<String> {
        let out = Command::new("lxc-ls")
            .args(["-P", self.lxc_path().to_str().unwrap(), "-1"])
            .output()
            .expect("lxc-ls");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect()
    }

    /// Snapshot names of a container (LXC comment files), unnamed ones as "".
    pub fn snapshots(&self, id: u32) -> Vec<String> {
        let snaps = self.path("lxc").join(self.arg(id)).join("snaps");
        let Ok(entries) = std::fs::read_dir(snaps) else {
            return Vec::new();
        };
        let mut v: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| {
                std::fs::read_to_string(e.path().join("comment"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.backend != Backend::Lxc {
            let out = Command::new(repo().join("fixtures/pve/node"))
                .arg("down")
                .arg(self.path("node"))
                .output();
            if let Some(o) = out.ok().filter(|o| !o.status.success()) {
                eprintln!(
                    "lab cleanup: node down: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        let lxc = self.lxc_path();
        // Clones before their parents: highest ids were cloned last in every test fleet.
        let mut names = self.raw_containers();
        names.sort_by_key(|n| std::cmp::Reverse(n.parse::<u32>().unwrap_or(0)));
        for n in names {
            // lxc-destroy -f -s refuses a running container with snapshots: kill it first.
            let _ = Command::new("lxc-stop")
                .args(["-P", lxc.to_str().unwrap(), "-n", &n, "-k"])
                .output();
            let out = Command::new("lxc-destroy")
                .args(["-P", lxc.to_str().unwrap(), "-n", &n, "-f", "-s"])
                .output();
            if let Ok(o) = out.as_ref().map_err(|_| ()).and_then(|o| {
                if o.status.success() {
                    Err(())
                } else {
                    Ok(o)
                }
            }) {
                eprintln!(
                    "lab cleanup: lxc-destroy {n} failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Steps started (in order) by the last run recorded in a job's journal.
pub fn steps_of_last_run(state: &Value) -> Vec<String> {
    let history = state["history"].as_array().cloned().unwrap_or_default();
    let last_run = history
        .iter()
        .rev()
        .find(|e| e["event"] == "step_started")
        .map(|e| e["run"].clone());
    history
        .iter()
        .filter(|e| e["event"] == "step_started" && Some(&e["run"]) == last_run.as_ref())
        .map(|e| {
            e["detail"]
                .as_str()
                .unwrap_or("")
                .split(" (")
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
