//! A fleet for a lab, written like a spec:
//!
//! ```ignore
//! lab.fleet()
//!     .template(900, "base").features(&["marker"])
//!     .clone_of(901, "tmpl", 900).snapshot("final-form")
//!     .clone_of(950, "api", 901).set("memory_mb", json!(384))
//!     .clone_of(951, "worker", 900).depends_on(&[950])
//!     .write();
//! ```
//!
//! Ids are lab-relative (900 is `lab.id(900)`); each guest gets the address `lab.ip_of(id)` on
//! the lab's bridge. A guest from `template` can be cloned (its `template_snapshot_name` is
//! `final-form`); a clone can be once given a `snapshot`.

use super::Lab;
use serde_json::{json, Value};

pub struct Fleet<'l> {
    lab: &'l Lab,
    guests: Vec<(u32, Value)>,
}

impl<'l> Fleet<'l> {
    pub fn new(lab: &'l Lab) -> Fleet<'l> {
        Fleet {
            lab,
            guests: Vec::new(),
        }
    }

    fn last(&mut self) -> &mut Value {
        &mut self.guests.last_mut().expect("add a guest first").1
    }

    /// A container from the test template.
    pub fn template(mut self, id: u32, name: &str) -> Self {
        self.guests
            .push((id, self.lab.template_ct(name, self.lab.host_of(id))));
        self
    }

    /// A clone of `parent`'s template snapshot.
    pub fn clone_of(mut self, id: u32, name: &str, parent: u32) -> Self {
        let c = self.lab.clone_ct(name, self.lab.host_of(id), parent);
        self.guests.push((id, c));
        self
    }

    /// The snapshot clones of the last guest start from (`template_snapshot_name`).
    pub fn snapshot(mut self, name: &str) -> Self {
        self.last()["template_snapshot_name"] = json!(name);
        self
    }

    pub fn features(mut self, names: &[&str]) -> Self {
        self.last()["features"] = json!(names);
        self
    }

    /// Lab-relative dependencies.
    pub fn depends_on(mut self, ids: &[u32]) -> Self {
        let deps: Vec<String> = ids.iter().map(|d| self.lab.arg(*d)).collect();
        self.last()["dependencies"] = json!(deps);
        self
    }

    /// Any other key of the last guest.
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.last()[key] = value;
        self
    }

    /// A VM in `phoenix_vm_configs.json` (lab-relative id).
    pub fn vm(self, id: u32, name: &str) -> Self {
        let vm = json!({"vmid": self.lab.id(id), "name": name, "is_template": true,
            "template_image": "debian-12-genericcloud-amd64.qcow2"});
        let path = self.lab.path("config/phoenix_vm_configs.json");
        let mut file: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| json!({"vm_defaults": {}, "vms": []}));
        file["vms"].as_array_mut().expect("vms").push(vm);
        std::fs::write(&path, file.to_string()).expect("write vm file");
        self
    }

    /// Writes the LXC file.
    pub fn write(self) {
        let guests = self.guests;
        self.lab.write_raw(&guests);
    }
}
