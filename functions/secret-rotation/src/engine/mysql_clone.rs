//! The MySQL/MariaDB clone of an alternating pair: made to hold exactly what the original holds,
//! on every host the original has an account on, and compared with it before it is promoted.
//!
//! The clone is locked before anything about it changes and unlocked, with its new password, only
//! once every grant has been stated: a run cut short (a grant the master may not give, a lock
//! timeout, the invocation's deadline) leaves a clone that cannot log in, so no later step can
//! pass it, and the re-run starts from the top.

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use super::mysql::{hosts_of, password_statement_error, query_error, quoting};
use super::mysql_grants::{mysql_default_roles_statement, require_clause, top_level_find, GrantEntry, GrantLine, Verb};
use super::mysql_server::{flavor, flavor_that_locks_accounts, Flavor};
use super::{AccountState, DbError};

/// Quotes text as a literal of this session (its SQL mode read once).
struct Quote {
    no_backslash_escapes: bool,
}

impl Quote {
    async fn of(conn: &mut Conn) -> Result<Quote, DbError> {
        Ok(Quote { no_backslash_escapes: quoting(conn).await? })
    }

    fn text(&self, text: &str) -> String {
        Value::from(text).as_sql(self.no_backslash_escapes)
    }

    fn account(&self, user: &str, host: &str) -> String {
        format!("{}@{}", self.text(user), self.text(host))
    }
}

/// The grant lines of one account, the USAGE line left out.
async fn grant_lines(conn: &mut Conn, quote: &Quote, user: &str, host: &str) -> Result<Vec<GrantLine>, DbError> {
    let lines: Vec<String> =
        conn.query(format!("SHOW GRANTS FOR {}", quote.account(user, host))).await.map_err(query_error)?;
    let mut parsed = Vec::new();
    for line in &lines {
        match GrantLine::parse(line, user, host) {
            Ok(Some(grant)) => parsed.push(grant),
            Ok(None) => {}
            Err(reason) => return Err(DbError::Query(format!("{reason}, for user {user:?} on host {host:?}"))),
        }
    }
    Ok(parsed)
}

/// MySQL 8's default roles of one account, each quoted as `'role'@'host'`.
async fn mysql8_default_roles(conn: &mut Conn, quote: &Quote, user: &str, host: &str) -> Result<Vec<String>, DbError> {
    let roles: Vec<(String, String)> = conn
        .exec(
            "SELECT DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST FROM mysql.default_roles WHERE USER = ? AND HOST = ? ORDER BY 1, 2",
            (user, host),
        )
        .await
        .map_err(query_error)?;
    Ok(roles.iter().map(|(role, role_host)| quote.account(role, role_host)).collect())
}

/// The account's `REQUIRE` clause, from its TLS columns.
async fn tls_requirement(conn: &mut Conn, quote: &Quote, user: &str, host: &str) -> Result<String, DbError> {
    type Columns = (Option<String>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Option<Columns> = conn
        .exec_first(
            "SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject FROM mysql.user WHERE User = ? AND Host = ?",
            (user, host),
        )
        .await
        .map_err(query_error)?;
    let (ssl_type, cipher, issuer, subject) = row.unwrap_or((None, None, None, None));
    let text = |bytes: Option<Vec<u8>>| String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned();
    Ok(require_clause(&ssl_type.unwrap_or_default(), &text(cipher), &text(issuer), &text(subject), |s| quote.text(s)))
}

/// Whether the account is locked (`SHOW CREATE USER` says `ACCOUNT LOCK`). The statement's text
/// holds the password hash: only this is read from it.
async fn is_locked(conn: &mut Conn, quote: &Quote, user: &str, host: &str) -> Result<bool, DbError> {
    let shown: Option<String> =
        conn.query_first(format!("SHOW CREATE USER {}", quote.account(user, host))).await.map_err(query_error)?;
    // Outside quotes: a COMMENT or ATTRIBUTE may hold the words.
    Ok(top_level_find(&shown.unwrap_or_default(), " ACCOUNT LOCK").is_some())
}

/// Makes `clone` hold exactly what `original` holds, on each of the original's hosts, and
/// leaves it locked; returns those hosts, for [`unlock_with_password`]. `password` is the new
/// password as a quoted literal (a created account is given it at once, locked, so a server
/// with a password-validation plugin accepts it).
pub(super) async fn converge(
    conn: &mut Conn,
    original: &str,
    clone: &str,
    password: &str,
) -> Result<Vec<String>, DbError> {
    let flavor = flavor_that_locks_accounts(conn).await?;
    let quote = Quote::of(conn).await?;
    let original_hosts = hosts_of(conn, original).await?;
    if original_hosts.is_empty() {
        return Err(DbError::Query(format!("user {original:?} does not exist, so it cannot be cloned")));
    }
    let clone_hosts = hosts_of(conn, clone).await?;
    // Locked before anything else changes; an account on a host the original no longer has goes.
    for host in &clone_hosts {
        let account = quote.account(clone, host);
        let statement = if original_hosts.contains(host) {
            format!("ALTER USER {account} ACCOUNT LOCK")
        } else {
            refuse_if_definer(conn, clone, host).await?;
            format!("DROP USER {account}")
        };
        conn.query_drop(statement).await.map_err(query_error)?;
    }
    for host in &original_hosts {
        let account = quote.account(clone, host);
        if !clone_hosts.contains(host) {
            conn.query_drop(format!("CREATE USER {account} IDENTIFIED BY {password} ACCOUNT LOCK"))
                .await
                .map_err(password_statement_error)?;
        }
        // What the original holds is given first, and only then is what it lacks taken away: a
        // run that stops half-way (a grant the master may not give) leaves the clone holding
        // what it held, plus what was given, never less; objects it is the DEFINER of, and its
        // open sessions, keep working.
        converge_grants(conn, &quote, original, clone, host, &account, flavor).await?;
        if flavor == Flavor::MySql8 {
            let roles = mysql8_default_roles(conn, &quote, original, host).await?;
            if roles != mysql8_default_roles(conn, &quote, clone, host).await? {
                conn.query_drop(mysql_default_roles_statement(&roles, &account)).await.map_err(query_error)?;
            }
        }
        let require = tls_requirement(conn, &quote, original, host).await?;
        conn.query_drop(format!("ALTER USER {account} REQUIRE {require}")).await.map_err(query_error)?;
    }
    Ok(original_hosts)
}

/// The entries (one per privilege, role, partial revoke or default role) one account holds.
async fn entries_of(conn: &mut Conn, quote: &Quote, user: &str, host: &str) -> Result<BTreeSet<GrantEntry>, DbError> {
    Ok(grant_lines(conn, quote, user, host).await?.iter().flat_map(GrantLine::entries).collect())
}

/// Gives the clone's account what the original's holds and then takes what it lacks, one
/// privilege at a time, read again after each pass (taking `SELECT` from a clone that must hold
/// `ALL PRIVILEGES` is put right by the next pass); three passes at most, and testSecret compares.
async fn converge_grants(
    conn: &mut Conn,
    quote: &Quote,
    original: &str,
    clone: &str,
    host: &str,
    account: &str,
    flavor: Flavor,
) -> Result<(), DbError> {
    for _ in 0..3 {
        let target = entries_of(conn, quote, original, host).await?;
        let ours = entries_of(conn, quote, clone, host).await?;
        if target == ours {
            break;
        }
        // Sorted: grants, then the partial revokes that carve them, then the default role.
        for entry in target.difference(&ours) {
            conn.query_drop(entry.add_statement(account)).await.map_err(query_error)?;
        }
        let ours = entries_of(conn, quote, clone, host).await?;
        for entry in ours.difference(&target) {
            let statement = match entry.remove_statement(account, &target, flavor == Flavor::MariaDb) {
                Some(statement) => statement,
                // A default role the original does not have (setting the right one replaced
                // any other already).
                None if !target.iter().any(|e| e.verb == Verb::DefaultRole) => {
                    format!("SET DEFAULT ROLE NONE FOR {account}")
                }
                None => continue,
            };
            conn.query_drop(statement).await.map_err(query_error)?;
        }
    }
    // Still apart after the last pass: the clone stays locked, and the step says how.
    let (target, ours) = (entries_of(conn, quote, original, host).await?, entries_of(conn, quote, clone, host).await?);
    match target.symmetric_difference(&ours).next() {
        None => Ok(()),
        Some(entry) => Err(DbError::Query(format!(
            "the clone's grants on host {host:?} did not come to equal the original's ({:?} differs); the clone stays locked",
            entry.normalized()
        ))),
    }
}

/// Refuses to drop a clone account that objects run as (`DEFINER`): they would stop working.
async fn refuse_if_definer(conn: &mut Conn, clone: &str, host: &str) -> Result<(), DbError> {
    let definer = format!("{clone}@{host}");
    let count: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM (\
               SELECT DEFINER FROM information_schema.ROUTINES UNION ALL \
               SELECT DEFINER FROM information_schema.VIEWS UNION ALL \
               SELECT DEFINER FROM information_schema.TRIGGERS UNION ALL \
               SELECT DEFINER FROM information_schema.EVENTS) AS objects WHERE DEFINER = ?",
            (definer.as_str(),),
        )
        .await
        .map_err(query_error)?;
    match count.unwrap_or(0) {
        0 => Ok(()),
        n => Err(DbError::Query(format!(
            "the clone's account on host {host:?}, which the original no longer has, is the DEFINER of {n} views, routines, triggers or events; it is kept: give them another DEFINER, or give the original that host again"
        ))),
    }
}

/// The last statement of a clone's setSecret: the new password, and the account opened.
pub(super) async fn unlock_with_password(
    conn: &mut Conn,
    clone: &str,
    hosts: &[String],
    password: &str,
) -> Result<(), DbError> {
    let quote = Quote::of(conn).await?;
    for host in hosts {
        let account = quote.account(clone, host);
        conn.query_drop(format!("ALTER USER {account} IDENTIFIED BY {password} ACCOUNT UNLOCK"))
            .await
            .map_err(password_statement_error)?;
    }
    Ok(())
}

/// Whether `user` exists, and whether any of its accounts is locked.
pub(super) async fn account_state(conn: &mut Conn, user: &str) -> Result<AccountState, DbError> {
    let quote = Quote::of(conn).await?;
    let hosts = hosts_of(conn, user).await?;
    if hosts.is_empty() {
        return Ok(AccountState::Absent);
    }
    for host in &hosts {
        if is_locked(conn, &quote, user, host).await? {
            return Ok(AccountState::Locked);
        }
    }
    Ok(AccountState::Present)
}

/// Whether `clone` looks like a clone of `original` that this function began: no role, accounts
/// only on the original's hosts, and on each nothing the original does not hold (a half-made
/// clone holds a part of it, given first).
pub(super) async fn holds_no_more_than(conn: &mut Conn, original: &str, clone: &str) -> Result<bool, DbError> {
    let (flavor, _) = flavor(conn).await?;
    let quote = Quote::of(conn).await?;
    let is_role: Option<i64> = match flavor {
        Flavor::MariaDb => {
            conn.exec_first("SELECT 1 FROM mysql.user WHERE User = ? AND is_role = 'Y' LIMIT 1", (clone,)).await
        }
        Flavor::MySql8 => conn.exec_first("SELECT 1 FROM mysql.role_edges WHERE FROM_USER = ? LIMIT 1", (clone,)).await,
        Flavor::MySql57 => Ok(None),
    }
    .map_err(query_error)?;
    if is_role.is_some() {
        return Ok(false);
    }
    let original_hosts: BTreeSet<String> = hosts_of(conn, original).await?.into_iter().collect();
    for host in hosts_of(conn, clone).await? {
        if !original_hosts.contains(&host) {
            return Ok(false);
        }
        let (theirs, ours) =
            (entries_of(conn, &quote, original, &host).await?, entries_of(conn, &quote, clone, &host).await?);
        if !ours.is_subset(&theirs) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What one account holds, each part normalised so two accounts compare.
async fn holdings(
    conn: &mut Conn,
    flavor: Flavor,
    quote: &Quote,
    user: &str,
    host: &str,
) -> Result<(BTreeSet<String>, String), DbError> {
    let mut lines: BTreeSet<String> =
        grant_lines(conn, quote, user, host).await?.iter().flat_map(GrantLine::normalized).collect();
    if flavor == Flavor::MySql8 {
        for role in mysql8_default_roles(conn, quote, user, host).await? {
            lines.insert(format!("DEFAULT ROLE {role}"));
        }
    }
    Ok((lines, tls_requirement(conn, quote, user, host).await?))
}

/// The first way the clone's privileges differ from the original's, in words that name the
/// privilege, never a password; `None` when they are the same on every host.
pub(super) async fn difference(conn: &mut Conn, original: &str, clone: &str) -> Result<Option<String>, DbError> {
    let (flavor, _) = flavor(conn).await?;
    let quote = Quote::of(conn).await?;
    let original_hosts: BTreeSet<String> = hosts_of(conn, original).await?.into_iter().collect();
    let clone_hosts: BTreeSet<String> = hosts_of(conn, clone).await?.into_iter().collect();
    if let Some(host) = original_hosts.difference(&clone_hosts).next() {
        return Ok(Some(format!("the clone has no account on host {host:?}, which the original has")));
    }
    if let Some(host) = clone_hosts.difference(&original_hosts).next() {
        return Ok(Some(format!("the clone has an account on host {host:?}, which the original has not")));
    }
    for host in &original_hosts {
        let (theirs, their_tls) = holdings(conn, flavor, &quote, original, host).await?;
        let (ours, our_tls) = holdings(conn, flavor, &quote, clone, host).await?;
        if let Some(line) = theirs.difference(&ours).next() {
            return Ok(Some(format!("on host {host:?} the clone lacks {line:?}")));
        }
        if let Some(line) = ours.difference(&theirs).next() {
            return Ok(Some(format!("on host {host:?} the clone holds {line:?}, which the original does not")));
        }
        if their_tls != our_tls {
            return Ok(Some(format!(
                "on host {host:?} the clone's TLS requirement (REQUIRE {our_tls}) differs from the original's (REQUIRE {their_tls})"
            )));
        }
        if is_locked(conn, &quote, clone, host).await? {
            return Ok(Some(format!("the clone's account on host {host:?} is locked: setSecret did not finish")));
        }
    }
    Ok(None)
}
