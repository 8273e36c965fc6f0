//! The PostgreSQL clone of an alternating pair: a login role that is a member of the original's
//! role only (without the admin option), with the original's attributes (`CREATEDB`, `INHERIT`,
//! connection limit), whose sessions act as the original (or as the role the original's own
//! sessions act as), and which carries the original's per-role and per-database settings
//! (`search_path`, `statement_timeout`, ...), which PostgreSQL applies to the login role and so
//! never reach the clone through membership. All of it, and the new password, in one
//! transaction: a run cut short changes nothing.
//!
//! Settings are stated again as literals built by the server's `format('%L')` from bound values,
//! never applied to the master's own session: a setting of the original's (its `search_path`
//! above all) must not change how the master's statements resolve.

use std::collections::BTreeSet;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use super::postgres::{formatted, password_statement_error, query_error, transaction_bounds};
use super::{DbError, DbSettings};

/// A setting no role can carry (`ALTER ROLE ... SET` refuses it): never copied or compared.
const UNSETTABLE: &str = "session_authorization";

/// Settings whose values are lists of names, each quoted as an identifier where needed
/// (PostgreSQL's `GUC_LIST_QUOTE`): stored as `app, "my schema"`, and stated again as one
/// literal per element.
const LIST_SETTINGS: [&str; 5] = [
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "local_preload_libraries",
    "shared_preload_libraries",
];

/// One stored setting of a role: the database it applies in (empty: every database), its name
/// and its value as stored.
type Setting = (String, String, String);

async fn settings_of(client: &impl GenericClient, role: &str) -> Result<BTreeSet<Setting>, DbError> {
    let rows = client
        .query_typed(
            "SELECT coalesce(d.datname, ''), c.setting \
             FROM pg_catalog.pg_db_role_setting s \
             LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase \
             CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c(setting) \
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
        if name != UNSETTABLE {
            settings.insert((database, name.to_owned(), value.to_owned()));
        }
    }
    Ok(settings)
}

/// The settings the clone must have: the original's, with its sessions acting as the role the
/// original's own act as (its `role` setting), or else as the original.
fn settings_for_clone(original: &str, theirs: &BTreeSet<Setting>) -> BTreeSet<Setting> {
    let mut ours = theirs.clone();
    if !ours.iter().any(|(database, name, _)| database.is_empty() && name == "role") {
        ours.insert((String::new(), "role".to_owned(), original.to_owned()));
    }
    ours
}

/// The roles `role` is directly a member of, and whether with the admin option.
async fn memberships_of(client: &impl GenericClient, role: &str) -> Result<Vec<(String, bool)>, DbError> {
    let rows = client
        .query_typed(
            "SELECT r.rolname, m.admin_option FROM pg_catalog.pg_auth_members m \
             JOIN pg_catalog.pg_roles r ON r.oid = m.roleid \
             WHERE m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)",
            &[(&role, Type::TEXT)],
        )
        .await
        .map_err(query_error)?;
    rows.iter().map(|row| Ok((row.try_get(0).map_err(query_error)?, row.try_get(1).map_err(query_error)?))).collect()
}

/// The attributes a role's sessions get, in `ALTER ROLE` words (the privileged ones included,
/// so a clone changed after setSecret is caught even though setSecret refuses to touch one).
async fn attributes_of(client: &impl GenericClient, role: &str) -> Result<Vec<String>, DbError> {
    let row = client
        .query_typed_one(
            "SELECT rolcreatedb, rolinherit, rolconnlimit, rolsuper, rolcreaterole, rolreplication, rolbypassrls \
             FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[(&role, Type::TEXT)],
        )
        .await
        .map_err(query_error)?;
    let flag = |at: usize, yes: &str| -> Result<String, DbError> {
        let set: bool = row.try_get(at).map_err(query_error)?;
        Ok(if set { yes.to_owned() } else { format!("NO{yes}") })
    };
    let limit: i32 = row.try_get(2).map_err(query_error)?;
    Ok(vec![
        flag(0, "CREATEDB")?,
        flag(1, "INHERIT")?,
        format!("CONNECTION LIMIT {limit}"),
        flag(3, "SUPERUSER")?,
        flag(4, "CREATEROLE")?,
        flag(5, "REPLICATION")?,
        flag(6, "BYPASSRLS")?,
    ])
}

/// The names in a stored list value (`app, "my schema"`): split at commas outside double
/// quotes, each unquoted.
fn list_elements(value: &str) -> Vec<String> {
    let mut elements = Vec::new();
    let (mut current, mut quoted, mut chars) = (String::new(), false, value.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => elements.push(std::mem::take(&mut current).trim().to_owned()),
            c => current.push(c),
        }
    }
    elements.push(current.trim().to_owned());
    elements
}

/// The `ALTER ROLE ... SET` that gives `clone` the stored setting, every part quoted by the
/// server from bound values (the template holds no data).
async fn set_statement(client: &impl GenericClient, clone: &str, setting: &Setting) -> Result<String, DbError> {
    let (database, name, value) = setting;
    let mut template = String::from("ALTER ROLE %I");
    let mut values: Vec<&str> = vec![clone];
    if !database.is_empty() {
        template.push_str(" IN DATABASE %I");
        values.push(database);
    }
    let parts: Vec<&str> = name.split('.').collect();
    template.push_str(" SET ");
    template.push_str(&vec!["%I"; parts.len()].join("."));
    values.extend(parts);
    let elements = if LIST_SETTINGS.contains(&name.as_str()) { list_elements(value) } else { vec![value.clone()] };
    template.push_str(" = ");
    template.push_str(&vec!["%L"; elements.len()].join(", "));
    values.extend(elements.iter().map(String::as_str));
    formatted(client, &template, &values).await
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
    // Member of the original's role without the admin option, and of nothing else.
    tx.batch_execute(&formatted(&tx, "GRANT %I TO %I", &[original, clone]).await?).await.map_err(query_error)?;
    for (role, admin) in memberships_of(&tx, clone).await? {
        let statement = if role != original {
            formatted(&tx, "REVOKE %I FROM %I", &[&role, clone]).await?
        } else if admin {
            formatted(&tx, "REVOKE ADMIN OPTION FOR %I FROM %I", &[&role, clone]).await?
        } else {
            continue;
        };
        tx.batch_execute(&statement).await.map_err(query_error)?;
    }
    // The original's attributes a login gets (the privileged ones are refused before this).
    let attributes = attributes_of(&tx, original).await?;
    let alter = formatted(&tx, "ALTER ROLE %I WITH ", &[clone]).await?;
    tx.batch_execute(&format!("{alter}{}", attributes[..3].join(" "))).await.map_err(query_error)?;
    // The clone's settings: everything it had goes, then the original's are stated again.
    let mut databases: BTreeSet<String> = settings_of(&tx, clone).await?.into_iter().map(|(db, _, _)| db).collect();
    databases.remove("");
    tx.batch_execute(&formatted(&tx, "ALTER ROLE %I RESET ALL", &[clone]).await?).await.map_err(query_error)?;
    for database in &databases {
        let reset = formatted(&tx, "ALTER ROLE %I IN DATABASE %I RESET ALL", &[clone, database]).await?;
        tx.batch_execute(&reset).await.map_err(query_error)?;
    }
    for setting in settings_for_clone(original, &settings_of(&tx, original).await?) {
        let name = &setting.1;
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
        let statement = set_statement(&tx, clone, &setting).await?;
        tx.batch_execute(&statement).await.map_err(copying)?;
    }
    if !creates {
        tx.batch_execute(set_password).await.map_err(password_statement_error)?;
    }
    tx.commit().await.map_err(query_error)
}

/// Why `clone` is no clone of `original`: it is not a member of the original's role.
pub(super) async fn tie_missing(client: &Client, original: &str, clone: &str) -> Result<Option<String>, DbError> {
    let memberships = memberships_of(client, clone).await?;
    Ok((!memberships.iter().any(|(role, _)| role == original))
        .then(|| format!("it is not a member of {original:?}, so it is no clone of it")))
}

/// The first way the clone differs from what [`converge`] makes it, in words that name a role,
/// an attribute or a setting, never a value or a password; `None` when it is what it must be.
pub(super) async fn difference(client: &Client, original: &str, clone: &str) -> Result<Option<String>, DbError> {
    let memberships = memberships_of(client, clone).await?;
    match memberships.iter().find(|(role, _)| role == original) {
        None => return Ok(Some(format!("the clone is not a member of {original:?}"))),
        Some((_, true)) => return Ok(Some(format!("the clone holds {original:?} with the admin option"))),
        Some(_) => {}
    }
    if let Some((other, _)) = memberships.iter().find(|(role, _)| role != original) {
        return Ok(Some(format!("the clone is also a member of {other:?}, which the original is not through it")));
    }
    let (theirs, ours) = (attributes_of(client, original).await?, attributes_of(client, clone).await?);
    if let Some((ours, theirs)) = ours.iter().zip(&theirs).find(|(ours, theirs)| ours != theirs) {
        return Ok(Some(format!("the clone is {ours}, the original {theirs}")));
    }
    let expected = settings_for_clone(original, &settings_of(client, original).await?);
    let ours = settings_of(client, clone).await?;
    let named = |(database, name, _): &Setting| {
        if database.is_empty() {
            format!("the setting {name:?}")
        } else {
            format!("the setting {name:?} in database {database:?}")
        }
    };
    if let Some(setting) = expected.difference(&ours).next() {
        return Ok(Some(format!("the clone lacks the value it must have of {}", named(setting))));
    }
    if let Some(setting) = ours.difference(&expected).next() {
        return Ok(Some(format!("the clone has its own value of {}", named(setting))));
    }
    let own: i64 = client
        .query_typed_one(
            "SELECT pg_catalog.count(*) FROM pg_catalog.pg_shdepend \
             WHERE refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND deptype IN ('a', 'o', 'r') \
             AND refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)",
            &[(&clone, Type::TEXT)],
        )
        .await
        .map_err(query_error)?
        .try_get(0)
        .map_err(query_error)?;
    if own > 0 {
        return Ok(Some(format!(
            "the clone holds privileges, objects or row-security policies of its own ({own}), beyond its membership in {original:?}; give them to {original:?} instead"
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::list_elements;

    #[test]
    fn stored_lists_are_split_into_their_names() {
        assert_eq!(list_elements("app_schema, public"), ["app_schema", "public"]);
        assert_eq!(list_elements("\"$user\", public"), ["$user", "public"]);
        assert_eq!(list_elements("\"my, \"\"odd\"\" schema\", x"), ["my, \"odd\" schema", "x"]);
        assert_eq!(list_elements("\"\""), [""]);
    }
}
