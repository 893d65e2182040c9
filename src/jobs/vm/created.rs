//! `created`: the VM exists, made from its cloud image (imported as the boot disk, with a
//! cloud-init drive, a serial console and the agent on) or cloned from its template. The node's
//! task is saved as the step's intent: a run killed meanwhile waits for it and adopts what it
//! made, or removes what it left.

use super::VmCx;
use crate::backend::files::is_volume_id;
use crate::backend::vm::{VmSource, VmSpec};
use crate::backend::TaskEnd;
use crate::config::vm::Vm;
use crate::config::{Fleet, GuestRef};
use crate::exec::Cmd;
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};
use serde::Serialize;
use std::time::Duration;

/// Where a template's image comes from.
#[derive(Debug, Clone, Serialize)]
pub enum Image {
    /// A path or a storage volume on the node.
    OnNode(String),
    /// Downloaded once into the node's cache and checked.
    Url { url: String, sha256: String },
    /// Upstream's shape: a file of Ubuntu's cloud images, checked against its `SHA256SUMS`.
    Ubuntu { url: String, sums: String },
}

#[derive(Debug, Clone, Serialize)]
enum Origin {
    Image(Image),
    Clone(VmSource),
}

pub fn steps(t: &mut Table<Lifecycle, VmCx>, cx: &VmCx) -> Result<(), Unbuildable> {
    let origin = origin(cx)?;
    let spec = spec(cx);
    t.push(
        Row::new("create", Lifecycle::Created, &("create", &spec, &origin))
            .pool_slot()
            .probe_act(exists, move |cx, at| create(cx, at, &spec, &origin))
            // Found at all, it holds: a missing VM is rebuilt from the first step.
            .live(|_, _| Ok(Vec::new())),
    );
    Ok(())
}

/// The VM's storage: its own, else `vm_defaults`', else Proxmox's `local-lvm`.
pub fn storage(fleet: &Fleet, vm: &Vm) -> String {
    vm.base
        .storage_pool
        .clone()
        .or_else(|| fleet.vm.defaults.storage_pool.clone())
        .unwrap_or_else(|| "local-lvm".into())
}

/// Whether `template_image` names a file or volume on the node (not a URL or an image name).
pub fn on_node(image: &str) -> bool {
    image.starts_with('/') || (is_volume_id(image) && !image.contains("://"))
}

/// The storage and bridge: the VM's own, else `vm_defaults`.
fn spec(cx: &VmCx) -> VmSpec {
    let vm = &cx.vm;
    let d = &cx.session.fleet.vm.defaults;
    VmSpec {
        id: vm.base.id,
        name: vm.base.name.clone(),
        storage: storage(&cx.session.fleet, vm),
        bridge: vm
            .network_bridge
            .clone()
            .or_else(|| d.network_bridge.clone())
            .unwrap_or_else(|| "vmbr0".into()),
    }
}

fn origin(cx: &VmCx) -> Result<Origin, Unbuildable> {
    let vm = &cx.vm;
    if let Some(parent) = vm.base.clone_from {
        let Some(GuestRef::Vm(p)) = cx.session.fleet.guest(parent) else {
            return Err(Unbuildable::config(format!(
                "clone_from_vmid {parent} is not a VM of this fleet"
            )));
        };
        // A template is cloned as it is; another VM from its template snapshot (full).
        let snapshot = match p.base.is_template {
            true => None,
            false => p.base.template_snapshot_name.clone(),
        };
        return Ok(Origin::Clone(VmSource::Clone {
            parent,
            full: vm.full_clone || !p.base.is_template,
            snapshot,
        }));
    }
    let Some(image) = &vm.template_image else {
        return Err(Unbuildable::config(
            "the VM has neither clone_from_vmid nor template_image",
        ));
    };
    Ok(Origin::Image(image_of(cx, vm, image)?))
}

fn image_of(cx: &VmCx, vm: &Vm, image: &str) -> Result<Image, Unbuildable> {
    if image.starts_with("http://") || image.starts_with("https://") {
        let sha256 = vm.template_image_sha256.clone().ok_or_else(|| {
            Unbuildable::config(format!(
                "template_image {image:?} is a URL: give its template_image_sha256 too"
            ))
        })?;
        return Ok(Image::Url {
            url: image.to_string(),
            sha256,
        });
    }
    if on_node(image) {
        return Ok(Image::OnNode(image.to_string()));
    }
    let release = cx.session.fleet.hypervisor.ubuntu_release.clone().ok_or_else(|| {
        Unbuildable::config(format!(
            "template_image {image:?} is an Ubuntu cloud image's name, and no vm_defaults.ubuntu_release says which release"
        ))
    })?;
    let dir = format!("https://cloud-images.ubuntu.com/{release}/current");
    Ok(Image::Ubuntu {
        url: format!("{dir}/{image}"),
        sums: format!("{dir}/SHA256SUMS"),
    })
}

/// It exists, and no earlier attempt was interrupted half way through making it (unless that
/// attempt's task finished the job after all).
fn exists(cx: &VmCx, at: &Attempt<'_>) -> Result<bool, StepError> {
    let found = cx.vms().vm_state(cx.id())?.is_some();
    if !at.intent.issued {
        return Ok(found);
    }
    let Some(task) = at.intent.task.clone() else {
        return Ok(false);
    };
    match cx.session.backend.settle_task(&task)? {
        TaskEnd::Ok if found => {
            tracing::info!(id = %cx.id(), %task, "adopted what the interrupted attempt's task made");
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn create(
    cx: &VmCx,
    at: &mut Attempt<'_>,
    spec: &VmSpec,
    origin: &Origin,
) -> Result<(), StepError> {
    let vms = cx.vms();
    if at.intent.issued {
        vms.vm_discard_partial(cx.id())?;
    }
    let source = match origin {
        Origin::Clone(source) => source.clone(),
        Origin::Image(image) => VmSource::Image(image_on_node(cx, image)?),
    };
    let mut started = at.issue()?;
    vms.vm_create(spec, &source, &mut started)?;
    Ok(())
}

/// The image's path on the node, fetched into its cache first where it is a URL.
fn image_on_node(cx: &VmCx, image: &Image) -> Result<String, StepError> {
    let vms = cx.vms();
    let path = match image {
        Image::OnNode(p) => p.clone(),
        Image::Url { url, sha256 } => vms.vm_fetch_image(url, sha256)?,
        Image::Ubuntu { url, sums } => vms.vm_fetch_image(url, &published_sum(cx, url, sums)?)?,
    };
    if cx.session.runner.dry_run() || vms.vm_image_exists(&path)? {
        return Ok(path);
    }
    Err(StepError::new(
        format!("the image {path} is not on the node"),
        "give template_image as an existing path or volume there, or as a URL with its sha256",
    ))
}

/// The SHA-256 `SHA256SUMS` lists for the file `url` names (`<sum> *<file>` lines).
fn published_sum(cx: &VmCx, url: &str, sums: &str) -> Result<String, StepError> {
    let file = url.rsplit('/').next().unwrap_or_default();
    let cmd = Cmd::probe(["curl", "-fsSL", sums]).timeout(Duration::from_secs(120));
    let text = cx.session.runner.run(&cmd)?.stdout_str();
    text.lines()
        .find_map(|l| {
            let (sum, name) = l.split_once(char::is_whitespace)?;
            (name.trim().trim_start_matches('*') == file).then(|| sum.to_string())
        })
        .ok_or_else(|| StepError::new(format!("{sums} does not list {file}"), text))
}
