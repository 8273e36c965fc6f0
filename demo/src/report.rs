//! What the demo prints and keeps: headings, a progress line per stand-in, one line per
//! scenario's outcome, the closing table; and the log file that takes everything else (the
//! functions' output, cargo-lambda's, panics, the stand-ins' logs after a failure).

use std::any::Any;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Colour only on a terminal, and not when `NO_COLOR` is set to something (no-color.org).
#[derive(Clone, Copy)]
pub struct Style {
    colour: bool,
}

impl Style {
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Style { colour: std::io::stdout().is_terminal() && !no_color }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn red(self, text: &str) -> String {
        self.paint("1;31", text)
    }
}

/// The run's log file: `<target>/demo/demo-<UTC time>.log`.
pub struct Log {
    path: PathBuf,
}

impl Log {
    pub fn create() -> Result<Log, String> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| harness_runtime::paths::workspace_root().join("target"));
        let dir = target.join("demo");
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let dir = dir.canonicalize().unwrap_or(dir);
        let path = dir.join(format!("demo-{}.log", utc_stamp()));
        std::fs::write(&path, format!("ops-suite demo, {}\n", utc_stamp()))
            .map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(Log { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` as a line (a log that cannot be written loses the line, nothing more).
    pub fn note(&self, text: &str) {
        append(&self.path, text);
    }
}

pub fn append(path: &Path, text: &str) {
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{}", text.trim_end());
    }
}

/// `YYYYMMDD-HHMMSS`, UTC.
fn utc_stamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rest / 3_600, rest % 3_600 / 60, rest % 60)
}

/// Panics go to the log, not to the terminal: the scenario they happen in reports them.
pub fn panics_to(log: &Path) {
    let log = log.to_owned();
    std::panic::set_hook(Box::new(move |info| {
        let backtrace = std::backtrace::Backtrace::capture();
        append(&log, &format!("panic: {info}\n{backtrace}"));
    }));
}

pub fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&str>() {
            Ok(text) => (*text).to_owned(),
            Err(_) => "a panic".to_owned(),
        },
    }
}

/// A future whose panic is returned instead of unwinding further.
pub struct CatchUnwind<'a, T>(Pin<Box<dyn Future<Output = T> + 'a>>);

pub fn catch_unwind<'a, T>(future: impl Future<Output = T> + 'a) -> CatchUnwind<'a, T> {
    CatchUnwind(Box::pin(future))
}

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(panic_message(payload))),
        }
    }
}

enum Outcome {
    Pass,
    Fail,
    NotRun,
}

struct Row {
    name: String,
    outcome: Outcome,
    time: Option<Duration>,
}

pub struct Demo {
    pub style: Style,
    pub log: Log,
    rows: Vec<Row>,
    started: Instant,
}

fn seconds(time: Duration) -> String {
    format!("{:.1} s", time.as_secs_f64())
}

impl Demo {
    pub fn new(style: Style, log: Log) -> Demo {
        Demo { style, log, rows: Vec::new(), started: Instant::now() }
    }

    pub fn heading(&self, text: &str) {
        let line = format!("=== {text} {}", "=".repeat(70usize.saturating_sub(text.len()).max(3)));
        println!("\n{}", self.style.bold(&line));
        self.log.note(&format!("\n{line}"));
    }

    /// Starts a stand-in, on a progress line printed before the wait and finished with how long
    /// it took. A start that panics is returned as `Err`.
    pub fn start<T>(&self, what: &str, note: &str, start: impl FnOnce() -> T) -> Result<T, String> {
        print!("  starting {what} ({note}) ... ");
        let _ = std::io::stdout().flush();
        self.log.note(&format!("--- starting {what}"));
        let began = Instant::now();
        let started = tokio::task::block_in_place(|| std::panic::catch_unwind(AssertUnwindSafe(start)));
        let took = seconds(began.elapsed());
        match started {
            Ok(value) => {
                println!("ready in {took}");
                self.log.note(&format!("--- {what} ready in {took}"));
                Ok(value)
            }
            Err(payload) => {
                println!("{} after {took}", self.style.red("failed"));
                Err(format!("starting {what}: {}", panic_message(payload)))
            }
        }
    }

    /// Runs one scenario: its `Err` (or panic) is its failure, printed as one line.
    pub async fn scenario<T>(&mut self, name: &str, scenario: impl Future<Output = Result<T, String>>) -> Option<T> {
        self.log.note(&format!("\n--- scenario: {name}"));
        let began = Instant::now();
        let result = catch_unwind(scenario).await.and_then(|result| result);
        let time = began.elapsed();
        match result {
            Ok(value) => {
                println!("  {}  {name} ({})", self.style.green("pass"), seconds(time));
                self.log.note(&format!("--- pass: {name} ({})", seconds(time)));
                self.rows.push(Row { name: name.to_owned(), outcome: Outcome::Pass, time: Some(time) });
                Some(value)
            }
            Err(why) => {
                self.fail(name, &why, Some(time));
                None
            }
        }
    }

    fn fail(&mut self, name: &str, why: &str, time: Option<Duration>) {
        let why = one_line(why);
        println!("  {}  {name}: {why}; log: {}", self.style.red("FAIL"), self.log.path().display());
        self.log.note(&format!("--- FAIL: {name}: {why}"));
        self.rows.push(Row { name: name.to_owned(), outcome: Outcome::Fail, time });
    }

    /// After a group of scenarios stopped early with `why` (its setup failed): the first of
    /// `names` without an outcome yet fails with it, the others are not run.
    pub fn stopped(&mut self, names: &[&str], why: &str) {
        let pending: Vec<&str> =
            names.iter().copied().filter(|name| !self.rows.iter().any(|row| row.name == *name)).collect();
        let Some((first, rest)) = pending.split_first() else {
            // Every scenario ran: the failure came after them (while stopping).
            self.log.note(&format!("--- after the scenarios: {why}"));
            return;
        };
        self.fail(first, why, None);
        for name in rest {
            self.rows.push(Row { name: (*name).to_owned(), outcome: Outcome::NotRun, time: None });
        }
    }

    /// How many scenarios have failed so far.
    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|row| matches!(row.outcome, Outcome::Fail)).count()
    }

    /// The closing table, where the log is, and the exit code: failure if any scenario failed
    /// or did not run.
    pub fn finish(self, leftovers: &[String]) -> ExitCode {
        self.heading("Summary");
        let width = self.rows.iter().map(|row| row.name.len()).max().unwrap_or(8).max(8);
        println!("  {}", self.style.bold(&format!("{:<width$}  {:<7}  {:>7}", "scenario", "outcome", "time")));
        for row in &self.rows {
            let (plain, painted) = match row.outcome {
                Outcome::Pass => ("pass", self.style.green("pass")),
                Outcome::Fail => ("FAIL", self.style.red("FAIL")),
                Outcome::NotRun => ("not run", self.style.red("not run")),
            };
            let padding = " ".repeat(7 - plain.len());
            let time = row.time.map(seconds).unwrap_or_else(|| "-".to_owned());
            println!("  {:<width$}  {painted}{padding}  {time:>7}", row.name);
        }
        let passed = self.rows.iter().filter(|row| matches!(row.outcome, Outcome::Pass)).count();
        let failed = self.rows.len() - passed;
        let total = seconds(self.started.elapsed());
        let tally = if failed == 0 {
            self.style.green(&format!("All {passed} scenarios passed"))
        } else {
            self.style.red(&format!("{failed} of {} scenarios failed or did not run", self.rows.len()))
        };
        println!("\n{tally} in {total}.");
        println!("Function logs and cargo-lambda's output: {}", self.log.path().display());
        if leftovers.is_empty() {
            println!("Every local stand-in this demo started has been stopped.");
        } else {
            println!("Stopped {} process(es) left behind by a failed start: {}", leftovers.len(), leftovers.join(", "));
        }
        self.log.note(&format!("\n--- {passed} passed, {failed} failed or not run, in {total}"));
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// A failure's reason on one line.
fn one_line(text: &str) -> String {
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 400 {
        line = line.chars().take(400).collect::<String>() + "...";
    }
    line
}

/// Any child process of ours still running at the end: only a start that failed before its
/// guard existed leaves one (the harness spawns, then waits, then guards). Stopped, and named.
pub fn stop_leftover_children(log: &Log) -> Vec<String> {
    let me = std::process::id().to_string();
    let children: Vec<(String, String)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.ok()?.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, tail) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_owned();
            let mut fields = tail.split_whitespace();
            let state = fields.next()?;
            let parent = fields.next()?;
            (parent == me && state != "Z").then_some((pid, comm))
        })
        .collect();
    if children.is_empty() {
        return Vec::new();
    }
    let kill = |signal: &str, pid: &str| {
        let _ = std::process::Command::new("kill").args([signal, pid]).stderr(std::process::Stdio::null()).status();
    };
    for (pid, _) in &children {
        kill("-TERM", pid);
    }
    std::thread::sleep(Duration::from_secs(2));
    for (pid, _) in &children {
        kill("-KILL", pid);
    }
    let named: Vec<String> = children.into_iter().map(|(pid, comm)| format!("{comm} ({pid})")).collect();
    log.note(&format!("--- stopped what a failed start left running: {}", named.join(", ")));
    named
}
