//! What Linux's `/proc` says about a process: resident memory and CPU time,
//! read once or sampled over a phase of a benchmark.
//!
//! CPU time comes from `/proc/PID/schedstat` (nanoseconds on the CPU) when
//! the kernel has it: `utime + stime` in `/proc/PID/stat` counts whole clock
//! ticks (10 ms) charged to whoever runs at the tick, which misses an idle
//! agent's sub-millisecond wake-ups altogether. `stat` is the fallback.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// `VmRSS`: resident set size now, KiB.
    pub(crate) rss_kib: u64,
    /// `VmHWM`: the largest resident set size so far, KiB.
    pub(crate) hwm_kib: u64,
    /// `RssAnon`: the part of `VmRSS` that is heap, stacks and other private memory, KiB.
    pub(crate) anon_kib: u64,
    /// `RssFile`: the part of `VmRSS` mapped from files (the binary, shared libraries), KiB.
    pub(crate) file_kib: u64,
    /// CPU time used so far, nanoseconds.
    pub(crate) cpu_ns: u64,
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name (field 2)
/// is in parentheses and may hold spaces, so fields are counted after the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU time of process `pid` in nanoseconds.
fn cpu_ns(pid: u32) -> Result<u64> {
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok();
    if let Some(ns) = schedstat.and_then(|s| s.split_whitespace().next()?.parse().ok()) {
        return Ok(ns);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/PID/stat")?;
    let ticks = cpu_ticks(&stat).context("malformed /proc/PID/stat")?;
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    Ok(ticks * 1_000_000_000 / *TICKS.get_or_init(ticks_per_second))
}

/// CPU time of every thread of process `pid`, in seconds (10 ms resolution).
pub(crate) fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(cpu_ticks(&stat)? as f64 / ticks_per_second() as f64)
}

/// The machine's 1-minute load average: what else was competing for the CPUs.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// A line saying what the machine was doing, printed before and after each run:
/// the CPUs are shared, and a busy neighbour shows in the figures.
pub(crate) fn machine_line(when: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load = load_average().map_or_else(|| "unknown".to_string(), |l| format!("{l:.2}"));
    format!("machine {when} cpus={cpus} loadavg_1m={load}")
}

/// Reads process `pid`.
pub(crate) fn read(pid: u32) -> Result<Reading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
    Ok(Reading {
        rss_kib: status_kib(&status, "VmRSS:").context("no VmRSS")?,
        hwm_kib: status_kib(&status, "VmHWM:").context("no VmHWM")?,
        anon_kib: status_kib(&status, "RssAnon:").context("no RssAnon")?,
        file_kib: status_kib(&status, "RssFile:").context("no RssFile")?,
        cpu_ns: cpu_ns(pid)?,
    })
}

/// How often [`sample`] reads the process.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// KiB (as `/proc` counts) to MB (10^6 bytes, as the targets are written).
pub(crate) fn mb(kib: f64) -> f64 {
    kib * 1024.0 / 1e6
}

/// What a process cost over a phase of a benchmark.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phase {
    pub(crate) wall_secs: f64,
    pub(crate) rss_mean_kib: f64,
    pub(crate) rss_max_kib: u64,
    pub(crate) cpu_secs: f64,
    /// The last reading, for how the resident set divides into private and file-backed memory.
    pub(crate) last: Reading,
}

impl Phase {
    pub(crate) fn cpu_secs_per_minute(&self) -> f64 {
        self.cpu_secs / self.wall_secs * 60.0
    }

    /// Prints `<bench> phase=<name> ...` with the figures, then `extra`.
    pub(crate) fn print(&self, bench: &str, name: &str, extra: &str) {
        println!(
            "{bench} phase={name} wall_s={:.1} rss_mb={:.2} rss_max_mb={:.2} anon_mb={:.2} file_mb={:.2} \
             cpu_s_per_min={:.3} {extra}",
            self.wall_secs,
            mb(self.rss_mean_kib),
            mb(self.rss_max_kib as f64),
            mb(self.last.anon_kib as f64),
            mb(self.last.file_kib as f64),
            self.cpu_secs_per_minute()
        );
    }
}

/// Samples process `pid` every 100 ms for `length`.
pub(crate) async fn sample(pid: u32, length: Duration) -> Result<Phase> {
    let first = read(pid)?;
    let started = Instant::now();
    let (mut last, mut rss) = (first, vec![first.rss_kib]);
    while started.elapsed() < length {
        tokio::time::sleep(SAMPLE_EVERY).await;
        last = read(pid).context("the process exited")?;
        rss.push(last.rss_kib);
    }
    Ok(Phase {
        wall_secs: started.elapsed().as_secs_f64(),
        rss_mean_kib: rss.iter().sum::<u64>() as f64 / rss.len() as f64,
        rss_max_kib: rss.iter().copied().max().unwrap_or(0),
        cpu_secs: (last.cpu_ns - first.cpu_ns) as f64 / 1e9,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_found_after_a_command_name_with_spaces() {
        let stat = "42 (light well) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 100 1000 200";
        assert_eq!(cpu_ticks(stat), Some(10));
    }

    #[test]
    fn this_process_can_be_read() {
        let r = read(std::process::id()).unwrap();
        assert!(r.rss_kib > 0 && r.hwm_kib >= r.rss_kib);
    }
}
