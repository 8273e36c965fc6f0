//! A Docker engine for `sam local`: the one already running, or Debian's dockerd started for the
//! caller and stopped when its guard is dropped; and the local Lambda base image SAM builds on.
//! Both are made by scripts/lib.sh (`start_docker_engine`, `ensure_lambda_base_image`), the one
//! place scripts/sam-local uses too: this only calls them.

use std::process::{Command, Output};

use harness_runtime::paths::workspace_root;

/// Runs `call` (a lib.sh function and its arguments) in bash with lib.sh sourced.
fn lib_sh(call: &str) -> Output {
    let script = format!("source '{}/scripts/lib.sh' && {call}", workspace_root().display());
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("running bash for {call}: {e}"))
}

/// The engine the `docker` client talks to; stops it when dropped if it was started here.
pub struct DockerEngine {
    started: Option<u32>,
}

impl DockerEngine {
    /// Uses the running engine, or starts one. Panics naming what is missing when none can run
    /// (no `docker` client, no `dockerd`, or a dockerd that does not come up, with its log).
    pub fn up() -> DockerEngine {
        let client = Command::new("docker").arg("--version").output();
        assert!(
            client.is_ok_and(|o| o.status.success()),
            "sam local needs the docker client on PATH: install Debian's docker.io (scripts/test does)"
        );
        let output = lib_sh("start_docker_engine");
        assert!(
            output.status.success(),
            "sam local needs a Docker engine, and none could be started: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let started = String::from_utf8_lossy(&output.stdout).trim().parse().ok();
        DockerEngine { started }
    }

    /// Whether this guard started the engine (and so stops it).
    pub fn started_here(&self) -> bool {
        self.started.is_some()
    }

    /// Builds the local `public.ecr.aws/lambda/provided:al2023-x86_64` unless it exists.
    pub fn ensure_lambda_base_image(&self) {
        let output = lib_sh("ensure_lambda_base_image");
        assert!(
            output.status.success(),
            "building the local Lambda base image failed (it needs debootstrap and Debian's mirror): {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// This machine's address on the default bridge, where the containers reach servers of
    /// ours (they cannot reach the machine's loopback); `start_docker_engine` waits for it on an
    /// engine it starts. Panics if the bridge has none.
    pub fn bridge_gateway(&self) -> String {
        let output = lib_sh("bridge_gateway");
        let gateway = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(
            output.status.success() && gateway.parse::<std::net::Ipv4Addr>().is_ok(),
            "the Docker engine has no default bridge with an address (dockerd must keep it): {gateway} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        gateway
    }

    /// The ids of every container of SAM's, running or not (SAM labels its Lambda containers
    /// `sam.cli.container.type=lambda`, and removes each after its invocation).
    pub fn sam_containers(&self) -> Vec<String> {
        let output = Command::new("docker")
            .args(["ps", "--all", "--quiet", "--no-trunc", "--filter", "label=sam.cli.container.type"])
            .output()
            .unwrap_or_else(|e| panic!("docker ps: {e}"));
        assert!(output.status.success(), "docker ps: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        if let Some(pid) = self.started {
            let output = lib_sh(&format!("stop_docker_engine {pid}"));
            if !output.status.success() {
                eprintln!("stopping dockerd {pid}: {}", String::from_utf8_lossy(&output.stderr));
            }
        }
    }
}
