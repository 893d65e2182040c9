//! Whether a container's network answers: it reaches its gateway (when it has a static one).

use crate::config::lxc::Container;
use crate::config::values::IpConfig;
use crate::exec::Cmd;
use crate::jobs::lxc::CtCx;
use crate::jobs::StepError;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The gateway of net0, when it has a static address.
pub fn gateway(ct: &Container) -> Option<Ipv4Addr> {
    let net = ct.network.as_ref()?;
    match net.ip {
        IpConfig::Static(_) => net.gw,
        IpConfig::Dhcp => None,
    }
}

const PING: &str = "(ping -c1 -W1 \"$1\" || busybox ping -c1 -W1 \"$1\") >/dev/null 2>&1";

/// Whether the guest reaches its gateway now (true when it has none to reach).
pub fn answers(cx: &CtCx) -> Result<bool, StepError> {
    let Some(gw) = gateway(&cx.ct) else {
        return Ok(true);
    };
    let out = cx.backend().exec(
        cx.id(),
        &Cmd::probe(["/bin/sh", "-c", PING, "sh", &gw.to_string()])
            .timeout(Duration::from_secs(10)),
    )?;
    Ok(out.success())
}

/// Waits up to 15 s for the guest to reach its gateway.
pub fn wait(cx: &CtCx) -> Result<bool, StepError> {
    let Some(gw) = gateway(&cx.ct) else {
        return Ok(true);
    };
    let script = format!(
        "i=0; while [ $i -lt 30 ]; do {PING} && exit 0; i=$((i+1)); sleep 0.5; done; exit 1"
    );
    let out = cx.backend().exec(
        cx.id(),
        &Cmd::probe(["/bin/sh", "-c", &script, "sh", &gw.to_string()])
            .timeout(Duration::from_secs(25)),
    )?;
    Ok(out.success())
}
