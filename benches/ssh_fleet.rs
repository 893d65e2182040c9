//! Benchmark: the idempotent re-run of a converged 6-guest fleet on the Proxmox backend over SSH
//! (a stand-in node, `fixtures/pve/node`, on real LXC; sshd is real, on the loopback), and the
//! five clones rebuilt with `--jobs 1` and `--jobs 4` (channels of one SSH connection). Run as
//! root: `cargo bench --bench ssh_fleet`. Target: under 1 s for the no-op.

#[path = "../tests/lab/mod.rs"]
mod lab;

use lab::{Backend, Lab};
use std::time::{Duration, Instant};

fn main() {
    let Some(lab) = Lab::with_backend(Backend::ProxmoxSsh) else {
        return;
    };
    let mut fleet = vec![(900, lab.template_ct("base", 100))];
    for i in 0..5u32 {
        fleet.push((950 + i, lab.clone_ct(&format!("g{i}"), 50 + i as u8, 900)));
    }
    lab.write_fleet(&fleet);
    let t = Instant::now();
    let run = lab.run_json(&["--all"]);
    assert_eq!(run.code, 0, "first build failed: {run}");
    println!(
        "ssh_fleet: first build of a template and 5 clones over SSH: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut times: Vec<Duration> = (0..7)
        .map(|_| {
            let t = Instant::now();
            let run = lab.run_json(&["--all"]);
            assert_eq!(run.code, 0, "{run}");
            assert_eq!(run.summary.mutating_commands, 0);
            t.elapsed()
        })
        .collect();
    times.sort();
    println!("  no-op re-run of the 6 converged guests over SSH: median {:.0} ms, worst {:.0} ms (target < 1000 ms)", times[3].as_secs_f64() * 1000.0, times[6].as_secs_f64() * 1000.0);
    let clones: Vec<String> = (0..5u32).map(|i| lab.arg(950 + i)).collect();
    for jobs in ["1", "4"] {
        let mut delete = vec!["delete", "--yes"];
        delete.extend(clones.iter().map(String::as_str));
        assert!(lab.run(&delete).status.success());
        let t = Instant::now();
        let run = lab.run_json(&["--all", "--jobs", jobs]);
        assert_eq!(run.code, 0, "{run}");
        println!(
            "  the 5 clones rebuilt over SSH with --jobs {jobs}: {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
}
