//! MySQL, MariaDB and Aurora MySQL. Values reach SQL as bound parameters where the server allows
//! them, and otherwise as literals quoted by the client library for the session's SQL mode.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts, Value};

use super::{connect_per_tls_mode, mysql_clone, mysql_server, with_timeout, ConnectionSpec, DbError, DbSettings};

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
        // 1045: access denied (wrong password or user); 1698: no password auth for this user;
        // 3118 (MySQL) and 4151 (MariaDB): the account is locked, as a clone is while setSecret
        // states its grants.
        mysql_async::Error::Server(ref e) if [1045, 1698, 3118, 4151].contains(&e.code) => {
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
pub(super) fn password_statement_error(err: mysql_async::Error) -> DbError {
    match err {
        mysql_async::Error::Server(ref e) if e.code == 1064 => {
            DbError::Query(format!("the server rejected the password change as a syntax error ({})", e.code))
        }
        other => query_error(other),
    }
}

pub(super) fn query_error(err: mysql_async::Error) -> DbError {
    match err {
        // 1205: lock wait timeout; 1969: MariaDB's max_statement_time; 3024: MySQL's.
        mysql_async::Error::Server(ref e) if [1205, 1969, 3024].contains(&e.code) => {
            DbError::Blocked { message: e.message.clone() }
        }
        other => DbError::Query(other.to_string()),
    }
}

/// Whether this session's SQL mode has NO_BACKSLASH_ESCAPES, which changes how literals quote.
pub(super) async fn quoting(conn: &mut Conn) -> Result<bool, DbError> {
    let mode: Option<String> = conn.query_first("SELECT @@SESSION.sql_mode").await.map_err(query_error)?;
    Ok(mode.unwrap_or_default().contains("NO_BACKSLASH_ESCAPES"))
}

/// A string literal quoted for this session.
async fn literal(conn: &mut Conn, text: &str) -> Result<String, DbError> {
    Ok(Value::from(text).as_sql(quoting(conn).await?))
}

/// When the logged-in account's password last changed, in seconds since the epoch: MySQL's
/// `mysql.user.password_last_changed`, MariaDB's `password_last_changed` in `mysql.global_priv`.
/// `None` where the account may not read them, as most single users may not.
pub async fn password_changed_at(spec: &ConnectionSpec, settings: &DbSettings) -> Result<Option<u64>, DbError> {
    let mut conn = connect(spec, settings).await?;
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(query_error)?;
    let query = if version.unwrap_or_default().contains("MariaDB") {
        "SELECT CAST(JSON_VALUE(Priv, '$.password_last_changed') AS UNSIGNED) FROM mysql.global_priv \
         WHERE CONCAT(User, '@', Host) = CURRENT_USER()"
    } else {
        "SELECT CAST(UNIX_TIMESTAMP(password_last_changed) AS UNSIGNED) FROM mysql.user \
         WHERE CONCAT(User, '@', Host) = CURRENT_USER()"
    };
    let seen: Result<Option<Option<u64>>, _> = conn.query_first(query).await;
    let _ = conn.disconnect().await;
    match seen {
        Ok(seen) => Ok(seen.flatten()),
        // 1142: SELECT denied on the table; 1143: on a column.
        Err(mysql_async::Error::Server(ref e)) if [1142, 1143].contains(&e.code) => Ok(None),
        Err(e) => Err(query_error(e)),
    }
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
    // must not turn the master's credentials against a privileged account, whether it holds the
    // privilege itself or through a role.
    if let Some(user) = mysql_server::privileged_user(&mut conn, &[user, template_user]).await? {
        return Err(DbError::PrivilegedUser { user });
    }
    let password = literal(&mut conn, new_password).await?;
    if user == template_user {
        let hosts = hosts_of(&mut conn, user).await?;
        if hosts.is_empty() {
            return Err(DbError::Query(format!("user {user:?} does not exist")));
        }
        let name = literal(&mut conn, user).await?;
        for host in &hosts {
            let host = literal(&mut conn, host).await?;
            conn.query_drop(format!("ALTER USER {name}@{host} IDENTIFIED BY {password}"))
                .await
                .map_err(password_statement_error)?;
        }
    } else {
        // The clone is made whole while locked, and opened with its new password last.
        let hosts = mysql_clone::converge(&mut conn, template_user, user, &password).await?;
        mysql_clone::unlock_with_password(&mut conn, user, &hosts, &password).await?;
    }
    let _ = conn.disconnect().await;
    Ok(())
}

/// Logged in as the master `admin`: how `clone`'s privileges differ from `original`'s, if they do.
pub async fn privilege_difference(
    admin: &ConnectionSpec,
    clone: &str,
    original: &str,
    settings: &DbSettings,
) -> Result<Option<String>, DbError> {
    let mut conn = connect(admin, settings).await?;
    let difference = mysql_clone::difference(&mut conn, original, clone).await?;
    let _ = conn.disconnect().await;
    Ok(difference)
}

/// Logged in as the master `admin`: whether `clone` looks like a clone of `original` this
/// function began (no role, no host or privilege beyond the original's).
pub async fn holds_no_more_than(
    admin: &ConnectionSpec,
    clone: &str,
    original: &str,
    settings: &DbSettings,
) -> Result<bool, DbError> {
    let mut conn = connect(admin, settings).await?;
    let verdict = mysql_clone::holds_no_more_than(&mut conn, original, clone).await?;
    let _ = conn.disconnect().await;
    Ok(verdict)
}

/// Logged in as the master `admin`: whether `user` exists, and whether any of its accounts is locked.
pub async fn account_state(
    admin: &ConnectionSpec,
    user: &str,
    settings: &DbSettings,
) -> Result<super::AccountState, DbError> {
    let mut conn = connect(admin, settings).await?;
    let state = mysql_clone::account_state(&mut conn, user).await?;
    let _ = conn.disconnect().await;
    Ok(state)
}

/// The hosts `user` has accounts on; none means it does not exist.
pub(super) async fn hosts_of(conn: &mut Conn, user: &str) -> Result<Vec<String>, DbError> {
    conn.exec("SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host", (user,)).await.map_err(query_error)
}
