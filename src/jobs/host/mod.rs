//! The node itself as a kind of job: job id `host/<node>`, converged by `phoenix setup` from the
//! hypervisor file, with states of its own. Every step reads the node and writes only what
//! differs; each is checked again on every run (drift is put back).
//!
//! | state | steps | built in |
//! |---|---|---|
//! | system | `timezone`, `hostname` | [`system`] |
//! | system | `apt_sources`, `apt_packages` | [`apt`] |
//! | system | `network`: the management interface | [`network`] |
//! | accounts | `user:<name>` per user: login, SSH keys, sudo | [`accounts`] |
//! | accounts | `pve_user:<name>` per user: `<name>@pam` and its role | [`pve_users`] |
//! | storage | `zfs_arc`, `zfs_pool:<name>`, `zfs_dataset:<pool>/<name>` | [`zfs`] |
//! | storage | `nfs_exports`: Phoenix's block of `/etc/exports`, beside lines it did not write | [`exports`] |
//! | storage | `storage:<id>` per storage, `storages_unlisted` | [`storage`] |
//! | services | `firewall`: `/etc/pve/firewall/cluster.fw` | [`firewall`] |
//! | services | `samba_user`, `samba_share:<name>` per share | [`samba`] |
//! | services | `dns_server`: dnsmasq with the fleet's names | [`dns`] |
//! | services | `apparmor`: tunables | [`apparmor`] |
//! | services | `cert_renewal`: a systemd timer | [`certs`] |
//! | services | `nvidia_driver` (a reboot), `gpu_init` | [`nvidia`] |
//! | completed | `host_script:<name>` per `host_scripts` entry; a reboot it needs is a state of the run | [`scripts`] |
//!
//! What destroys data — wiping a disk, removing a storage Phoenix did not create, replacing a
//! hand-written interface or export — happens only with `--allow-destructive`, and
//! `phoenix plan --setup --allow-destructive` lists it first.
//!
//! A step runs only when its section is in the file.

mod accounts;
mod apparmor;
mod apt;
mod certs;
mod dns;
mod exports;
mod firewall;
mod network;
mod node;
mod ntlm;
mod nvidia;
mod pve_users;
mod reboot;
mod samba;
mod scripts;
mod storage;
mod system;
mod zfs;

use super::{JobKind, Label, Row, StepCx, StepError, Table, Unbuildable};
use crate::backend::Change;
use crate::config::host::HostSetup;
use crate::config::hypervisor::HostFirewall;
use crate::session::Session;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

state_machine::job_states! {
    /// The node's states, in order: `defined → system → accounts → storage → services →
    /// completed`.
    pub enum HostState {
        Defined = "defined",
        System = "system",
        Accounts = "accounts",
        Storage = "storage",
        Services = "services",
        Completed = "completed",
    }
}

/// What a host step's probe and act receive.
pub struct HostCx {
    pub session: Arc<Session>,
    pub setup: HostSetup,
    pub firewall: Option<HostFirewall>,
    /// The node's `/etc/pve` (under `--pve-root` on a stand-in node).
    pub pve_etc: PathBuf,
    /// Reboot the node when a step needs it (`--reboot`).
    pub reboot: bool,
    /// Wipe disks, remove storages Phoenix did not create, move hand-written definitions
    /// (`--allow-destructive`).
    pub allow_destructive: bool,
    pub step_timeout: Duration,
}

impl StepCx for HostCx {
    /// Host steps read what they compare when they are checked.
    type Seen = ();
}

/// The node's job, ready to converge.
pub struct HostJob {
    label: Label,
    cx: HostCx,
    table: Table<HostState, HostCx>,
}

impl HostJob {
    /// The job of node `node` for the session's hypervisor file.
    pub fn prepare(
        session: &Arc<Session>,
        node: &str,
        how: HostOptions,
    ) -> Result<HostJob, Unbuildable> {
        let h = &session.fleet.hypervisor;
        let cx = HostCx {
            session: session.clone(),
            setup: h.setup.clone(),
            firewall: h.firewall.clone(),
            pve_etc: how.pve_etc,
            reboot: how.reboot,
            allow_destructive: how.allow_destructive,
            step_timeout: how.step_timeout,
        };
        let mut table = Table::default();
        system::steps(&mut table, &cx);
        apt::steps(&mut table, &cx);
        network::steps(&mut table, &cx);
        accounts::steps(&mut table, &cx);
        pve_users::steps(&mut table, &cx);
        zfs::steps(&mut table, &cx);
        exports::steps(&mut table, &cx);
        storage::steps(&mut table, &cx);
        firewall::steps(&mut table, &cx);
        samba::steps(&mut table, &cx);
        dns::steps(&mut table, &cx);
        apparmor::steps(&mut table, &cx);
        certs::steps(&mut table, &cx)?;
        nvidia::steps(&mut table, &cx);
        scripts::steps(&mut table, &cx)?;
        Ok(HostJob {
            label: Label {
                job_id: format!("host/{node}"),
                id: "host".into(),
                name: node.to_string(),
            },
            cx,
            table,
        })
    }
}

/// How the node's job runs.
pub struct HostOptions {
    /// The node's `/etc/pve` (under `--pve-root` on a stand-in node).
    pub pve_etc: PathBuf,
    /// Reboot the node when a step needs it.
    pub reboot: bool,
    /// Allow what destroys data (`--allow-destructive`).
    pub allow_destructive: bool,
    pub step_timeout: Duration,
}

/// A step that makes the node hold `want` and finds drift by asking again: `probe` says what
/// differs (empty: it holds), `act` puts it right.
fn push(
    t: &mut Table<HostState, HostCx>,
    row: Row<HostState>,
    probe: impl Fn(&HostCx) -> Result<Vec<Change>, StepError> + Send + Sync + Clone + 'static,
    act: impl Fn(&HostCx) -> Result<(), StepError> + Send + Sync + 'static,
) {
    let live = probe.clone();
    let step = row.probe_act(move |cx, _| Ok(probe(cx)?.is_empty()), move |cx, _| act(cx));
    t.push(step.live(move |cx, _| live(cx)));
}

/// [`push`] of a step about one configured value: `probe` and `act` each get the value.
fn push_value<T: Send + Sync + 'static>(
    t: &mut Table<HostState, HostCx>,
    row: Row<HostState>,
    value: T,
    probe: impl Fn(&HostCx, &T) -> Result<Vec<Change>, StepError> + Send + Sync + 'static,
    act: impl Fn(&HostCx, &T) -> Result<(), StepError> + Send + Sync + 'static,
) {
    let value = Arc::new(value);
    let (probe, seen) = (Arc::new(probe), value.clone());
    push(
        t,
        row,
        move |cx| probe(cx, &seen),
        move |cx| act(cx, &value),
    );
}

impl JobKind for HostJob {
    type State = HostState;
    type Cx = HostCx;

    fn label(&self) -> &Label {
        &self.label
    }

    fn cx(&self) -> &HostCx {
        &self.cx
    }

    fn table(&self) -> &Table<HostState, HostCx> {
        &self.table
    }

    fn pool(&self) -> &str {
        "host"
    }

    fn inspect(&self, _: bool) -> Result<Option<()>, StepError> {
        Ok(Some(()))
    }

    /// The node runs whenever Phoenix can reach it.
    fn running(&self) -> Result<bool, StepError> {
        Ok(true)
    }

    fn start(&self) -> Result<(), StepError> {
        Ok(())
    }
}
