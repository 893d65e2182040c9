//! Runs commands as local processes: argv, stdin, a clean environment plus the given variables,
//! a timeout (the child is killed when it passes), output captured and logged.

use super::orphans::Ledger;
use super::{Cmd, ExecError, Output, Runner, Stats};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalRunner {
    dry_run: bool,
    stats: Stats,
    observer: std::sync::OnceLock<super::Observer>,
    ledger: std::sync::OnceLock<std::sync::Arc<Ledger>>,
}

impl LocalRunner {
    pub fn new(dry_run: bool) -> LocalRunner {
        LocalRunner {
            dry_run,
            stats: Stats::default(),
            observer: std::sync::OnceLock::new(),
            ledger: std::sync::OnceLock::new(),
        }
    }
}

/// In the child before `exec`: it gets SIGKILL when the thread that spawned it ends, which is
/// when Phoenix dies (that thread waits for the child meanwhile).
fn die_with_phoenix(parent: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the process.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Phoenix died before the prctl took effect.
        if libc::getppid() != parent {
            libc::_exit(137);
        }
    }
    Ok(())
}

/// Only these variables of Phoenix's own environment reach the commands it runs.
const PASS_ENV: &[&str] = &["PATH", "LANG", "LC_ALL", "TERM", "HOME", "USER"];

impl Runner for LocalRunner {
    fn dry_run(&self) -> bool {
        self.dry_run
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn observe(&self, f: super::Observer) {
        let _ = self.observer.set(f);
    }

    fn track(&self, ledger: std::sync::Arc<Ledger>) {
        let _ = self.ledger.set(ledger);
    }

    fn put_file(&self, path: &std::path::Path, data: &[u8], mode: u32) -> Result<(), ExecError> {
        use std::os::unix::fs::PermissionsExt;
        let write = super::write_cmd(path);
        if self.dry_run {
            super::skip(&write, self.observer.get());
            return Ok(());
        }
        self.stats.record(&write, std::time::Duration::ZERO);
        let shown = write.display();
        let err = |source| ExecError::Spawn {
            cmd: shown.clone(),
            source,
        };
        // A name of its own: two threads writing the same file must not share a temp file (the
        // second rename would find it gone).
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.phoenix-tmp-{}-{seq}", std::process::id()));
        std::fs::write(&tmp, data).map_err(err)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    fn output(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let shown = cmd.display();
        if self.dry_run && cmd.mutating {
            return Ok(super::skip(cmd, self.observer.get()));
        }
        let Some((program, args)) = cmd.argv.split_first() else {
            return Err(ExecError::Spawn {
                cmd: shown,
                source: std::io::Error::other("empty argv"),
            });
        };
        let started = Instant::now();
        let mut command = Command::new(program);
        command.args(args).env_clear();
        for k in PASS_ENV {
            if let Some(v) = std::env::var_os(k) {
                command.env(k, v);
            }
        }
        command
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C at the terminal reaches Phoenix, which decides
            // whether running steps finish, instead of killing them mid-write.
            .process_group(0);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the hook only calls async-signal-safe functions (see `die_with_phoenix`).
        unsafe {
            command.pre_exec(move || die_with_phoenix(parent));
        }
        let mut child = command.spawn().map_err(|source| ExecError::Spawn {
            cmd: shown.clone(),
            source,
        })?;
        let ledger = self.ledger.get();
        if let Some(l) = ledger {
            l.started(child.id());
        }
        let stdin_writer = match (cmd.stdin.clone(), child.stdin.take()) {
            (Some(data), Some(mut pipe)) => Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            })),
            _ => None,
        };
        let mut out_pipe = child.stdout.take();
        let mut err_pipe = child.stderr.take();
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = out_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = err_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let deadline = started + cmd.timeout;
        let mut pause = Duration::from_micros(50);
        let (code, timed_out) = loop {
            match child.try_wait() {
                Ok(Some(status)) => break (status.code(), false),
                Ok(None) if Instant::now() >= deadline => {
                    // Kill the whole group: the command and anything it started.
                    let _ = Command::new("kill")
                        .args(["-KILL", "--", &format!("-{}", child.id())])
                        .status();
                    let _ = child.kill();
                    let _ = child.wait();
                    break (None, true);
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if let Some(l) = ledger {
                        l.ended(child.id());
                    }
                    return Err(ExecError::Spawn {
                        cmd: shown,
                        source: e,
                    });
                }
            }
        };
        if let Some(l) = ledger {
            l.ended(child.id());
        }
        if let Some(w) = stdin_writer {
            let _ = w.join();
        }
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let duration = started.elapsed();
        self.stats.record(cmd, duration);
        let out = Output {
            code,
            stdout,
            stderr,
            duration,
            timed_out,
            skipped: false,
        };
        if let Some(observer) = self.observer.get() {
            observer(cmd, &out);
        }
        tracing::info!(
            target: "phoenix::exec",
            cmd = %shown,
            code = ?out.code,
            ms = duration.as_millis() as u64,
            timed_out,
            tail = %cmd.loggable_tail(&out, 5),
            "command"
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_writing_one_file_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memo");
        let r = std::sync::Arc::new(LocalRunner::new(false));
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (r, path) = (r.clone(), path.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        r.put_file(&path, format!("{i}\n").as_bytes(), 0o644)
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temp file left behind");
    }

    #[test]
    fn runs_with_stdin_env_and_exit_codes() {
        let r = LocalRunner::new(false);
        let out = r
            .output(
                &Cmd::probe(["sh", "-c", "cat; echo \"$X\"; exit 3"])
                    .stdin("in\n")
                    .env("X", "x y"),
            )
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout_str(), "in\nx y\n");
        assert!(matches!(
            r.run(&Cmd::probe(["false"])),
            Err(ExecError::Failed { code: Some(1), .. })
        ));
        assert!(matches!(
            r.run(&Cmd::probe(["/nonexistent/x"])),
            Err(ExecError::Spawn { .. })
        ));
    }

    #[test]
    fn the_environment_is_clean() {
        std::env::set_var("PHOENIX_SECRET_TEST", "leak");
        let out = LocalRunner::new(false).run(&Cmd::probe(["env"])).unwrap();
        assert!(!out.stdout_str().contains("PHOENIX_SECRET_TEST"));
    }

    #[test]
    fn timeouts_kill_the_command() {
        let r = LocalRunner::new(false);
        let t = Instant::now();
        let err = r
            .run(&Cmd::probe(["sh", "-c", "sleep 30"]).timeout(Duration::from_millis(200)))
            .unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn dry_run_skips_mutating_commands_only() {
        let r = LocalRunner::new(true);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        r.run(&Cmd::act(["touch", f.to_str().unwrap()])).unwrap();
        assert!(!f.exists());
        assert_eq!(
            r.run(&Cmd::probe(["echo", "hi"])).unwrap().stdout_str(),
            "hi\n"
        );
        assert_eq!(r.stats().snapshot().1, 0);
    }
}
