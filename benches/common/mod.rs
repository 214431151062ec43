//! What the benchmarks share: the backends a run measures (`--postgres`, `--no-postgres`,
//! `--no-sqlite`), reading the flags (`--help`, a wrong flag), the machine's load, and latency
//! figures.

use std::time::Duration;

/// Whether PostgreSQL is measured: when it is available, always (a failure when it is not), or
/// never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgMode {
    Auto,
    Required,
    Skip,
}

/// The backends a run measures: SQLite unless `--no-sqlite`, PostgreSQL as [`PgMode`] says.
#[derive(Debug, Clone, Copy)]
pub struct Backends {
    pub sqlite: bool,
    pub postgres: PgMode,
}

impl Default for Backends {
    fn default() -> Backends {
        Backends {
            sqlite: true,
            postgres: PgMode::Auto,
        }
    }
}

impl Backends {
    /// Takes `flag` when it names backends; false when it does not.
    pub fn take(&mut self, flag: &str) -> bool {
        match flag {
            "--postgres" => self.postgres = PgMode::Required,
            "--no-postgres" => self.postgres = PgMode::Skip,
            "--no-sqlite" => self.sqlite = false,
            _ => return false,
        }
        true
    }

    /// Whether PostgreSQL is measured at all.
    pub fn postgres(self) -> bool {
        self.postgres != PgMode::Skip
    }
}

/// The options `parse` makes of the command line. `parse`'s empty error (`--help`) prints `usage`
/// and ends the run; another error is printed with `usage` and ends it with status 2. When the
/// options require PostgreSQL, the tests' PostgreSQL helper is told so (it fails instead of
/// skipping).
pub fn read_options<T>(
    usage: &str,
    parse: impl FnOnce(Vec<String>) -> Result<T, String>,
    backends: impl FnOnce(&T) -> Backends,
) -> T {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            print!("{usage}");
            std::process::exit(0);
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{usage}");
            std::process::exit(2);
        }
    };
    if backends(&options).postgres == PgMode::Required {
        // The PostgreSQL helper of the tests reads this; set before any thread starts.
        // SAFETY: the process has a single thread at this point.
        unsafe { std::env::set_var("DIEMDANH_REQUIRE_POSTGRES", "1") };
    }
    options
}

/// The one-minute load average, "?" where /proc does not tell.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The latency below which the fraction `q` of `latencies` lies (nearest rank); zero for none.
pub fn percentile(latencies: &[Duration], q: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A latency in milliseconds, with the digits that matter at its size.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}
