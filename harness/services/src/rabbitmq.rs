//! A throwaway RabbitMQ node of the test's own (Debian's `rabbitmq-server`): its own node name,
//! data and configuration, AMQP on a free loopback port, and its own `epmd` on another, so it
//! neither needs nor disturbs a RabbitMQ the machine may run. Both are stopped when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use harness_runtime::process::{free_port, wait_for_port, KillOnDrop, ProcessGroup};

use crate::scratch_dir;

/// RabbitMQ's default user, which it lets in from loopback only.
pub const USER: &str = "guest";
pub const PASSWORD: &str = "guest";
/// The node's start script; Debian's `/usr/sbin` wrapper would switch to the system user.
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

pub struct RabbitMq {
    pub port: u16,
    dir: PathBuf,
    nodename: String,
    epmd_port: u16,
    // Dropped in this order: the node, then its epmd.
    node: Option<ProcessGroup>,
    _epmd: KillOnDrop,
}

impl RabbitMq {
    pub fn start() -> RabbitMq {
        let dir = scratch_dir("rabbitmq");
        std::fs::create_dir_all(&dir).expect("creating the node folder");
        let (port, dist_port, epmd_port) = (free_port(), free_port(), free_port());
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("writing enabled_plugins");
        std::fs::write(dir.join("rabbitmq-env.conf"), "").expect("writing rabbitmq-env.conf");
        std::fs::write(dir.join("rabbitmq.conf"), format!("listeners.tcp.default = 127.0.0.1:{port}\n"))
            .expect("writing rabbitmq.conf");

        let mut epmd = Command::new("epmd")
            .args(["-port", &epmd_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting epmd (install rabbitmq-server: run the README's setup)");
        wait_for_port(epmd_port, Duration::from_secs(30), "epmd", &mut epmd);
        let epmd = KillOnDrop(epmd);

        let log = std::fs::File::create(dir.join("node.log")).expect("node log");
        let nodename = format!("ops-suite-{port}@localhost");
        let mut command = Command::new(SERVER);
        command
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // The Erlang cookie goes into $HOME.
            .env("HOME", &dir)
            .env("RABBITMQ_NODENAME", &nodename)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", dir.join("plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let mut node = ProcessGroup::spawn(&mut command, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("starting {SERVER} (install rabbitmq-server: run the README's setup): {e}"));
        wait_for_port(port, Duration::from_secs(120), "RabbitMQ", node.child());
        RabbitMq { port, dir, nodename, epmd_port, node: Some(node), _epmd: epmd }
    }

    /// Changes a user's password on the running node (`rabbitmqctl change_password`), as an
    /// operator rotating the broker's credentials would.
    pub fn change_password(&self, user: &str, password: &str) {
        let status = Command::new(CTL)
            .args(["-n", &self.nodename, "change_password", user, password])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running rabbitmqctl");
        assert!(status.success(), "rabbitmqctl change_password failed");
    }

    /// The AMQP URL of the default virtual host, with the default user.
    pub fn amqp_url(&self) -> String {
        format!("amqp://{USER}:{PASSWORD}@127.0.0.1:{}/%2f", self.port)
    }

    /// The URL as mq-poller's `BROKER_URL` takes it (credentials are given apart).
    pub fn broker_url(&self) -> String {
        format!("amqp://127.0.0.1:{}", self.port)
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.node = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
