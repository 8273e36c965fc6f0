//! A throwaway MariaDB server of the test's own: its own data folder, TLS with a test
//! certificate, password logins, on a free loopback port. (The machine's shared server lets root
//! in without a password.)

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

#[cfg(feature = "clients")]
use mysql_async::prelude::Queryable;

use crate::certs::TestCerts;
use crate::scratch_dir;
use crate::server_user::{as_owner, chown_tree, server_owner};
use harness_runtime::process::{free_port, wait_for_port, KillOnDrop};

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-test-Passw0rd";

pub struct MariaDb {
    pub port: u16,
    pub ca: PathBuf,
    dir: PathBuf,
    _process: KillOnDrop,
}

impl MariaDb {
    pub fn start() -> MariaDb {
        let dir = scratch_dir("mariadb");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("creating the data folder");
        // A temporary folder of the server's own: in the shared /tmp, concurrent bootstraps of
        // parallel tests have failed on each other's temporary tables.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).expect("creating the server's temporary folder");
        let certs = TestCerts::create(&dir.join("certs"));
        let owner = server_owner("mysql");
        chown_tree(&dir, owner);
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if owner.is_some() {
            install.arg("--user=mysql");
        }
        let output = install.output().expect("running mariadb-install-db");
        assert!(output.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&output.stderr));

        let port = free_port();
        let mut server = Command::new("mariadbd");
        as_owner(&mut server, owner)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--ssl-cert={}", certs.server_cert.display()))
            .arg(format!("--ssl-key={}", certs.server_key.display()))
            .arg(format!("--ssl-ca={}", certs.ca.display()))
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M", "--skip-name-resolve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = server.spawn().expect("starting mariadbd");
        wait_for_port(port, Duration::from_secs(60), "mariadbd", &mut child);
        let db = MariaDb { port, ca: certs.ca, dir, _process: KillOnDrop(child) };
        db.create_admin();
        db
    }

    /// root@localhost has no password and only the socket; the tests log in as a password admin.
    fn create_admin(&self) {
        let sql = format!(
            "CREATE USER '{ADMIN}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'; GRANT ALL ON *.* TO '{ADMIN}'@'%' WITH GRANT OPTION; CREATE DATABASE app;"
        );
        let output = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.join("mysqld.sock").display()))
            .args(["-u", "root", "-e", &sql])
            .output()
            .expect("running the mariadb client");
        assert!(output.status.success(), "creating the admin: {}", String::from_utf8_lossy(&output.stderr));
    }
}

#[cfg(feature = "clients")]
impl MariaDb {
    /// Logs in as `user` over TCP; `Err` carries the server's reason.
    pub async fn connect(&self, user: &str, password: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false);
        mysql_async::Conn::new(opts).await
    }

    pub async fn admin(&self) -> mysql_async::Conn {
        self.connect(ADMIN, ADMIN_PASSWORD).await.expect("admin login")
    }

    pub async fn can_log_in(&self, user: &str, password: &str) -> bool {
        match self.connect(user, password).await {
            Ok(mut conn) => {
                let ok = conn.query_drop("SELECT 1").await.is_ok();
                let _ = conn.disconnect().await;
                ok
            }
            Err(_) => false,
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
