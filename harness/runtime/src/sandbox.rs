//! One execution environment's life, as Lambda runs it, on the local Runtime API: the extensions
//! start first and each must register (the function process is started only then); init ends
//! when the function and every extension have called `next`; each invoke goes to both; at the
//! end the function is stopped, the extensions get `SHUTDOWN` with its deadline, and whatever is
//! still running 2 s later is killed. Every process gets the same Lambda environment (the one
//! builder, [`crate::lambda_env`]), as Lambda gives extensions the function's.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::lambda_env::Output;
use crate::process::KillOnDrop;
use crate::runtime_api::{Answer, RuntimeApi};

/// Lambda's shutdown phase with external extensions: 2 s, then SIGKILL.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(2);
/// Lambda's init phase: 10 s.
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

pub struct Sandbox {
    pub api: RuntimeApi,
    extensions: Vec<(String, KillOnDrop)>,
    function: Option<KillOnDrop>,
    /// When the first extension process was started.
    pub started_at: Instant,
    /// When every extension had registered (and the function process was started).
    pub registered_at: Instant,
    /// When the function and every extension had called `next`: the end of init.
    pub init_done_at: Option<Instant>,
}

/// How each extension met `SHUTDOWN`: how long after it was sent the process exited (`None`:
/// killed at the limit).
#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownReport {
    pub exited_after: Vec<(String, Option<Duration>)>,
}

impl Sandbox {
    /// Starts the extensions (`(name, binary)`: Lambda runs `/opt/extensions/<name>`), waits for
    /// each to register, starts the function, and waits for the end of init (or `INIT_LIMIT`).
    /// Every process gets `output`: with several, `Output::Append` (a `File` is truncated by each).
    pub async fn start(
        extensions: &[(&str, &Path)],
        function: &Path,
        function_name: &str,
        env: &[(String, String)],
        output: Output,
    ) -> Result<Sandbox, String> {
        let api = RuntimeApi::start().await;
        let started_at = Instant::now();
        let mut running = Vec::new();
        for (name, binary) in extensions {
            running.push((name.to_string(), api.spawn_function(binary, function_name, env, output.clone())));
        }
        let count = extensions.len();
        if !api.extensions.wait_for(INIT_LIMIT, |list| list.len() >= count).await {
            return Err(format!("not every extension registered within {INIT_LIMIT:?}: {:?}", api.extensions.list()));
        }
        let registered_at = Instant::now();
        let process = api.spawn_function(function, function_name, env, output);
        let mut sandbox = Sandbox {
            api,
            extensions: running,
            function: Some(process),
            started_at,
            registered_at,
            init_done_at: None,
        };
        sandbox.wait_for_init().await;
        Ok(sandbox)
    }

    async fn wait_for_init(&mut self) {
        let deadline = self.started_at + INIT_LIMIT;
        while Instant::now() < deadline {
            let extensions_ready = self.api.extensions.list().iter().all(|e| e.nexts >= 1);
            if extensions_ready && self.api.first_next_at().is_some() {
                self.init_done_at = Some(Instant::now());
                return;
            }
            if self.api.init_error().is_some() || self.api.extensions.list().iter().any(|e| e.init_error.is_some()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub async fn invoke(&self, event: &serde_json::Value, limit: Duration) -> Answer {
        self.api.invoke(event, limit).await
    }

    /// Extension `index`'s process id (a bench reads its peak memory).
    pub fn extension_pid(&self, index: usize) -> Option<u32> {
        self.extensions.get(index).map(|(_, p)| p.0.id())
    }

    /// Whether extension `index`'s process is still running.
    pub fn extension_running(&mut self, index: usize) -> bool {
        self.extensions.get_mut(index).is_some_and(|(_, p)| matches!(p.0.try_wait(), Ok(None)))
    }

    /// The shutdown phase: the function is stopped, then `SHUTDOWN` goes to the extensions
    /// registered for it; each gets until the deadline, then is killed.
    pub async fn shutdown(mut self) -> ShutdownReport {
        drop(self.function.take());
        let deadline = std::time::SystemTime::now() + SHUTDOWN_LIMIT;
        let deadline_ms = deadline.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let sent = Instant::now();
        self.api.extensions.deliver(serde_json::json!({
            "eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline_ms
        }));
        let mut exited_after: Vec<(String, Option<Duration>)> =
            self.extensions.iter().map(|(name, _)| (name.clone(), None)).collect();
        while sent.elapsed() < SHUTDOWN_LIMIT && exited_after.iter().any(|(_, e)| e.is_none()) {
            for ((_, process), (_, exited)) in self.extensions.iter_mut().zip(exited_after.iter_mut()) {
                if exited.is_none() && matches!(process.0.try_wait(), Ok(Some(_))) {
                    *exited = Some(sent.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Dropping the guards kills what is left, as Lambda does at the deadline.
        self.extensions.clear();
        ShutdownReport { exited_after }
    }
}
