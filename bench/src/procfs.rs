//! CPU time and resident memory of a process, from /proc, so a run can say
//! how busy the server and the generator itself were.

use std::fs;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    /// Write-class system calls (write, writev, send…) so far; `None` when
    /// /proc/PID/io cannot be read (another user's process).
    pub write_calls: Option<u64>,
}

/// Reads `pid`, or this process when `None`. `None` when /proc has no such
/// process (or this is not Linux).
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |pid| format!("/proc/{pid}"));
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name may hold spaces; the fields we want follow its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = fs::read_to_string(format!("{dir}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0);
    let write_calls = fs::read_to_string(format!("{dir}/io")).ok().and_then(|io| {
        io.lines()
            .find_map(|line| line.strip_prefix("syscw:"))
            .and_then(|count| count.trim().parse().ok())
    });
    Some(Sample {
        cpu_seconds: ticks as f64 / per_second,
        rss_bytes: rss_kib * 1024,
        write_calls,
    })
}

/// The sum of the samples of `pids`: several processes serving as one
/// (the nodes of a network). `None` when any cannot be read, or none given.
pub fn sample_all(pids: &[u32]) -> Option<Sample> {
    let mut total: Option<Sample> = None;
    for &pid in pids {
        let sample = sample(Some(pid))?;
        total = Some(match total {
            None => sample,
            Some(sum) => Sample {
                cpu_seconds: sum.cpu_seconds + sample.cpu_seconds,
                rss_bytes: sum.rss_bytes + sample.rss_bytes,
                write_calls: sum.write_calls.zip(sample.write_calls).map(|(a, b)| a + b),
            },
        });
    }
    total
}

/// Raises the open-file limit to its hard maximum: every client is a socket.
pub fn raise_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let sample = super::sample(None).expect("/proc/self");
        assert!(sample.rss_bytes > 0);
        assert!(sample.cpu_seconds >= 0.0);
    }
}
