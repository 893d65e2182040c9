//! The shipped feature scripts: they parse, pass shellcheck, and their `--check` mode reports
//! without changing anything, inside a real container.

mod lab;

use std::io::Write;
use std::process::{Command, Stdio};

fn shipped() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(lab::repo().join("features"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_upstream_feature_names_are_shipped() {
    for name in [
        "base_setup",
        "trusted_ca",
        "step_cli",
        "docker",
        "nvidia",
        "ollama",
        "vllm",
        "python_api_service",
        "step_ca",
        "traefik",
        "portainer",
    ] {
        assert!(
            lab::repo().join(format!("features/{name}.sh")).is_file(),
            "{name}"
        );
    }
}

/// Every shipped feature says what it reads (`# phoenix-reads:` in its header comment), so that
/// it runs again only when that changes.
#[test]
fn every_shipped_feature_declares_its_reads() {
    for s in shipped() {
        let body = std::fs::read_to_string(&s).unwrap();
        let header: Vec<&str> = body.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(
            header.iter().any(|l| l.starts_with("# phoenix-reads:")),
            "{} declares no `# phoenix-reads:` in its header",
            s.display()
        );
        // `phoenix adopt` asks a feature's --check mode only where the script says it has one.
        assert!(
            header.contains(&"# phoenix-check-mode: yes"),
            "{} declares no `# phoenix-check-mode: yes`",
            s.display()
        );
    }
}

#[test]
fn every_script_parses_and_passes_shellcheck() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let shellcheck = Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(shellcheck || !ci, "CI=true needs shellcheck");
    let mut scripts = shipped();
    for dir in [
        "config/features",
        "config/scripts",
        "fixtures/features",
        "fixtures/scripts",
    ] {
        scripts.extend(
            std::fs::read_dir(lab::repo().join(dir))
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.path()),
        );
    }
    scripts.push(lab::repo().join("src/jobs/guest/run_once.sh"));
    scripts.push(lab::repo().join("src/jobs/guest/upstream_utils.sh"));
    for s in &scripts {
        let out = Command::new("bash").arg("-n").arg(s).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            s.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        if shellcheck {
            let out = Command::new("shellcheck").arg(s).output().unwrap();
            assert!(
                out.status.success(),
                "{}:\n{}",
                s.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        } else {
            eprintln!("SKIP shellcheck (not installed) for {}", s.display());
        }
    }
}

#[test]
fn check_mode_reports_and_changes_nothing_in_a_real_container() {
    let Some(lab) = lab::Lab::new() else { return };
    lab.write_fleet(&[(900, lab.template_ct("probe", 100))]);
    let out = lab.run(&["run", &lab.arg(900)]);
    assert!(out.status.success(), "{}", lab::text(&out));
    let snapshot = |lab: &lab::Lab| {
        String::from_utf8_lossy(&lab.attach(900, &["sh", "-c", "ls -la /etc/apt/sources.list.d /usr/local/share/ca-certificates /etc/systemd/system; ls /usr/bin | wc -l"]).stdout).into_owned()
    };
    let before = snapshot(&lab);
    for script in shipped() {
        let name = script.file_stem().unwrap().to_string_lossy().into_owned();
        let mut child = Command::new("lxc-attach")
            .args([
                "-P",
                lab.path("lxc").to_str().unwrap(),
                "-n",
                &lab.arg(900),
                "--clear-env",
                "--set-var",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "--",
                "bash",
                "-s",
                "--",
                "--check",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&std::fs::read(&script).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        // Nothing is installed in the bare template: every check says "not in place" (1).
        assert_eq!(
            code,
            Some(1),
            "{name} --check: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.stdout.is_empty() || !out.stderr.is_empty(),
            "{name} --check says why"
        );
    }
    assert_eq!(snapshot(&lab), before, "--check changed the guest");
}
