//! Settings on plain LXC. Each one is its config section ([`super::sections`]) plus, for some,
//! something outside the config file:
//!
//! | setting | besides its section |
//! |---|---|
//! | `hostname` | `lxc.uts.name` and the guest's `/etc/hostname` |
//! | `network` | the guest's `/etc/resolv.conf` when nameservers are set |
//! | `mounts` | volume directories, and bind-mount owners (shifted when unprivileged) |
//! | `resources` | applied live to a running container (cgroup limits) |
//!
//! A section that differs is rewritten; settings that only take effect at a start
//! ([`Setting::needs_restart`]) restart a running container.

use super::config_file::{section, values, with_key, with_section};
use super::sections::resolv_conf;
use super::LxcBackend;
use crate::backend::change::{self, Change, Live};
use crate::backend::{owner, Applied, BackendError, Hypervisor, Result, RunState, Setting};
use crate::config::GuestId;
use crate::exec::Cmd;
use std::os::unix::fs::MetadataExt;

impl LxcBackend {
    /// What differs of `s` in the container as read in `live`: its section, and what it needs
    /// outside the config file.
    pub(super) fn setting_diff(&self, live: &Live, s: &Setting) -> Result<Vec<Change>> {
        let have = section(&live.config, s.name()).unwrap_or_default();
        let mut out = change::lines(&have, &self.section_lines(live.id, s)?, '=');
        out.extend(self.outside_diff(live.id, &live.config, s)?);
        Ok(out)
    }

    /// What the setting needs outside its section.
    fn outside_diff(&self, id: GuestId, config: &str, s: &Setting) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        match s {
            Setting::Hostname(name) => {
                let uts = values(config, "lxc.uts.name");
                if uts != [name.clone()] {
                    out.push(Change::new(
                        "lxc.uts.name",
                        uts.first().cloned(),
                        Some(name.clone()),
                    ));
                }
                let file = self.read_guest_file(id, config, "/etc/hostname")?;
                let file = file.as_deref().map(str::trim);
                if file != Some(name.as_str()) {
                    out.push(Change::new(
                        "/etc/hostname",
                        file.map(String::from),
                        Some(name.clone()),
                    ));
                }
            }
            Setting::Network { nameservers, .. } if !nameservers.is_empty() => {
                let want = resolv_conf(nameservers);
                let have = self.read_guest_file(id, config, "/etc/resolv.conf")?;
                if have.as_deref() != Some(want.as_str()) {
                    let one_line = |t: &str| t.trim().replace('\n', "; ");
                    out.push(Change::new(
                        "/etc/resolv.conf",
                        have.as_deref().map(one_line),
                        Some(one_line(&want)),
                    ));
                }
            }
            Setting::Mounts {
                binds,
                volumes,
                ids,
            } => {
                for v in volumes {
                    let dir = self.volume_dir(id, v);
                    if !dir.is_dir() {
                        out.push(Change::missing(
                            "volume directory",
                            dir.display().to_string(),
                        ));
                    }
                }
                out.extend(binds.iter().filter_map(|b| {
                    let have = std::fs::metadata(&b.host_path)
                        .ok()
                        .map(|m| format!("{}:{}", m.uid(), m.gid()));
                    owner::change(b, ids, have)
                }));
            }
            _ => {}
        }
        Ok(out)
    }

    pub(super) fn apply_setting(&self, id: GuestId, s: &Setting) -> Result<Applied> {
        let config = self.read_config(id)?;
        let running = self.state(id)? == Some(RunState::Running);
        self.apply_outside(id, &config, s, running)?;
        let want = self.section_lines(id, s)?;
        if section(&config, s.name()).unwrap_or_default() == want {
            return Ok(Applied::Live);
        }
        let restart = running && s.needs_restart();
        if restart {
            self.stop(id)?;
        }
        self.write_file(
            &self.config_path(id),
            with_section(&config, s.name(), &want).as_bytes(),
        )?;
        if let (
            true,
            Setting::Resources {
                memory_mb,
                swap_mb,
                cores,
            },
        ) = (running, s)
        {
            self.set_live_limits(id, *memory_mb, *swap_mb, *cores)?;
        }
        if restart {
            self.start(id)?;
            return Ok(Applied::Restarted);
        }
        Ok(Applied::Live)
    }

    fn apply_outside(&self, id: GuestId, config: &str, s: &Setting, running: bool) -> Result<()> {
        match s {
            Setting::Hostname(name) => {
                if values(config, "lxc.uts.name") != [name.clone()] {
                    self.write_file(
                        &self.config_path(id),
                        with_key(config, "lxc.uts.name", name).as_bytes(),
                    )?;
                }
                self.write_guest_file(id, "/etc/hostname", format!("{name}\n").as_bytes())?;
                if running {
                    self.attach(id, &Cmd::act(["hostname", name.as_str()]))?;
                }
            }
            Setting::Mounts {
                binds,
                volumes,
                ids,
            } => {
                for v in volumes {
                    let dir = self.volume_dir(id, v);
                    if !dir.is_dir() {
                        self.runner
                            .run(&Cmd::act(["mkdir", "-p", &dir.display().to_string()]))?;
                    }
                }
                for b in binds {
                    if let Some(spec) = owner::chown_spec(b, ids) {
                        self.runner.run(&Cmd::act(["chown", &spec, &b.host_path]))?;
                    }
                }
            }
            Setting::Network { nameservers, .. } if !nameservers.is_empty() => {
                self.write_guest_file(id, "/etc/resolv.conf", resolv_conf(nameservers).as_bytes())?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies resource limits to a running container. On cgroup v1 the memory limit may not
    /// exceed memory+swap, so when memory grows memsw goes first, and last when it shrinks.
    fn set_live_limits(&self, id: GuestId, memory_mb: u64, swap_mb: u64, cores: u64) -> Result<()> {
        let mut values = self
            .cgroup
            .live_values(memory_mb, swap_mb, cores, self.memsw);
        let set = |key: &str, value: &str| -> Result<bool> {
            let mut argv = self.lxc("lxc-cgroup", id);
            argv.extend([key.to_string(), value.to_string()]);
            Ok(self.runner.output(&Cmd::act(argv))?.success())
        };
        let fail = |k: &str, v: &str| {
            BackendError::Invalid(format!(
                "{id}: cannot set {k} to {v} on the running container"
            ))
        };
        if let Some(memory) = values
            .iter()
            .position(|(k, _)| k == "memory.limit_in_bytes")
        {
            let (k, v) = values.remove(memory);
            if !set(&k, &v)? {
                // Growing past memory+swap: raise memsw first, then memory.
                if let Some(memsw) = values
                    .iter()
                    .position(|(k, _)| k == "memory.memsw.limit_in_bytes")
                {
                    let (mk, mv) = values.remove(memsw);
                    if !set(&mk, &mv)? {
                        return Err(fail(&mk, &mv));
                    }
                }
                if !set(&k, &v)? {
                    return Err(fail(&k, &v));
                }
            }
        }
        for (k, v) in values {
            if !set(&k, &v)? {
                return Err(fail(&k, &v));
            }
        }
        Ok(())
    }
}
