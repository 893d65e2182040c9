//! Logs: every command (argv, exit code, duration, output tail) and every transition go through
//! `tracing` into one file per day in `--log-dir` (`phoenix-YYYY-MM-DD.log`), and, with `-v`, to
//! stderr.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

pub const DEFAULT_LOG_DIR: &str = "/var/log/phoenix";

/// Appends to today's file; a new file starts when the day (UTC) changes.
struct DailyFile {
    dir: PathBuf,
    current: Mutex<Option<(String, std::fs::File)>>,
}

pub struct DailyWriter<'a>(&'a DailyFile);

impl Write for DailyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let day = today();
        let mut guard = self
            .0
            .current
            .lock()
            .map_err(|_| std::io::Error::other("log lock poisoned"))?;
        if guard.as_ref().is_none_or(|(d, _)| *d != day) {
            let path = self.0.dir.join(format!("phoenix-{day}.log"));
            let f = OpenOptions::new().create(true).append(true).open(path)?;
            // The log is its owner's alone, whatever the umask.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            *guard = Some((day, f));
        }
        match guard.as_mut() {
            Some((_, f)) => f.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for DailyFile {
    type Writer = DailyWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        DailyWriter(self)
    }
}

/// `YYYY-MM-DD` (UTC) from the system clock, without a date crate.
pub fn today() -> String {
    let days = (state_machine::now_ms() / 86_400_000) as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Installs the subscriber. A log directory that cannot be created is reported once and the run
/// goes on without a file log.
pub fn init(log_dir: &Path, verbose: u8) {
    let file_layer = match state_machine::private_dir(log_dir) {
        Ok(()) => Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(DailyFile {
                    dir: log_dir.to_path_buf(),
                    current: Mutex::new(None),
                })
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        ),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "warning: cannot use log dir {}: {e} (give --log-dir DIR)",
                log_dir.display()
            );
            None
        }
    };
    let stderr_level = match verbose {
        0 => tracing_subscriber::filter::LevelFilter::OFF,
        1 => tracing_subscriber::filter::LevelFilter::INFO,
        _ => tracing_subscriber::filter::LevelFilter::DEBUG,
    };
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(stderr_level);
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn today_is_a_date() {
        let t = super::today();
        assert_eq!(t.len(), 10);
        assert!(t.starts_with("20"));
    }
}
