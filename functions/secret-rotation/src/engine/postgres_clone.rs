//! The PostgreSQL clone of an alternating pair: a login role that is a member of the original's
//! role only, whose sessions act as the original (`SET role`), and which carries the original's
//! per-role and per-database settings (`search_path`, `statement_timeout`, ...), which PostgreSQL
//! applies to the login role and so never reach the clone through membership. All of it, and the
//! new password, in one transaction: a run cut short changes nothing.

use std::collections::BTreeSet;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient};

use tokio_postgres::types::Type;

use super::postgres::{formatted, password_statement_error, query_error, transaction_bounds};
use super::{DbError, DbSettings};

/// Settings that say who a session is, not how it behaves: never copied (`role` is the clone's
/// own, naming the original).
const IDENTITY_SETTINGS: [&str; 2] = ["role", "session_authorization"];

/// One stored setting of a role: the database it applies in (empty: every database), its name
/// and its value.
type Setting = (String, String, String);

async fn settings_of(client: &impl GenericClient, role: &str) -> Result<BTreeSet<Setting>, DbError> {
    let rows = client
        .query_typed(
            "SELECT coalesce(d.datname, ''), c.setting \
             FROM pg_catalog.pg_db_role_setting s \
             LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase \
             CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting) \
             WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)",
            &[(&role, Type::TEXT)],
        )
        .await
        .map_err(query_error)?;
    let mut settings = BTreeSet::new();
    for row in rows {
        let database: String = row.try_get(0).map_err(query_error)?;
        let setting: String = row.try_get(1).map_err(query_error)?;
        let (name, value) = setting.split_once('=').unwrap_or((setting.as_str(), ""));
        settings.insert((database, name.to_owned(), value.to_owned()));
    }
    Ok(settings)
}

/// The roles `role` is directly a member of.
async fn memberships_of(client: &impl GenericClient, role: &str) -> Result<BTreeSet<String>, DbError> {
    let rows = client
        .query_typed(
            "SELECT r.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid \
             WHERE m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)",
            &[(&role, Type::TEXT)],
        )
        .await
        .map_err(query_error)?;
    rows.iter().map(|row| row.try_get(0).map_err(query_error)).collect()
}

/// A setting's name as SQL: each dotted part quoted (`myapp.tenant` is a custom setting).
async fn setting_name(client: &impl GenericClient, name: &str) -> Result<String, DbError> {
    let mut parts = Vec::new();
    for part in name.split('.') {
        parts.push(formatted(client, "%I", &[part]).await?);
    }
    Ok(parts.join("."))
}

/// Makes `clone` what it must be, and runs `set_password` (the `CREATE ROLE` or `ALTER ROLE`
/// that gives it the new password), in one transaction.
pub(super) async fn converge(
    client: &mut Client,
    original: &str,
    clone: &str,
    set_password: &str,
    creates: bool,
    settings: &DbSettings,
) -> Result<(), DbError> {
    let tx = client.transaction().await.map_err(query_error)?;
    tx.batch_execute(&transaction_bounds(settings)).await.map_err(query_error)?;
    if creates {
        tx.batch_execute(set_password).await.map_err(password_statement_error)?;
    }
    // Member of the original's role, and of nothing else.
    tx.batch_execute(&formatted(&tx, "GRANT %I TO %I", &[original, clone]).await?).await.map_err(query_error)?;
    for role in memberships_of(&tx, clone).await? {
        if role != original {
            tx.batch_execute(&formatted(&tx, "REVOKE %I FROM %I", &[&role, clone]).await?)
                .await
                .map_err(query_error)?;
        }
    }
    // The clone's settings: the original's, and acting as the original.
    let mut databases: BTreeSet<String> = settings_of(&tx, clone).await?.into_iter().map(|(db, _, _)| db).collect();
    databases.remove("");
    tx.batch_execute(&formatted(&tx, "ALTER ROLE %I RESET ALL", &[clone]).await?).await.map_err(query_error)?;
    for database in &databases {
        let reset = formatted(&tx, "ALTER ROLE %I IN DATABASE %I RESET ALL", &[clone, database]).await?;
        tx.batch_execute(&reset).await.map_err(query_error)?;
    }
    tx.batch_execute(&formatted(&tx, "ALTER ROLE %I SET role = %L", &[clone, original]).await?)
        .await
        .map_err(query_error)?;
    for (database, name, value) in settings_of(&tx, original).await? {
        if IDENTITY_SETTINGS.contains(&name.as_str()) {
            continue;
        }
        // The value goes through set_config as a bound parameter, and ALTER ROLE takes it FROM
        // CURRENT: it is never written into a statement, so no value can be SQL.
        let name_sql = setting_name(&tx, &name).await?;
        let alter = if database.is_empty() {
            formatted(&tx, "ALTER ROLE %I SET ", &[clone]).await?
        } else {
            formatted(&tx, "ALTER ROLE %I IN DATABASE %I SET ", &[clone, &database]).await?
        };
        // The server's message may quote the value, so only its code is kept.
        let copying = |e: tokio_postgres::Error| {
            match e.code() {
            Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => DbError::Query(format!(
                "the master may not set {name:?}, a setting of {original:?}, so the clone cannot carry it; grant the master SET on it, or drop the setting"
            )),
            Some(code) => DbError::Query(format!(
                "copying the setting {name:?} of {original:?} to the clone failed (SQLSTATE {})",
                code.code()
            )),
            None => query_error(e),
        }
        };
        tx.query_typed("SELECT pg_catalog.set_config($1, $2, true)", &[(&name, Type::TEXT), (&value, Type::TEXT)])
            .await
            .map_err(copying)?;
        tx.batch_execute(&format!("{alter}{name_sql} FROM CURRENT")).await.map_err(copying)?;
    }
    if !creates {
        tx.batch_execute(set_password).await.map_err(password_statement_error)?;
    }
    tx.commit().await.map_err(query_error)
}

/// The first way the clone differs from what [`converge`] makes it, in words that name a role
/// or a setting, never a value or a password; `None` when it is what it must be.
pub(super) async fn difference(client: &Client, original: &str, clone: &str) -> Result<Option<String>, DbError> {
    let memberships = memberships_of(client, clone).await?;
    if !memberships.contains(original) {
        return Ok(Some(format!("the clone is not a member of {original:?}")));
    }
    if let Some(other) = memberships.iter().find(|role| *role != original) {
        return Ok(Some(format!("the clone is also a member of {other:?}, which the original is not through it")));
    }
    let ours = settings_of(client, clone).await?;
    if !ours.contains(&(String::new(), "role".to_owned(), original.to_owned())) {
        return Ok(Some(format!("the clone's sessions do not act as {original:?} (its setting \"role\")")));
    }
    let copied = |settings: BTreeSet<Setting>| -> BTreeSet<Setting> {
        settings.into_iter().filter(|(_, name, _)| !IDENTITY_SETTINGS.contains(&name.as_str())).collect()
    };
    let (ours, theirs) = (copied(ours), copied(settings_of(client, original).await?));
    let named = |(database, name, _): &Setting| {
        if database.is_empty() {
            format!("the setting {name:?}")
        } else {
            format!("the setting {name:?} in database {database:?}")
        }
    };
    if let Some(setting) = theirs.difference(&ours).next() {
        return Ok(Some(format!("the clone lacks the original's value of {}", named(setting))));
    }
    if let Some(setting) = ours.difference(&theirs).next() {
        return Ok(Some(format!("the clone has its own value of {}", named(setting))));
    }
    let own: i64 = client
        .query_typed_one(
            "SELECT count(*) FROM pg_catalog.pg_shdepend \
             WHERE refclassid = 'pg_catalog.pg_authid'::regclass AND deptype IN ('a', 'o') \
             AND refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)",
            &[(&clone, Type::TEXT)],
        )
        .await
        .map_err(query_error)?
        .try_get(0)
        .map_err(query_error)?;
    if own > 0 {
        return Ok(Some(format!(
            "the clone holds privileges or objects of its own ({own}), beyond its membership in {original:?}; grant them to {original:?} instead"
        )));
    }
    Ok(None)
}
