//! Logging: plain messages on stderr (problems always, progress with `-v`)
//! and, optionally, a log file in grokmirror's format
//! (`pull[1234] 2026-01-01 12:00:00,123 - INFO - message`).
//!
//! The log file is reopened whenever the path no longer names the file we
//! hold open (logrotate moved or deleted it), checked before every line,
//! like Python's `WatchedFileHandler`; [`LogHandle::reopen`] forces it (for
//! SIGHUP). Lines are appended with `O_APPEND`, so several programs can
//! share one log file.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use grokmirror::config::LogLevel;

/// A log file that follows its path across rotations.
#[derive(Debug)]
pub struct WatchedFile {
    path: PathBuf,
    open: Mutex<Option<(File, u64, u64)>>,
}

impl WatchedFile {
    /// Open (creating) `path` for appending.
    pub fn open(path: &Path) -> io::Result<WatchedFile> {
        let wf = WatchedFile {
            path: path.to_path_buf(),
            open: Mutex::new(None),
        };
        {
            let mut guard = wf.open.lock().expect("log file lock poisoned");
            *guard = Some(wf.open_file()?);
        }
        Ok(wf)
    }

    fn open_file(&self) -> io::Result<(File, u64, u64)> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let meta = f.metadata()?;
        Ok((f, meta.dev(), meta.ino()))
    }

    /// Append one line, reopening first if the file was rotated away.
    pub fn write_line(&self, line: &str) -> io::Result<()> {
        let mut guard = self.open.lock().expect("log file lock poisoned");
        let current = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let stale = match (&*guard, current) {
            (Some((_, dev, ino)), Some((cdev, cino))) => (*dev, *ino) != (cdev, cino),
            _ => true,
        };
        if stale {
            *guard = Some(self.open_file()?);
        }
        let (file, _, _) = guard.as_mut().expect("log file is open");
        file.write_all(line.as_bytes())
    }

    /// Drop the open file so the next line opens the path afresh.
    pub fn reopen(&self) {
        *self.open.lock().expect("log file lock poisoned") = None;
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Something that shows stderr lines itself (a progress bar that must
/// redraw around them).
pub type StderrSink = Arc<dyn Fn(&str) + Send + Sync>;

static STDERR_SINK: RwLock<Option<StderrSink>> = RwLock::new(None);

/// Route the lines meant for stderr through `sink` (for example a progress
/// bar's `println`) until [`clear_stderr_sink`] is called.
pub fn set_stderr_sink(sink: StderrSink) {
    *STDERR_SINK.write().expect("stderr sink poisoned") = Some(sink);
}

/// Write stderr lines straight to stderr again.
pub fn clear_stderr_sink() {
    *STDERR_SINK.write().expect("stderr sink poisoned") = None;
}

fn write_stderr(text: &str) {
    let sink = STDERR_SINK.read().expect("stderr sink poisoned").clone();
    match sink {
        Some(sink) => sink(text),
        None => {
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
    }
}

/// Where and how much to log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Program tag for log file lines (`manifest`, `pull`, `fsck`).
    pub program: String,
    /// Show progress (INFO) on stderr, not only problems.
    pub verbose: bool,
    /// Optional log file.
    pub file: Option<PathBuf>,
    /// Verbosity of the log file.
    pub file_level: LogLevel,
}

/// Keeps the log file reachable for forced reopening.
#[derive(Debug, Clone, Default)]
pub struct LogHandle {
    file: Option<Arc<WatchedFile>>,
}

impl LogHandle {
    /// Reopen the log file (for SIGHUP after a copytruncate-less rotation).
    pub fn reopen(&self) {
        if let Some(f) = &self.file {
            f.reopen();
        }
    }
}

/// Collects an event's message and any other fields.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

struct GrokLayer {
    program: String,
    pid: u32,
    stderr_max: Level,
    file: Option<(Arc<WatchedFile>, Level)>,
    file_failed: Mutex<bool>,
}

/// Python's level names.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "DEBUG",
    }
}

impl<S: Subscriber> Layer<S> for GrokLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        // Only our own crates log below WARN; libraries stay quiet.
        let ours = event.metadata().target().starts_with("grok");
        if !ours && level > Level::WARN {
            return;
        }
        let to_stderr = level <= self.stderr_max;
        let to_file = self.file.as_ref().is_some_and(|(_, max)| level <= *max);
        if !to_stderr && !to_file {
            return;
        }
        let mut v = MessageVisitor::default();
        event.record(&mut v);
        let text = format!("{}{}", v.message, v.fields);
        if to_stderr {
            write_stderr(&text);
        }
        if let (true, Some((file, _))) = (to_file, &self.file) {
            let now = chrono::Local::now();
            let line = format!(
                "{}[{}] {},{:03} - {} - {}\n",
                self.program,
                self.pid,
                now.format("%Y-%m-%d %H:%M:%S"),
                now.timestamp_subsec_millis(),
                level_name(&level),
                text
            );
            if let Err(e) = file.write_line(&line) {
                let mut failed = self.file_failed.lock().expect("poisoned");
                if !*failed {
                    *failed = true;
                    let _ = writeln!(
                        io::stderr().lock(),
                        "cannot write log file {}: {e}",
                        file.path().display()
                    );
                }
            }
        }
    }
}

/// Install the global logger. Fails only when the log file can't be opened.
/// Calling it again in the same process (tests) keeps the first logger.
pub fn init(settings: &LogSettings) -> io::Result<LogHandle> {
    let file = match &settings.file {
        Some(p) => Some(Arc::new(WatchedFile::open(p).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open log file {}: {e}", p.display()),
            )
        })?)),
        None => None,
    };
    let file_level = match settings.file_level {
        LogLevel::Info => Level::INFO,
        LogLevel::Debug => Level::DEBUG,
    };
    let layer = GrokLayer {
        program: settings.program.clone(),
        pid: std::process::id(),
        stderr_max: if settings.verbose {
            Level::INFO
        } else {
            Level::ERROR
        },
        file: file.clone().map(|f| (f, file_level)),
        file_failed: Mutex::new(false),
    };
    let subscriber = tracing_subscriber::registry().with(layer);
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(LogHandle { file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_file_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("grok.log");
        let wf = WatchedFile::open(&log).unwrap();
        wf.write_line("one\n").unwrap();
        std::fs::rename(&log, dir.path().join("grok.log.1")).unwrap();
        wf.write_line("two\n").unwrap();
        std::fs::remove_file(&log).unwrap();
        wf.write_line("three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("grok.log.1")).unwrap(),
            "one\n"
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "three\n");
    }
}
