//! A PgBouncer of the test's own (Debian's `pgbouncer`, 1.18) in front of a throwaway PostgreSQL,
//! on a free loopback port: TLS to its clients with a test certificate (optional for them, as
//! PgBouncer's `allow`), SCRAM with each user's verifier read from the server through
//! `auth_user`/`auth_query` (so a password changed on the server is followed at the next login,
//! with no auth file to reload), and session or transaction pooling.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::certs::TestCerts;
use crate::postgres::Postgres;
use crate::scratch_dir;
use crate::server_user::{as_owner, chown_tree, server_owner};
use harness_runtime::process::{free_port, wait_for_port, KillOnDrop};

/// The role PgBouncer logs in as to read verifiers (`pg_shadow` needs a superuser).
const AUTH_USER: &str = "pgbouncer_auth";
const AUTH_PASSWORD: &str = "pgbouncer-auth-Passw0rd";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
}

impl PoolMode {
    fn name(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        }
    }
}

pub struct PgBouncer {
    pub port: u16,
    /// The CA of PgBouncer's own certificate, for clients that verify it.
    pub ca: PathBuf,
    dir: PathBuf,
    _process: KillOnDrop,
}

impl PgBouncer {
    /// Starts PgBouncer in front of `pg`, which must be running; its auth user is made there.
    pub async fn start(pg: &Postgres, mode: PoolMode) -> PgBouncer {
        pg.superuser()
            .await
            .batch_execute(&format!("CREATE ROLE {AUTH_USER} LOGIN SUPERUSER PASSWORD '{AUTH_PASSWORD}'"))
            .await
            .expect("PgBouncer's auth user");
        let dir = scratch_dir("pgbouncer");
        std::fs::create_dir_all(&dir).expect("PgBouncer's folder");
        let certs = TestCerts::create(&dir.join("certs"));
        std::fs::write(dir.join("userlist.txt"), format!("\"{AUTH_USER}\" \"{AUTH_PASSWORD}\"\n")).expect("auth file");
        let port = free_port();
        let config = format!(
            "[databases]\n\
             * = host=127.0.0.1 port={pg_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = scram-sha-256\n\
             auth_file = {dir}/userlist.txt\n\
             auth_user = {AUTH_USER}\n\
             auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename = $1\n\
             pool_mode = {mode}\n\
             client_tls_sslmode = allow\n\
             client_tls_cert_file = {cert}\n\
             client_tls_key_file = {key}\n\
             server_tls_sslmode = disable\n\
             logfile = {dir}/pgbouncer.log\n",
            pg_port = pg.port,
            dir = dir.display(),
            mode = mode.name(),
            cert = certs.server_cert.display(),
            key = certs.server_key.display(),
        );
        std::fs::write(dir.join("pgbouncer.ini"), config).expect("PgBouncer's configuration");
        // PgBouncer refuses to run as root: as root, it runs as the postgres system user.
        let owner = server_owner("postgres");
        chown_tree(&dir, owner);
        std::fs::set_permissions(&certs.server_key, std::fs::Permissions::from_mode(0o600)).expect("key mode");
        let mut child = as_owner(&mut Command::new("/usr/sbin/pgbouncer"), owner)
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting pgbouncer");
        wait_for_port(port, Duration::from_secs(30), "pgbouncer", &mut child);
        PgBouncer { port, ca: certs.ca, dir, _process: KillOnDrop(child) }
    }

    /// What PgBouncer has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// Logs in through PgBouncer as `user` (plain TCP, as its `allow` permits) and runs a query.
    pub async fn can_log_in(&self, user: &str, password: &str) -> bool {
        match crate::postgres::connect_plain(self.port, user, password).await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
