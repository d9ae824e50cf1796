//! What the process costs, read from `/proc/self`: CPU time (whole process
//! and per thread, so the simulated callees' runtime can be told apart from
//! duecall's), resident memory, open file descriptors and threads. The
//! parsers are pure (text in, numbers out); the readers are one file read
//! each. Never writes anything, never keeps state between readings.

use std::path::Path;

/// CPU time of a process or thread, in clock ticks (`utime + stime`), read
/// from a `stat` line. `None` when the line is not a `stat` line.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name is in parentheses and may hold spaces or ')': the
    // fields that follow start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The command name (thread name, at most 15 bytes) of a `stat` line.
pub fn parse_stat_comm(stat: &str) -> Option<&str> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    (close > open).then(|| &stat[open + 1..close])
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM`, ...).
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn ticks_per_s() -> f64 {
    // SAFETY: sysconf reads a constant of the running system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds the whole process has used (every thread, living or ended).
pub fn process_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat_ticks(&s))
        .unwrap_or(0) as f64
        / ticks_per_s()
}

/// CPU seconds used by the living threads whose name starts with `prefix`.
/// A thread that has ended is no longer listed: its time stays in
/// [`process_cpu_s`] only.
pub fn threads_cpu_s(prefix: &str) -> f64 {
    let mut ticks = 0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path().join("stat")) {
                if parse_stat_comm(&s).is_some_and(|c| c.starts_with(prefix)) {
                    ticks += parse_stat_ticks(&s).unwrap_or(0);
                }
            }
        }
    }
    ticks as f64 / ticks_per_s()
}

/// Resident memory now, in kB (`VmRSS`).
pub fn rss_kb() -> u64 {
    status_kb("VmRSS")
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_status_kb(&s, key))
        .unwrap_or(0)
}

/// Entries in a `/proc` directory (open fds, threads).
fn count_dir(p: &Path) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

/// Open file descriptors (`/proc/self/fd`; the one reading it included).
pub fn open_fds() -> usize {
    count_dir(Path::new("/proc/self/fd"))
}

/// Threads of the process (`/proc/self/task`).
pub fn threads() -> usize {
    count_dir(Path::new("/proc/self/task"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (duecall-asr) S 1 4242 4242 0 -1 4194368 2714 0 0 0 \
                        157 23 0 0 20 0 9 0 123456 99999 1234 18446744073709551615";

    #[test]
    fn cpu_ticks_are_user_plus_system() {
        assert_eq!(parse_stat_ticks(STAT), Some(180));
        assert_eq!(parse_stat_comm(STAT), Some("duecall-asr"));
    }

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let s = STAT.replace("(duecall-asr)", "(a b) (c))");
        assert_eq!(parse_stat_ticks(&s), Some(180));
        assert_eq!(parse_stat_comm(&s), Some("a b) (c)"));
    }

    #[test]
    fn a_short_or_foreign_line_is_none() {
        assert_eq!(parse_stat_ticks("12 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("no parentheses"), None);
    }

    #[test]
    fn status_lines_are_read_by_key() {
        let s = "Name:\tduecall\nVmHWM:\t  90000 kB\nVmRSS:\t  81234 kB\n";
        assert_eq!(parse_status_kb(s, "VmRSS"), Some(81234));
        assert_eq!(parse_status_kb(s, "VmHWM"), Some(90000));
        assert_eq!(parse_status_kb(s, "VmSwap"), None);
    }

    #[test]
    fn this_process_is_readable() {
        assert!(rss_kb() > 0);
        assert!(open_fds() >= 3);
        assert!(threads() >= 1);
    }
}
