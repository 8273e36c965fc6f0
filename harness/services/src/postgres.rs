//! A throwaway PostgreSQL cluster of the test's own: password authentication (scram-sha-256) on
//! TCP, TLS with a test certificate, on a free loopback port. (The machine's shared cluster
//! trusts every local login, so it cannot tell a right password from a wrong one.)

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::certs::TestCerts;
use crate::scratch_dir;
use crate::server_user::{as_owner, chown_tree, server_owner};
use harness_runtime::process::{free_port, wait_for_port, KillOnDrop};

pub const SUPERUSER: &str = "postgres";
pub const SUPERUSER_PASSWORD: &str = "superuser-test-password";

pub struct Postgres {
    pub port: u16,
    pub ca: PathBuf,
    dir: PathBuf,
    /// Server settings of the test's own (`-c name=value`).
    settings: Vec<String>,
    process: Option<KillOnDrop>,
    owner: Option<(u32, u32)>,
}

/// PostgreSQL's binaries: Debian keeps them under /usr/lib/postgresql/<version>/bin.
fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    versions.last().map(|v| v.join("bin").join(tool)).unwrap_or_else(|| PathBuf::from(tool))
}

/// The port opens before the server takes logins ("the database system is starting up").
fn wait_until_ready(port: u16) {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let ready = Command::new(pg_bin("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("postgres on {port} did not become ready within 60s");
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with(&[])
    }

    /// A cluster with extra server settings, such as `("log_statement", "all")`.
    pub fn start_with(settings: &[(&str, &str)]) -> Postgres {
        let dir = scratch_dir("postgres");
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).expect("creating the cluster folder");
        let certs = TestCerts::create(&dir.join("certs"));
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).expect("writing pwfile");
        let owner = server_owner("postgres");
        chown_tree(&dir, owner);
        std::fs::set_permissions(&certs.server_key, std::fs::Permissions::from_mode(0o600)).expect("key mode");

        let output = as_owner(&mut Command::new(pg_bin("initdb")), owner)
            .args(["-D"])
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("running initdb");
        assert!(output.status.success(), "initdb: {}", String::from_utf8_lossy(&output.stderr));

        let settings = settings.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let mut postgres = Postgres { port: free_port(), ca: certs.ca, dir, settings, process: None, owner };
        postgres.run_server();
        postgres
    }

    /// A streaming standby of `primary` (`pg_basebackup -R`): read-only, replaying what the
    /// primary writes, roles and passwords included; a read replica as RDS makes one. Its own
    /// port, folder and test CA.
    pub fn standby_of(primary: &Postgres) -> Postgres {
        let dir = scratch_dir("postgres-standby");
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).expect("creating the standby folder");
        let certs = TestCerts::create(&dir.join("certs"));
        let owner = primary.owner;
        chown_tree(&dir, owner);
        std::fs::set_permissions(&certs.server_key, std::fs::Permissions::from_mode(0o600)).expect("key mode");
        let output = as_owner(&mut Command::new(pg_bin("pg_basebackup")), owner)
            .args(["-h", "127.0.0.1", "-p", &primary.port.to_string(), "-U", SUPERUSER, "-D"])
            .arg(&data)
            .args(["-R", "-X", "stream", "--no-sync"])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .output()
            .expect("running pg_basebackup");
        assert!(output.status.success(), "pg_basebackup: {}", String::from_utf8_lossy(&output.stderr));
        let mut standby = Postgres {
            port: free_port(),
            ca: certs.ca,
            dir,
            settings: vec!["hot_standby=on".into()],
            process: None,
            owner,
        };
        standby.run_server();
        standby
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Stops the server (the data stays), as a crashed or stopped database would be.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Starts the stopped server again on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "already running");
        self.run_server();
    }

    /// Starts the server on the cluster folder, and waits until it takes logins.
    fn run_server(&mut self) {
        let certs = self.dir.join("certs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("server log");
        let mut child = as_owner(&mut Command::new(pg_bin("postgres")), self.owner)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on", "-c", "fsync=off"])
            .arg("-k")
            .arg(&self.dir)
            .arg("-c")
            .arg(format!("ssl_cert_file={}", certs.join("server.pem").display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", certs.join("server.key").display()))
            .args(self.settings.iter().flat_map(|setting| ["-c", setting.as_str()]))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        wait_for_port(self.port, Duration::from_secs(60), "postgres", &mut child);
        wait_until_ready(self.port);
        self.process = Some(KillOnDrop(child));
    }
}

/// Connects as `user` to the loopback `port` over plain TCP (a cluster of the tests', or a
/// PgBouncer in front of one); `Err` carries the server's reason.
#[cfg(feature = "clients")]
pub async fn connect_plain(
    port: u16,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5))
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

#[cfg(feature = "clients")]
impl Postgres {
    /// Connects as `user` over plain TCP; `Err` carries the server's reason.
    pub async fn connect(&self, user: &str, password: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect_plain(self.port, user, password).await
    }

    pub async fn superuser(&self) -> tokio_postgres::Client {
        self.connect(SUPERUSER, SUPERUSER_PASSWORD).await.expect("superuser login")
    }

    pub async fn can_log_in(&self, user: &str, password: &str) -> bool {
        match self.connect(user, password).await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGKILL would leave shared memory behind; postgres shuts down cleanly on SIGINT.
        if let Some(process) = self.process.take() {
            let _ = Command::new("kill").arg("-INT").arg(process.0.id().to_string()).status();
            std::thread::sleep(Duration::from_millis(300));
            drop(process);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
