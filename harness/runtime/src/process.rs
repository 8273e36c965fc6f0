//! Child processes that die with their guard, and free loopback ports.

use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 for a server of ours to listen on.
///
/// Taken below the kernel's ephemeral range, where `bind(…:0)` and outgoing connections never
/// land: a port handed to a slow-starting server (moto takes a second) cannot be taken in the
/// meantime by a listener or a connection of another test. Each process walks its own stretch
/// of that range, and each port is checked free before it is handed out.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = 10_000;
    let high = ephemeral_low().max(low + 1_000);
    let span = high - low;
    let start = std::process::id().wrapping_mul(7_919) % span;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free loopback port left below {high}");
        let port = (low + (start + n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The low end of the kernel's ephemeral port range (Linux's default when it cannot be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|low| low.parse().ok()))
        .unwrap_or(32_768)
}

/// Waits until something accepts connections on the port while `child` runs, or panics with
/// `what` after `limit`.
pub fn wait_for_port(port: u16, limit: Duration, what: &str, child: &mut Child) {
    wait_for_listener("127.0.0.1", port, limit, what, child);
}

/// [`wait_for_port`] for a server bound to another of this machine's addresses (the Docker
/// bridge's, where `sam local`'s containers reach it).
pub fn wait_for_listener(host: &str, port: u16, limit: Duration, what: &str, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < limit {
        let listening = TcpStream::connect((host, port)).is_ok();
        // Whoever answers must be our child, still running.
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on {port}: {status}");
        }
        if listening {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {port} within {limit:?}");
}

/// Kills the child when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server started in a process group of its own, stopped as a whole when dropped: SIGTERM to
/// the group (so wrapper scripts and the servers they start exit cleanly), then SIGKILL to
/// whatever is left after `grace`.
pub struct ProcessGroup {
    child: Child,
    grace: Duration,
}

impl ProcessGroup {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(command: &mut std::process::Command, grace: Duration) -> std::io::Result<ProcessGroup> {
        use std::os::unix::process::CommandExt;
        let child = command.process_group(0).spawn()?;
        Ok(ProcessGroup { child, grace })
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |name: &str| {
            let _ = std::process::Command::new("kill")
                .args([name, "--", &group])
                .stderr(std::process::Stdio::null())
                .status();
        };
        signal("-TERM");
        let start = Instant::now();
        while start.elapsed() < self.grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The leader may be gone while a server it started is not.
        signal("-KILL");
        let _ = self.child.wait();
    }
}

/// The peak resident memory of process `pid` so far (Linux's `VmHWM`), in KiB; 0 when it is gone.
/// Read while the process lives: a function process waits on its next invocation, so it does.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_outside_the_ephemeral_range() {
        let ports: std::collections::BTreeSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
        assert!(ports.iter().all(|p| u32::from(*p) < ephemeral_low()), "{ports:?}");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let kernel_port = listener.local_addr().expect("addr").port();
        assert!(u32::from(kernel_port) >= ephemeral_low(), "the kernel's own choice lies above");
    }
}
