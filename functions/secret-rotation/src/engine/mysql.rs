//! MySQL, MariaDB and Aurora MySQL. Values reach SQL as bound parameters where the server allows
//! them, and otherwise as literals quoted by the client library for the session's SQL mode.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts, Value};

use super::{connect_per_tls_mode, with_timeout, ConnectionSpec, DbError, DbSettings};

async fn connect(spec: &ConnectionSpec, settings: &DbSettings) -> Result<Conn, DbError> {
    connect_per_tls_mode(spec, |use_tls| connect_with(spec, settings, use_tls)).await
}

async fn connect_with(spec: &ConnectionSpec, settings: &DbSettings, use_tls: bool) -> Result<Conn, DbError> {
    // mysql_async builds its rustls configuration with the process's default provider.
    shared::tls::install_crypto_provider();
    let mut builder = OptsBuilder::default()
        .ip_or_hostname(spec.host.clone())
        .tcp_port(spec.port)
        .user(Some(spec.username.clone()))
        .pass(Some(spec.password.clone()))
        .db_name(spec.dbname.clone())
        .prefer_socket(false);
    if use_tls {
        // The suite's roots in place of mysql_async's built-in ones.
        let trust = shared::tls::peer_trust(&settings.shipped_roots, settings.ca_bundle.as_ref())?;
        let roots = trust.roots.iter().map(|cert| cert.to_vec().into()).collect();
        let ssl = SslOpts::default().with_root_certs(roots).with_disable_built_in_roots(true);
        builder = builder.ssl_opts(Some(ssl));
    }
    let mut conn =
        with_timeout(spec, settings, async { Conn::new(builder).await.map_err(|e| classify(spec, e)) }).await?;
    bound_statements(&mut conn, settings).await?;
    Ok(conn)
}

/// Bounds lock waits (`lock_wait_timeout`, metadata locks included) and, on MariaDB, every
/// statement (`max_statement_time`; MySQL's `max_execution_time` bounds only SELECT).
async fn bound_statements(conn: &mut Conn, settings: &DbSettings) -> Result<(), DbError> {
    let seconds = settings.statement_timeout.as_secs().max(1);
    conn.query_drop(format!("SET SESSION lock_wait_timeout = {seconds}")).await.map_err(query_error)?;
    match conn.query_drop(format!("SET SESSION max_statement_time = {seconds}")).await {
        // 1193: unknown system variable, i.e. MySQL.
        Err(mysql_async::Error::Server(ref e)) if e.code == 1193 => Ok(()),
        other => other.map_err(query_error),
    }
}

/// Names the kind of failure. mysql_async errors never include the password.
fn classify(spec: &ConnectionSpec, err: mysql_async::Error) -> DbError {
    let (host, port) = (spec.host.clone(), spec.port);
    match err {
        // 1045: access denied (wrong password or user); 1698: no password auth for this user.
        mysql_async::Error::Server(ref e) if e.code == 1045 || e.code == 1698 => {
            DbError::AuthFailed { user: spec.username.clone() }
        }
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            DbError::TlsRefused { host, port }
        }
        mysql_async::Error::Io(mysql_async::IoError::Tls(e)) => DbError::Tls { host, port, message: e.to_string() },
        mysql_async::Error::Io(e) => DbError::Unreachable { host, port, message: e.to_string() },
        other => DbError::Query(other.to_string()),
    }
}

/// For statements that carry a password: a syntax error (1064) quotes the statement near the
/// fault, which may be the password, so only its code is kept.
fn password_statement_error(err: mysql_async::Error) -> DbError {
    match err {
        mysql_async::Error::Server(ref e) if e.code == 1064 => {
            DbError::Query(format!("the server rejected the password change as a syntax error ({})", e.code))
        }
        other => query_error(other),
    }
}

fn query_error(err: mysql_async::Error) -> DbError {
    match err {
        // 1205: lock wait timeout; 1969: MariaDB's max_statement_time; 3024: MySQL's.
        mysql_async::Error::Server(ref e) if [1205, 1969, 3024].contains(&e.code) => {
            DbError::Blocked { message: e.message.clone() }
        }
        other => DbError::Query(other.to_string()),
    }
}

/// A string literal quoted for this session (honouring NO_BACKSLASH_ESCAPES).
async fn literal(conn: &mut Conn, text: &str) -> Result<String, DbError> {
    let mode: Option<String> = conn.query_first("SELECT @@SESSION.sql_mode").await.map_err(query_error)?;
    let no_backslash_escapes = mode.unwrap_or_default().contains("NO_BACKSLASH_ESCAPES");
    Ok(Value::from(text).as_sql(no_backslash_escapes))
}

pub async fn check_login(spec: &ConnectionSpec, settings: &DbSettings) -> Result<(), DbError> {
    let mut conn = connect(spec, settings).await?;
    let _: Option<i64> = conn.query_first("SELECT 1").await.map_err(query_error)?;
    let _ = conn.disconnect().await;
    Ok(())
}

pub async fn set_own_password(spec: &ConnectionSpec, new_password: &str, settings: &DbSettings) -> Result<(), DbError> {
    let mut conn = connect(spec, settings).await?;
    let password = literal(&mut conn, new_password).await?;
    // MariaDB asks for the CREATE USER privilege even for ALTER USER CURRENT_USER(); its
    // self-service form is SET PASSWORD. MySQL 5.7+ lets every user ALTER USER itself.
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(query_error)?;
    let statement = if version.unwrap_or_default().contains("MariaDB") {
        format!("SET PASSWORD = PASSWORD({password})")
    } else {
        format!("ALTER USER CURRENT_USER() IDENTIFIED BY {password}")
    };
    conn.query_drop(statement).await.map_err(password_statement_error)?;
    let _ = conn.disconnect().await;
    Ok(())
}

pub async fn set_user_password(
    admin: &ConnectionSpec,
    user: &str,
    new_password: &str,
    template_user: &str,
    settings: &DbSettings,
) -> Result<(), DbError> {
    let mut conn = connect(admin, settings).await?;
    // Neither the user nor the one it is cloned from may administer the server: a user secret
    // must not turn the master's credentials against a privileged account.
    let privileged: Option<String> = conn
        .exec_first(
            "SELECT User FROM mysql.user WHERE User IN (?, ?) AND 'Y' IN (Super_priv, Grant_priv, Create_user_priv, Shutdown_priv) LIMIT 1",
            (user, template_user),
        )
        .await
        .map_err(query_error)?;
    if let Some(user) = privileged {
        return Err(DbError::PrivilegedUser { user });
    }
    let hosts = hosts_of(&mut conn, user).await?;
    let name = literal(&mut conn, user).await?;
    let password = literal(&mut conn, new_password).await?;
    if hosts.is_empty() {
        copy_user(&mut conn, template_user, &name, &password).await?;
    } else {
        for host in &hosts {
            let host = literal(&mut conn, host).await?;
            conn.query_drop(format!("ALTER USER {name}@{host} IDENTIFIED BY {password}"))
                .await
                .map_err(password_statement_error)?;
        }
        if user != template_user {
            sync_grants(&mut conn, template_user, &name, &hosts).await?;
        }
    }
    let _ = conn.disconnect().await;
    Ok(())
}

/// The hosts `user` has accounts on; none means it does not exist.
async fn hosts_of(conn: &mut Conn, user: &str) -> Result<Vec<String>, DbError> {
    conn.exec("SELECT Host FROM mysql.user WHERE User = ?", (user,)).await.map_err(query_error)
}

/// Creates the clone on each host the original user has, with the original's grants.
async fn copy_user(conn: &mut Conn, template_user: &str, clone: &str, password: &str) -> Result<(), DbError> {
    let hosts = hosts_of(conn, template_user).await?;
    if hosts.is_empty() {
        return Err(DbError::Query(format!("user {template_user:?} does not exist, so it cannot be cloned")));
    }
    for host in &hosts {
        let host = literal(conn, host).await?;
        conn.query_drop(format!("CREATE USER {clone}@{host} IDENTIFIED BY {password}"))
            .await
            .map_err(password_statement_error)?;
    }
    sync_grants(conn, template_user, clone, &hosts).await
}

/// Makes the clone's grants and TLS requirement on each host those of the original: grants
/// added to the original since reach the clone, grants taken from it are taken from the clone,
/// and a clone whose grants failed half-way is completed. The clone is the pending user, not
/// the one in use, while this runs.
async fn sync_grants(conn: &mut Conn, template_user: &str, clone: &str, hosts: &[String]) -> Result<(), DbError> {
    let original = literal(conn, template_user).await?;
    for host_name in hosts {
        let host = literal(conn, host_name).await?;
        let template_has_host: Option<String> = conn
            .exec_first("SELECT Host FROM mysql.user WHERE User = ? AND Host = ?", (template_user, host_name))
            .await
            .map_err(query_error)?;
        if template_has_host.is_none() {
            continue;
        }
        conn.query_drop(format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {clone}@{host}"))
            .await
            .map_err(query_error)?;
        let grants: Vec<String> =
            conn.query(format!("SHOW GRANTS FOR {original}@{host}")).await.map_err(query_error)?;
        for grant in grants {
            if let Some(statement) = regrant(&grant, clone, &host) {
                conn.query_drop(statement).await.map_err(password_statement_error)?;
            }
        }
        let ssl_type: Option<String> = conn
            .exec_first("SELECT ssl_type FROM mysql.user WHERE User = ? AND Host = ?", (template_user, host_name))
            .await
            .map_err(query_error)?;
        let require = match ssl_type.as_deref() {
            Some("ANY") => "SSL",
            Some("X509") => "X509",
            // SPECIFIED (issuer, subject, cipher) names one client certificate: not copied.
            Some("SPECIFIED") => continue,
            _ => "NONE",
        };
        conn.query_drop(format!("ALTER USER {clone}@{host} REQUIRE {require}")).await.map_err(query_error)?;
    }
    Ok(())
}

/// Rewrites one `SHOW GRANTS` line for the clone: the privilege part stays, the grantee changes,
/// and the original's password clause is dropped. USAGE-only lines need nothing.
fn regrant(grant: &str, clone: &str, host: &str) -> Option<String> {
    let privileges_end = grant.rfind(" TO ")?;
    let privileges = &grant[..privileges_end];
    if privileges.starts_with("GRANT USAGE ON *.*") {
        return None;
    }
    let with_grant_option = grant[privileges_end..].contains("WITH GRANT OPTION");
    let suffix = if with_grant_option { " WITH GRANT OPTION" } else { "" };
    Some(format!("{privileges} TO {clone}@{host}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::regrant;

    #[test]
    fn grants_are_rewritten_for_the_clone() {
        assert_eq!(
            regrant("GRANT SELECT, INSERT ON `app`.* TO `app`@`%`", "'app_clone'", "'%'").as_deref(),
            Some("GRANT SELECT, INSERT ON `app`.* TO 'app_clone'@'%'")
        );
        assert_eq!(
            regrant("GRANT ALL PRIVILEGES ON `db`.* TO `app`@`%` WITH GRANT OPTION", "'c'", "'%'").as_deref(),
            Some("GRANT ALL PRIVILEGES ON `db`.* TO 'c'@'%' WITH GRANT OPTION")
        );
        assert_eq!(regrant("GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB'", "'c'", "'%'"), None);
    }
}
