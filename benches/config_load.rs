//! Benchmark: load + validate + order a generated 10,000-guest configuration.
//! Run with `cargo bench --bench config_load`. Reports the median and worst of several runs and
//! the peak memory of the whole process (VmHWM, generation of the file included).
//! `PHASES=1` also prints the time of each phase and of the bare JSON parse.

use phoenix::config::{Diagnostics, Fleet};
use phoenix::graph::Graph;
use serde_json::json;
use std::time::Instant;

const GUESTS: u32 = 10_000;
const RUNS: usize = 7;

/// 100 templates (each cloned from the previous ten's first) and 9,900 guests cloned from them,
/// every tenth guest depending on the one before it.
fn generate(dir: &std::path::Path) {
    let mut cts = serde_json::Map::new();
    for i in 0..GUESTS {
        let id = 1000 + i;
        let mut ct = json!({
            "name": format!("guest-{id}"),
            "memory_mb": 1024, "cores": 2, "storage_pool": "local", "storage_size_gb": 8,
            "network_config": {"name": "eth0", "bridge": "vmbr0",
                "ip": format!("10.{}.{}.{}/8", 1 + i / 65536, (i / 256) % 256, i % 256), "gw": "10.0.0.1"},
            "features": ["base_setup", "docker"],
            "firewall": {"enabled": true, "rules": [{"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22"}]},
        });
        if i < 100 {
            ct["template_snapshot_name"] = json!("final-form");
            if i % 10 == 0 {
                ct["template"] = json!("/var/cache/phoenix/templates/base.tar.zst");
            } else {
                ct["clone_from_ctid"] = json!((1000 + i - i % 10).to_string());
            }
        } else {
            ct["clone_from_ctid"] = json!((1000 + i % 100).to_string());
            if i % 10 == 0 {
                ct["dependencies"] = json!([(id - 1).to_string()]);
            }
        }
        cts.insert(id.to_string(), ct);
    }
    let doc = json!({"lxc_configs": cts});
    std::fs::write(
        dir.join("phoenix_lxc_configs.json"),
        serde_json::to_vec(&doc).unwrap(),
    )
    .unwrap();
}

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn once(dir: &std::path::Path) -> (f64, usize) {
    let t = Instant::now();
    let diag = Diagnostics::new();
    let fleet = Fleet::load_dir(dir, &diag).expect("load");
    let t1 = t.elapsed();
    phoenix::ops::load::check(&fleet, &diag);
    let t2 = t.elapsed();
    let order = Graph::build(&fleet).order(&[]).expect("order");
    if std::env::var_os("PHASES").is_some() {
        eprintln!(
            "load {:?} check {:?} order {:?}",
            t1,
            t2 - t1,
            t.elapsed() - t2
        );
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        !diag.has_errors(),
        "{:?}",
        diag.into_sorted().into_iter().take(3).collect::<Vec<_>>()
    );
    (ms, order.len())
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let bytes = std::fs::metadata(dir.path().join("phoenix_lxc_configs.json"))
        .unwrap()
        .len();
    let _ = once(dir.path()); // warm the page cache
    if std::env::var_os("PHASES").is_some() {
        let bytes = std::fs::read(dir.path().join("phoenix_lxc_configs.json")).unwrap();
        for _ in 0..3 {
            let t = Instant::now();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let parsed = t.elapsed();
            drop(v);
            eprintln!("parse {parsed:?} parse+drop {:?}", t.elapsed());
        }
    }
    let mut times: Vec<f64> = (0..RUNS).map(|_| once(dir.path()).0).collect();
    let peak = peak_kib();
    times.sort_by(|a, b| a.total_cmp(b));
    let (_, n) = once(dir.path());
    println!(
        "config_load: {n} guests, {:.1} MiB of JSON",
        bytes as f64 / 1048576.0
    );
    println!(
        "  load+validate+order: median {:.1} ms, worst {:.1} ms over {RUNS} runs",
        times[RUNS / 2],
        times[RUNS - 1]
    );
    println!(
        "  peak memory (VmHWM, whole process): {:.1} MiB",
        peak as f64 / 1024.0
    );
}
