//! A rig for unit tests of orchestration logic: a fleet written to a temp directory, a session on
//! the in-memory backend, a real sled store, and the events a run reports. Only in `#[cfg(test)]`.

use crate::backend::memory::MemoryBackend;
use crate::config::{Diagnostics, Fleet, GuestId};
use crate::converge::{self, Event, GuestSummary, Reporter, Summary};
use crate::exec::LocalRunner;
use crate::features::FeatureDirs;
use crate::graph::Graph;
use crate::jobs::{self, GuestJob};
use crate::limits::PoolLimits;
use crate::scheduler::{self, SharedReporter};
use crate::session::Session;
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Collects events.
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<Event>>>);

impl Reporter for Events {
    fn event(&mut self, e: &Event) {
        self.0.lock().unwrap().push(e.clone());
    }
}

impl Events {
    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Steps started, as `id step`.
    pub fn started(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                Event::StepStarted { id, step, .. } => Some(format!("{id} {step}")),
                _ => None,
            })
            .collect()
    }
}

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub backend: Arc<MemoryBackend>,
}

/// A container of the rig's fleet: from a template, or a clone of `parent`.
pub fn ct(name: &str, host: u8) -> Value {
    json!({
        "name": name, "memory_mb": 256, "cores": 1,
        "template": "/templates/base.tar.zst", "template_snapshot_name": "final-form",
        "network_config": {"bridge": "br0", "ip": format!("10.254.99.{host}/24"), "gw": "10.254.99.1"},
    })
}

pub fn clone_of(name: &str, host: u8, parent: u32) -> Value {
    let mut c = ct(name, host);
    c["clone_from_ctid"] = json!(parent.to_string());
    c
}

impl Rig {
    pub fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        for d in ["config", "state", "features"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Rig {
            dir,
            backend: Arc::new(MemoryBackend::default()),
        }
    }

    /// A feature script; its `# memory-...` comments say how it runs (see `MemoryBackend`).
    pub fn feature(&self, name: &str, body: &str) {
        let path = self.dir.path().join(format!("features/{name}.sh"));
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    }

    /// Writes the fleet: containers by id, and optionally VMs.
    pub fn fleet(&self, cts: &[(u32, Value)], vms: &[Value]) {
        let map: serde_json::Map<String, Value> = cts
            .iter()
            .map(|(id, v)| (id.to_string(), v.clone()))
            .collect();
        let config = self.dir.path().join("config");
        std::fs::write(
            config.join("phoenix_lxc_configs.json"),
            json!({"lxc_configs": map}).to_string(),
        )
        .unwrap();
        if !vms.is_empty() {
            std::fs::write(
                config.join("phoenix_vm_configs.json"),
                json!({"vm_defaults": {}, "vms": vms}).to_string(),
            )
            .unwrap();
        }
    }

    /// A session on the memory backend; the fleet must be valid.
    pub fn session(&self, dry_run: bool) -> Arc<Session> {
        let diag = Diagnostics::new();
        let fleet = Fleet::load_dir(&self.dir.path().join("config"), &diag).unwrap();
        crate::ops::load::check(&fleet, &diag);
        let errors: Vec<String> = diag
            .into_sorted()
            .iter()
            .filter(|d| d.severity == crate::config::Severity::Error)
            .map(|d| d.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let state_dir = self.dir.path().join("state");
        let store = (!dry_run).then(|| crate::ops::connect::open_store(&state_dir).unwrap());
        Arc::new(Session {
            graph: Graph::build(&fleet),
            features: FeatureDirs::new(&[self.dir.path().join("features")], None),
            fleet,
            runner: Arc::new(LocalRunner::new(dry_run)),
            backend: self.backend.clone(),
            store,
            state_dir,
            cancel: AtomicBool::new(false),
            limits: PoolLimits::new(1),
            guest_ssh: None,
            found: OnceLock::new(),
        })
    }

    /// Converges one guest in its own session.
    pub fn converge(&self, id: u32) -> (GuestSummary, Events) {
        self.converge_in(&self.session(false), id)
    }

    pub fn converge_in(&self, session: &Arc<Session>, id: u32) -> (GuestSummary, Events) {
        let mut events = Events::default();
        let job = jobs::prepare(session, GuestId(id), Duration::from_secs(30)).unwrap();
        let summary = match job {
            GuestJob::Container(job) => converge::converge(&job, session, None, &mut events),
            GuestJob::Vm(job) => converge::converge(&job, session, None, &mut events),
        }
        .unwrap();
        (summary, events)
    }

    /// Runs `ids` (empty: all) through the scheduler.
    pub fn run(&self, ids: &[u32], jobs: usize, fail_fast: bool) -> (Summary, Events) {
        self.run_without(ids, &[], jobs, fail_fast)
    }

    /// Runs `ids` (empty: all) without the guests `assumed` built (`--assume-built`).
    pub fn run_without(
        &self,
        ids: &[u32],
        assumed: &[u32],
        jobs: usize,
        fail_fast: bool,
    ) -> (Summary, Events) {
        let session = self.session(false);
        let ids: Vec<GuestId> = ids.iter().map(|i| GuestId(*i)).collect();
        let mut order = session.graph.order(&ids).unwrap();
        order.retain(|id| !assumed.contains(&id.0));
        let events = Events::default();
        let reporter = SharedReporter(Arc::new(Mutex::new(Box::new(events.clone()))));
        let opts = scheduler::Options {
            until: None,
            step_timeout: Duration::from_secs(30),
            fail_fast,
            jobs,
        };
        let summary = scheduler::run(session, order, opts, reporter).unwrap();
        (summary, events)
    }
}
