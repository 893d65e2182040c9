//! Where commands run. A command is an argv vector (never a shell string), with optional stdin and
//! environment, a timeout, and a flag saying whether it changes anything. Every command is logged
//! with its argv, exit code, duration and output tail, and counted.

pub mod local;
pub mod orphans;
pub mod quote;
pub mod ssh;
pub mod ssh_key;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use local::LocalRunner;

/// One command to run. Its `Debug` shows stdin's length only (it may carry a secret).
#[derive(Clone)]
pub struct Cmd {
    pub argv: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Whether it changes the host or a guest. Dry runs print these instead of running them.
    pub mutating: bool,
    /// Its output holds a secret (a password hash read to compare it): never logged.
    pub secret_output: bool,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd")
            .field("argv", &self.argv)
            .field(
                "stdin",
                &self.stdin.as_ref().map(|s| format!("<{} bytes>", s.len())),
            )
            .field("env", &self.env)
            .field("timeout", &self.timeout)
            .field("mutating", &self.mutating)
            .field("secret_output", &self.secret_output)
            .finish()
    }
}

/// The default timeout of a command that has none of its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl Cmd {
    /// A read-only command (a probe).
    pub fn probe<I, S>(argv: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            stdin: None,
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            mutating: false,
            secret_output: false,
        }
    }

    /// A command that changes something.
    pub fn act<I, S>(argv: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            mutating: true,
            ..Cmd::probe(argv)
        }
    }

    /// Its output is not logged (it holds a secret).
    pub fn secret_output(mut self) -> Cmd {
        self.secret_output = true;
        self
    }

    /// What the log may show of its output: the last `lines` lines, unless it holds a secret.
    pub fn loggable_tail(&self, out: &Output, lines: usize) -> String {
        match self.secret_output {
            true => "<secret output not logged>".into(),
            false => out.tail(lines),
        }
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    /// An environment variable. Never a secret: over SSH and through `pct`/`lxc-attach` it is
    /// part of the command line (secrets go on stdin).
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Cmd {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The same command (stdin, timeout, mutating, secret output) as `argv` with no environment
    /// of its own: how a backend wraps a guest command in `lxc-attach`/`pct exec`.
    pub fn wrapped(&self, argv: Vec<String>) -> Cmd {
        Cmd {
            argv,
            stdin: self.stdin.clone(),
            env: Vec::new(),
            timeout: self.timeout,
            mutating: self.mutating,
            secret_output: self.secret_output,
        }
    }

    /// The argv as one line for logs and messages, each element quoted when it needs it.
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| quote::quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a command did.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Exit code; `None` when it was killed (timeout or signal).
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub duration: Duration,
    pub timed_out: bool,
    /// Dry run: a mutating command that was not run (it "succeeded" with no output).
    pub skipped: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The last `lines` lines of stdout and stderr together, for error reports.
    pub fn tail(&self, lines: usize) -> String {
        let mut all = String::from_utf8_lossy(&self.stdout).into_owned();
        if !self.stderr.is_empty() {
            if !all.is_empty() && !all.ends_with('\n') {
                all.push('\n');
            }
            all.push_str(&String::from_utf8_lossy(&self.stderr));
        }
        let v: Vec<&str> = all.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }
}

/// Why a command could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` timed out after {secs}s")]
    Timeout {
        cmd: String,
        secs: u64,
        output: Box<Output>,
    },
    #[error("`{cmd}` exited with {}: {}", code.map_or("a signal".to_string(), |c| format!("code {c}")), first_line(tail))]
    Failed {
        cmd: String,
        code: Option<i32>,
        tail: String,
        output: Box<Output>,
    },
}

fn first_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
}

impl ExecError {
    /// The output tail, when the command ran.
    pub fn tail(&self) -> String {
        match self {
            ExecError::Spawn { .. } => String::new(),
            ExecError::Timeout { output, .. } | ExecError::Failed { output, .. } => output.tail(40),
        }
    }
}

/// A dry run's answer to a mutating command: not run, told to `observer`.
pub fn skip(cmd: &Cmd, observer: Option<&Observer>) -> Output {
    tracing::info!(target: "phoenix::exec", cmd = %cmd.display(), "dry run: not run");
    let out = Output {
        code: Some(0),
        skipped: true,
        ..Output::default()
    };
    if let Some(observer) = observer {
        observer(cmd, &out);
    }
    out
}

/// How a file write is shown and counted: as the command `write PATH`.
pub fn write_cmd(path: &std::path::Path) -> Cmd {
    Cmd::act(["write".to_string(), path.display().to_string()])
}

thread_local! {
    static CURRENT_GUEST: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Names the guest the commands run on this thread are for (reported with them).
pub fn set_current_guest(id: Option<String>) {
    CURRENT_GUEST.with(|g| *g.borrow_mut() = id);
}

pub fn current_guest() -> Option<String> {
    CURRENT_GUEST.with(|g| g.borrow().clone())
}

/// Told about every command that ran, and in a dry run every one that would have (the event
/// stream listens).
pub type Observer = Box<dyn Fn(&Cmd, &Output) + Send + Sync>;

/// Counts what ran, for summaries, benchmarks and the "no-op re-run changes nothing" check.
#[derive(Debug, Default)]
pub struct Stats {
    pub commands: AtomicU64,
    pub mutating: AtomicU64,
    pub nanos: AtomicU64,
}

impl Stats {
    pub fn record(&self, cmd: &Cmd, duration: Duration) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        if cmd.mutating {
            self.mutating.fetch_add(1, Ordering::Relaxed);
        }
        self.nanos
            .fetch_add(duration.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> (u64, u64, Duration) {
        (
            self.commands.load(Ordering::Relaxed),
            self.mutating.load(Ordering::Relaxed),
            Duration::from_nanos(self.nanos.load(Ordering::Relaxed)),
        )
    }
}

/// Runs commands somewhere (this machine, or a node over SSH).
pub trait Runner: Send + Sync {
    /// Runs `cmd` and returns its output whatever its exit code.
    fn output(&self, cmd: &Cmd) -> Result<Output, ExecError>;

    /// Whether mutating commands are only printed.
    fn dry_run(&self) -> bool;

    fn stats(&self) -> &Stats;

    /// Calls `f` after every command (set once; later calls are ignored).
    fn observe(&self, f: Observer);

    /// Lists the process group of every command from now on in `ledger`, so that the next run
    /// can end what a killed one left (set once; runners whose commands run elsewhere ignore it).
    fn track(&self, _ledger: std::sync::Arc<orphans::Ledger>) {}

    /// Writes a file where the commands run (atomically: a temp file, then a rename).
    fn put_file(&self, path: &std::path::Path, data: &[u8], mode: u32) -> Result<(), ExecError>;

    /// Runs `cmd`; a non-zero exit or a timeout is an error carrying the output tail.
    fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let mut out = self.output(cmd)?;
        if cmd.secret_output && (out.timed_out || !out.success()) {
            // The error keeps the output for messages: not this one's.
            out.stdout.clear();
            out.stderr.clear();
        }
        if out.timed_out {
            return Err(ExecError::Timeout {
                cmd: cmd.display(),
                secs: cmd.timeout.as_secs(),
                output: Box::new(out),
            });
        }
        if !out.success() {
            return Err(ExecError::Failed {
                cmd: cmd.display(),
                code: out.code,
                tail: cmd.loggable_tail(&out, 40),
                output: Box::new(out),
            });
        }
        Ok(out)
    }
}
