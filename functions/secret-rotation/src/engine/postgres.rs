//! PostgreSQL (and Aurora PostgreSQL). User names and passwords reach SQL only through the
//! server's own quoting: `format('%I', $1)` for identifiers and `format('%L', $2)` for literals,
//! with the values bound as parameters.
//!
//! Everything here also works through PgBouncer in transaction pooling: no startup `options`
//! (PgBouncer refuses them), statements with parameters sent unnamed in one round trip
//! (`query_typed`: a named prepared statement may land on another server connection), and the
//! statement bounds set with `SET LOCAL` inside each transaction that changes something, so they
//! never stay behind on a pooled server connection.

use rustls::ClientConfig;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, GenericClient, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{connect_per_tls_mode, postgres_clone, with_timeout, ConnectionSpec, DbError, DbSettings};

async fn connect(spec: &ConnectionSpec, settings: &DbSettings) -> Result<Client, DbError> {
    connect_per_tls_mode(spec, |use_tls| connect_with(spec, settings, use_tls)).await
}

async fn connect_with(spec: &ConnectionSpec, settings: &DbSettings, use_tls: bool) -> Result<Client, DbError> {
    let mut config = Config::new();
    config
        .host(&spec.host)
        .port(spec.port)
        .user(&spec.username)
        .password(&spec.password)
        .dbname(spec.dbname.as_deref().unwrap_or("postgres"))
        .connect_timeout(settings.connect_timeout)
        .application_name("secret-rotation");
    with_timeout(spec, settings, async {
        if use_tls {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let trust = shared::tls::peer_trust(&settings.shipped_roots, settings.ca_bundle.as_ref())?;
            let connector = MakeRustlsConnect::new(ClientConfig::clone(&trust.config));
            let (client, connection) = config.connect(connector).await.map_err(|e| classify(spec, e))?;
            tokio::spawn(connection);
            Ok(client)
        } else {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = config.connect(NoTls).await.map_err(|e| classify(spec, e))?;
            tokio::spawn(connection);
            Ok(client)
        }
    })
    .await
}

/// Roles that give powers beyond a user's own objects: the managed services' administrator
/// roles, and PostgreSQL's roles that read or write the server's files or run its programs.
const PRIVILEGED_ROLES: [&str; 8] = [
    "rds_superuser",
    "rds_replication",
    "rds_password",
    "azure_pg_admin",
    "cloudsqlsuperuser",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
];

/// Names the kind of failure. tokio-postgres errors never include the password.
fn classify(spec: &ConnectionSpec, err: tokio_postgres::Error) -> DbError {
    if let Some(code) = err.code() {
        if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            return DbError::AuthFailed { user: spec.username.clone() };
        }
        // PgBouncer refuses a client's wrong password as a protocol error (08P01): "SASL
        // authentication failed" or "password authentication failed". Its own failure to log in
        // to the server ("server login failed: ...") is not the client's password, and stays a
        // database error with its text.
        let message = err.as_db_error().map(|e| e.message()).unwrap_or_default();
        let pgbouncer_refusal = message == "SASL authentication failed" || message == "password authentication failed";
        if *code == SqlState::PROTOCOL_VIOLATION && pgbouncer_refusal {
            return DbError::AuthFailed { user: spec.username.clone() };
        }
        return DbError::Query(err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_else(|| err.to_string()));
    }
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    let mut is_io = false;
    let mut is_tls = false;
    while let Some(e) = source {
        chain.push_str(&format!("{e}; "));
        is_io |= e.is::<std::io::Error>();
        is_tls |= e.is::<rustls::Error>();
        source = e.source();
    }
    let (host, port) = (spec.host.clone(), spec.port);
    if chain.contains("server does not support TLS") {
        DbError::TlsRefused { host, port }
    } else if is_tls || chain.to_ascii_lowercase().contains("certificate") {
        DbError::Tls { host, port, message: chain.trim_end_matches("; ").to_owned() }
    } else if is_io || chain.contains("error connecting") {
        DbError::Unreachable { host, port, message: chain.trim_end_matches("; ").to_owned() }
    } else {
        DbError::Query(err.to_string())
    }
}

/// For statements that carry a password: a syntax error quotes the statement near the fault,
/// which may be the password, so only its code is kept.
pub(super) fn password_statement_error(err: tokio_postgres::Error) -> DbError {
    match err.code() {
        Some(code) if *code == SqlState::SYNTAX_ERROR => DbError::Query(format!(
            "the server rejected the password change as a syntax error (SQLSTATE {})",
            code.code()
        )),
        _ => query_error(err),
    }
}

pub(super) fn query_error(err: tokio_postgres::Error) -> DbError {
    let message = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_else(|| err.to_string());
    match err.code() {
        // lock_timeout or statement_timeout ran out.
        Some(code) if *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::QUERY_CANCELED => {
            DbError::Blocked { message }
        }
        _ => DbError::Query(message),
    }
}

/// Builds a statement with the server's quoting, from bound values.
pub(super) async fn formatted(client: &impl GenericClient, template: &str, values: &[&str]) -> Result<String, DbError> {
    let params: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> =
        values.iter().map(|v| (v as &(dyn tokio_postgres::types::ToSql + Sync), Type::TEXT)).collect();
    // Qualified, so that no search_path can put another `format` or `text` in their place.
    let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}::pg_catalog.text")).collect();
    let sql = format!("SELECT pg_catalog.format('{template}', {})", placeholders.join(", "));
    let row = client.query_typed_one(&sql, &params).await.map_err(query_error)?;
    row.try_get(0).map_err(query_error)
}

/// The bounds on each statement and lock wait (`DB_STATEMENT_TIMEOUT_SECONDS`), for the start of
/// a transaction: `SET LOCAL` ends with it.
pub(super) fn transaction_bounds(settings: &DbSettings) -> String {
    let ms = settings.statement_timeout.as_millis();
    format!("SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms};")
}

/// `statement` in a transaction of its own, bounded.
fn bounded(statement: &str, settings: &DbSettings) -> String {
    format!("BEGIN; {} {statement}; COMMIT;", transaction_bounds(settings))
}

pub async fn check_login(spec: &ConnectionSpec, settings: &DbSettings) -> Result<(), DbError> {
    let client = connect(spec, settings).await?;
    client.simple_query("SELECT 1").await.map_err(query_error)?;
    Ok(())
}

/// The password as a SCRAM-SHA-256 verifier (a fresh salt each time): what the server stores
/// anyway. Sent in its place, the password never appears in a statement, so `log_statement`,
/// `pg_stat_statements` and error reports cannot show it.
fn verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

pub async fn set_own_password(spec: &ConnectionSpec, new_password: &str, settings: &DbSettings) -> Result<(), DbError> {
    let client = connect(spec, settings).await?;
    let statement =
        formatted(&client, "ALTER ROLE %I WITH PASSWORD %L", &[&spec.username, &verifier(new_password)]).await?;
    client.batch_execute(&bounded(&statement, settings)).await.map_err(password_statement_error)
}

pub async fn set_user_password(
    admin: &ConnectionSpec,
    user: &str,
    new_password: &str,
    template_user: &str,
    settings: &DbSettings,
) -> Result<(), DbError> {
    let mut client = connect(admin, settings).await?;
    // Neither the user nor the one it is cloned from may hold powers beyond its own objects:
    // a user secret must not turn the master's credentials against a privileged role.
    // A role's powers include those of every role it is a member of, directly or not: a member
    // of rds_superuser is as privileged as a superuser.
    let privileged = client
        .query_typed(
            "SELECT u.rolname FROM pg_catalog.pg_roles u \
             JOIN pg_catalog.pg_roles r ON pg_catalog.pg_has_role(u.oid, r.oid, 'MEMBER') \
             WHERE u.rolname = ANY($1) \
             AND (r.rolsuper OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls OR r.rolname = ANY($2)) \
             LIMIT 1",
            &[(&vec![user, template_user], Type::TEXT_ARRAY), (&PRIVILEGED_ROLES.to_vec(), Type::TEXT_ARRAY)],
        )
        .await
        .map_err(query_error)?;
    if let Some(row) = privileged.first() {
        return Err(DbError::PrivilegedUser { user: row.try_get(0).map_err(query_error)? });
    }
    let exists = client
        .query_typed_opt("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", &[(&user, Type::TEXT)])
        .await
        .map_err(query_error)?
        .is_some();
    let set_password = if exists {
        formatted(&client, "ALTER ROLE %I WITH PASSWORD %L", &[user, &verifier(new_password)]).await?
    } else {
        formatted(&client, "CREATE ROLE %I WITH LOGIN PASSWORD %L", &[user, &verifier(new_password)]).await?
    };
    if user == template_user {
        return client.batch_execute(&bounded(&set_password, settings)).await.map_err(password_statement_error);
    }
    // Stated again on each rotation, so a clone left half-made, or changed since, is repaired by
    // the re-run; objects either user creates are owned by the original, so neither loses
    // access when the other is current.
    postgres_clone::converge(&mut client, template_user, user, &set_password, !exists, settings).await
}

/// Logged in as the master `admin`: why `clone` is no clone of `original`, if it is not.
pub async fn clone_tie_missing(
    admin: &ConnectionSpec,
    clone: &str,
    original: &str,
    settings: &DbSettings,
) -> Result<Option<String>, DbError> {
    let client = connect(admin, settings).await?;
    postgres_clone::tie_missing(&client, original, clone).await
}

/// Logged in as the master `admin`: whether `user` exists (PostgreSQL clones are made in one
/// transaction, so none is ever seen half-made, or locked).
pub async fn account_state(
    admin: &ConnectionSpec,
    user: &str,
    settings: &DbSettings,
) -> Result<super::AccountState, DbError> {
    let client = connect(admin, settings).await?;
    let exists = client
        .query_typed_opt("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", &[(&user, Type::TEXT)])
        .await
        .map_err(query_error)?
        .is_some();
    Ok(if exists { super::AccountState::Present } else { super::AccountState::Absent })
}

/// Logged in as the master `admin`: how `clone` differs from what it must be to act as
/// `original`, if it does.
pub async fn privilege_difference(
    admin: &ConnectionSpec,
    clone: &str,
    original: &str,
    settings: &DbSettings,
) -> Result<Option<String>, DbError> {
    let client = connect(admin, settings).await?;
    postgres_clone::difference(&client, original, clone).await
}
