//! `services`: certificate renewal (`certificate_renewal`), `cert_renewal`: the named script of
//! `<config-dir>/host/` installed as `/usr/local/lib/phoenix/cert-renewal.sh` and run by
//! `phoenix-cert-renewal.timer` (`OnCalendar=`, hourly by default, `Persistent=true`). Upstream's
//! cron line (`/etc/cron.d/phoenix-cert-renewal`) is removed, so renewal runs once.

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::host_system::CertRenewal;
use crate::jobs::{Row, StepError, Table, Unbuildable};

const SCRIPT: &str = "/usr/local/lib/phoenix/cert-renewal.sh";
const SERVICE: &str = "/etc/systemd/system/phoenix-cert-renewal.service";
const TIMER: &str = "/etc/systemd/system/phoenix-cert-renewal.timer";
const CRON: &str = "/etc/cron.d/phoenix-cert-renewal";

#[derive(Clone)]
struct Files {
    script: Vec<u8>,
    service: String,
    timer: String,
}

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) -> Result<(), Unbuildable> {
    let Some(c) = cx.setup.cert_renewal.clone() else {
        return Ok(());
    };
    let files = files(cx, &c)?;
    let row = Row::new(
        "cert_renewal",
        HostState::Services,
        &("cert_renewal", &c, &files.script),
    );
    push_value(t, row, files, differs, install);
    Ok(())
}

fn files(cx: &HostCx, c: &CertRenewal) -> Result<Files, Unbuildable> {
    let script = super::scripts::read_script(cx, &c.script, "certificate_renewal.script")?;
    Ok(Files {
        script,
        service: format!("# Written by `phoenix setup`.\n[Unit]\nDescription=Renew the node's certificates (phoenix setup)\n\n[Service]\nType=oneshot\nExecStart={SCRIPT}\n"),
        timer: format!("# Written by `phoenix setup`.\n[Unit]\nDescription=Renew the node's certificates (phoenix setup)\n\n[Timer]\nOnCalendar={}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n", c.on_calendar),
    })
}

fn differs(cx: &HostCx, f: &Files) -> Result<Vec<Change>, StepError> {
    let mut out = Vec::new();
    let script = node::read(cx, SCRIPT)?;
    if script.as_deref().map(str::as_bytes) != Some(f.script.as_slice()) {
        out.push(Change::new(
            SCRIPT,
            script.map(|_| "another version".into()),
            Some("the configured script".into()),
        ));
    }
    out.extend(node::file_change(cx, SERVICE, &f.service)?);
    out.extend(node::file_change(cx, TIMER, &f.timer)?);
    let enabled = node::ask(
        cx,
        ["systemctl", "is-enabled", "phoenix-cert-renewal.timer"],
    )?;
    if enabled.as_deref() != Some("enabled") {
        out.push(Change::new(
            "phoenix-cert-renewal.timer",
            enabled,
            Some("enabled".into()),
        ));
    }
    if node::read(cx, CRON)?.is_some() {
        out.push(Change::new(CRON, Some("upstream's cron line".into()), None));
    }
    Ok(out)
}

fn install(cx: &HostCx, f: &Files) -> Result<(), StepError> {
    node::act(cx, ["mkdir", "-p", "/usr/local/lib/phoenix"])?;
    node::write_bytes(cx, SCRIPT, &f.script, 0o700)?;
    node::write(cx, SERVICE, &f.service, 0o644)?;
    node::write(cx, TIMER, &f.timer, 0o644)?;
    node::act(cx, ["rm", "-f", CRON])?;
    node::act(cx, ["systemctl", "daemon-reload"])?;
    node::act(
        cx,
        ["systemctl", "enable", "--now", "phoenix-cert-renewal.timer"],
    )
}
