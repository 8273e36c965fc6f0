//! What kind of MySQL-family server this is (roles, default roles and account locking differ),
//! and which accounts on it are too privileged for the master's credentials to touch.

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::mysql::{hosts_of, query_error, quoting};
use super::DbError;

/// Which server: where roles, default roles and partial revokes live differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    /// Roles in `mysql.roles_mapping`; the default role is a `SET DEFAULT ROLE` line of `SHOW GRANTS`.
    MariaDb,
    /// Roles in `mysql.role_edges`, default roles in `mysql.default_roles` (not in `SHOW GRANTS`),
    /// partial revokes as `REVOKE` lines, dynamic privileges in `mysql.global_grants`.
    MySql8,
    /// No roles.
    MySql57,
}

/// The server's version as numbers (`10.11.6-MariaDB-…`: 10, 11, 6; Aurora's
/// `5.7.mysql_aurora.2.11.2`: 5, 7, and an unreadable patch counts as new).
fn version_numbers(version: &str) -> (u32, u32, u32) {
    let mut parts = version.split(['.', '-']).map(|part| part.parse::<u32>().ok());
    let major = parts.next().flatten().unwrap_or(0);
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(u32::MAX);
    (major, minor, patch)
}

/// The server's flavor, from `VERSION()`.
pub(super) async fn flavor(conn: &mut Conn) -> Result<(Flavor, String), DbError> {
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(query_error)?;
    let version = version.unwrap_or_default();
    let flavor = if version.contains("MariaDB") {
        Flavor::MariaDb
    } else if version.starts_with("5.") {
        Flavor::MySql57
    } else {
        Flavor::MySql8
    };
    Ok((flavor, version))
}

/// The flavor, refusing servers without `ACCOUNT LOCK` (MariaDB before 10.4.2, MySQL before
/// 5.7.6), on which a clone could not be kept from logging in while it is made.
pub(super) async fn flavor_that_locks_accounts(conn: &mut Conn) -> Result<Flavor, DbError> {
    let (flavor, version) = flavor(conn).await?;
    let minimum = if flavor == Flavor::MariaDb { (10, 4, 2) } else { (5, 7, 6) };
    if version_numbers(&version) < minimum {
        return Err(DbError::Query(format!(
            "alternating users need a server with ACCOUNT LOCK (MariaDB 10.4.2 or MySQL 5.7.6 and later); this one is {version}"
        )));
    }
    Ok(flavor)
}

/// The roles granted to one account, as (name, host) (a MariaDB role's host is empty).
pub(super) async fn roles_of(
    conn: &mut Conn,
    flavor: Flavor,
    user: &str,
    host: &str,
) -> Result<Vec<(String, String)>, DbError> {
    match flavor {
        Flavor::MariaDb => {
            let roles: Vec<String> = conn
                .exec("SELECT Role FROM mysql.roles_mapping WHERE User = ? AND Host = ?", (user, host))
                .await
                .map_err(query_error)?;
            Ok(roles.into_iter().map(|role| (role, String::new())).collect())
        }
        Flavor::MySql8 => conn
            .exec("SELECT FROM_USER, FROM_HOST FROM mysql.role_edges WHERE TO_USER = ? AND TO_HOST = ?", (user, host))
            .await
            .map_err(query_error),
        Flavor::MySql57 => Ok(Vec::new()),
    }
}

/// MySQL 8's dynamic privileges that administer the server or other accounts.
const ADMIN_PRIVILEGES: [&str; 14] = [
    "SYSTEM_USER",
    "ROLE_ADMIN",
    "CONNECTION_ADMIN",
    "SET_USER_ID",
    "SET_ANY_DEFINER",
    "SYSTEM_VARIABLES_ADMIN",
    "ENCRYPTION_KEY_ADMIN",
    "AUDIT_ADMIN",
    "BINLOG_ADMIN",
    "GROUP_REPLICATION_ADMIN",
    "REPLICATION_SLAVE_ADMIN",
    "PERSIST_RO_VARIABLES_ADMIN",
    "APPLICATION_PASSWORD_ADMIN",
    "CLONE_ADMIN",
];

/// MariaDB 10.5's privileges split out of SUPER, which have no `mysql.user` column: read from the
/// account's global grant line.
const MARIADB_ADMIN_PRIVILEGES: [&str; 7] = [
    "SET USER",
    "CONNECTION ADMIN",
    "READ_ONLY ADMIN",
    "REPLICATION MASTER ADMIN",
    "REPLICATION SLAVE ADMIN",
    "BINLOG ADMIN",
    "FEDERATED ADMIN",
];

async fn mariadb_split_privilege(conn: &mut Conn, user: &str, host: &str) -> Result<bool, DbError> {
    let no_backslash_escapes = quoting(conn).await?;
    let quote = |text: &str| mysql_async::Value::from(text).as_sql(no_backslash_escapes);
    // A role's account has no host: SHOW GRANTS takes the role's name alone.
    let account = if host.is_empty() { quote(user) } else { format!("{}@{}", quote(user), quote(host)) };
    let lines: Vec<String> = match conn.query(format!("SHOW GRANTS FOR {account}")).await {
        Ok(lines) => lines,
        // 1141: no such grant (an account removed meanwhile).
        Err(mysql_async::Error::Server(ref e)) if e.code == 1141 => return Ok(false),
        Err(e) => return Err(query_error(e)),
    };
    Ok(lines.iter().any(|line| {
        let global = line.find(" ON *.* ").map(|at| &line[..at]).unwrap_or("");
        MARIADB_ADMIN_PRIVILEGES.iter().any(|privilege| global.contains(privilege))
    }))
}

/// Whether one account (a user's or a role's) itself holds a privilege that administers the
/// server or other accounts.
async fn account_is_privileged(conn: &mut Conn, flavor: Flavor, user: &str, host: &str) -> Result<bool, DbError> {
    // Global privileges that administer the server, or write the grant tables (INSERT, UPDATE
    // or DELETE on every database includes `mysql`), or read and write the server's files.
    let static_privilege: Option<i64> = conn
        .exec_first(
            "SELECT 1 FROM mysql.user WHERE User = ? AND Host = ? AND 'Y' IN \
             (Super_priv, Grant_priv, Create_user_priv, Shutdown_priv, File_priv, Insert_priv, Update_priv, Delete_priv) LIMIT 1",
            (user, host),
        )
        .await
        .map_err(query_error)?;
    if static_privilege.is_some() {
        return Ok(true);
    }
    // Writing the grant tables through a grant on the `mysql` database (or a pattern matching it),
    // or on one of its tables.
    let on_grant_tables: Option<i64> = conn
        .exec_first(
            "SELECT 1 FROM mysql.db WHERE User = ? AND Host = ? AND 'mysql' LIKE Db AND 'Y' IN (Insert_priv, Update_priv, Delete_priv, Grant_priv) LIMIT 1",
            (user, host),
        )
        .await
        .map_err(query_error)?;
    if on_grant_tables.is_some() {
        return Ok(true);
    }
    let on_a_grant_table: Option<i64> = conn
        .exec_first(
            "SELECT 1 FROM mysql.tables_priv WHERE User = ? AND Host = ? AND Db = 'mysql' AND \
             (FIND_IN_SET('Insert', Table_priv) OR FIND_IN_SET('Update', Table_priv) OR FIND_IN_SET('Delete', Table_priv) OR FIND_IN_SET('Grant', Table_priv)) LIMIT 1",
            (user, host),
        )
        .await
        .map_err(query_error)?;
    if on_a_grant_table.is_some() {
        return Ok(true);
    }
    if flavor == Flavor::MariaDb {
        return mariadb_split_privilege(conn, user, host).await;
    }
    if flavor != Flavor::MySql8 {
        return Ok(false);
    }
    let placeholders = vec!["?"; ADMIN_PRIVILEGES.len()].join(", ");
    let mut params: Vec<mysql_async::Value> = vec![user.into(), host.into()];
    params.extend(ADMIN_PRIVILEGES.iter().map(|privilege| mysql_async::Value::from(*privilege)));
    let dynamic: Option<i64> = conn
        .exec_first(
            format!(
                "SELECT 1 FROM mysql.global_grants WHERE USER = ? AND HOST = ? AND PRIV IN ({placeholders}) LIMIT 1"
            ),
            params,
        )
        .await
        .map_err(query_error)?;
    Ok(dynamic.is_some())
}

/// The first of `users` that is privileged on some host, itself or through a role it holds,
/// directly or not: the master's credentials must never change such a user.
pub(super) async fn privileged_user(conn: &mut Conn, users: &[&str]) -> Result<Option<String>, DbError> {
    let (flavor, _) = flavor(conn).await?;
    for user in users {
        let mut to_visit: Vec<(String, String)> =
            hosts_of(conn, user).await?.into_iter().map(|host| (user.to_string(), host)).collect();
        let mut seen = BTreeSet::new();
        // Role graphs are small; the cap only stops a forged graph from running on (and then
        // the step fails: an unread role may be the privileged one).
        while let Some(account) = to_visit.pop() {
            if !seen.insert(account.clone()) {
                continue;
            }
            if seen.len() > 256 {
                return Err(DbError::Query(format!(
                    "user {user:?} holds more than 256 roles, directly or not; the function cannot tell whether it is privileged"
                )));
            }
            let (name, host) = &account;
            if account_is_privileged(conn, flavor, name, host).await? {
                return Ok(Some(user.to_string()));
            }
            to_visit.extend(roles_of(conn, flavor, name, host).await?);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::version_numbers;

    #[test]
    fn versions_are_read_as_numbers() {
        assert_eq!(version_numbers("10.11.6-MariaDB-0+deb12u1"), (10, 11, 6));
        assert!(version_numbers("10.3.39-MariaDB") < (10, 4, 2));
        assert!(version_numbers("5.7.44-log") >= (5, 7, 6));
        assert!(version_numbers("5.6.51") < (5, 7, 6));
        assert!(version_numbers("5.7.mysql_aurora.2.11.2") >= (5, 7, 6));
        assert!(version_numbers("8.0.36") >= (5, 7, 6));
    }
}
