//! The databases a secret can belong to, and the few things rotation asks of them: can these
//! credentials log in, change my own password, and (as master) create or change another user.

use std::fmt;
use std::time::Duration;

pub mod mysql;
mod mysql_clone;
mod mysql_grants;
mod mysql_server;
pub mod postgres;
mod postgres_clone;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Postgres,
    MySql,
    /// No external system: API keys and tokens consumers read from Secrets Manager.
    Generic,
}

impl EngineKind {
    /// The `engine` values AWS documents for database secrets.
    pub fn from_name(name: &str) -> Option<EngineKind> {
        match name {
            "postgres" | "aurora-postgresql" => Some(EngineKind::Postgres),
            "mysql" | "mariadb" | "aurora-mysql" | "aurora" => Some(EngineKind::MySql),
            "generic" => Some(EngineKind::Generic),
            _ => None,
        }
    }

    /// The name metrics and logs use.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Postgres => "postgres",
            EngineKind::MySql => "mysql",
            EngineKind::Generic => "generic",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            EngineKind::Postgres => 5432,
            EngineKind::MySql => 3306,
            EngineKind::Generic => 0,
        }
    }
}

/// The secret's `ssl` field: absent = try TLS, fall back to plain (with a warning) only when the
/// server does not offer TLS at all; `true` = TLS only; `false` = plain only. Master credentials
/// without `"ssl": false` and every RDS endpoint are `Require` (see `SecretDoc::connection` and
/// the master's connection in `rotation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Prefer,
    Require,
    Disable,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    pub kind: EngineKind,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub dbname: Option<String>,
    pub tls: TlsMode,
}

impl fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSpec")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("dbname", &self.dbname)
            .field("tls", &self.tls)
            .finish()
    }
}

impl ConnectionSpec {
    pub fn with_credentials(&self, username: &str, password: &str) -> ConnectionSpec {
        ConnectionSpec { username: username.to_owned(), password: password.to_owned(), ..self.clone() }
    }

    /// The fields naming a database server (and `dbname`, if asked) in which `self` and `other`
    /// differ.
    pub fn fields_that_differ(&self, other: &ConnectionSpec, with_dbname: bool) -> Vec<&'static str> {
        let mut differ = Vec::new();
        if self.kind != other.kind {
            differ.push("engine");
        }
        if !self.host.eq_ignore_ascii_case(&other.host) {
            differ.push("host");
        }
        if self.port != other.port {
            differ.push("port");
        }
        if with_dbname && self.dbname != other.dbname {
            differ.push("dbname");
        }
        differ
    }
}

/// How connecting and talking to the database went wrong, each kind named so a VPC or security
/// group mistake is obvious from the log line. No variant holds a password.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot reach {host}:{port} ({message}); check the VPC, subnets and security groups")]
    Unreachable { host: String, port: u16, message: String },
    #[error("timed out connecting to {host}:{port} after {seconds}s; check the VPC, subnets and security groups")]
    Timeout { host: String, port: u16, seconds: u64 },
    #[error("{host}:{port} does not offer TLS, which is required here: by the secret's \"ssl\": true, for master credentials unless the master secret says \"ssl\": false, and always for an RDS endpoint")]
    TlsRefused { host: String, port: u16 },
    #[error("TLS with {host}:{port} failed: {message}")]
    Tls { host: String, port: u16, message: String },
    #[error(transparent)]
    TrustedRoots(#[from] shared::tls::TlsError),
    #[error("authentication failed for user {user:?}")]
    AuthFailed { user: String },
    /// A statement waited longer than `DB_STATEMENT_TIMEOUT_SECONDS`, mostly for a lock another
    /// session holds.
    #[error("the database did not finish a statement within DB_STATEMENT_TIMEOUT_SECONDS (a lock held by another session, most likely): {message}")]
    Blocked { message: String },
    #[error(
        "user {user:?} is a superuser or may create roles or users; the master's credentials are not used to change it"
    )]
    PrivilegedUser { user: String },
    /// testSecret or finishSecret found the alternating clone holding other privileges than
    /// the original user; nothing was promoted.
    #[error("user {clone:?} does not hold what {original:?} holds: {difference}; run setSecret again (it states them again), or fix what it cannot copy")]
    PrivilegeMismatch { clone: String, original: String, difference: String },
    #[error("database error: {0}")]
    Query(String),
}

impl DbError {
    /// The `errorType` Lambda reports for a rotation that failed with this.
    pub fn error_type(&self) -> &'static str {
        match self {
            DbError::Unreachable { .. } => "DatabaseUnreachable",
            DbError::Timeout { .. } => "DatabaseTimeout",
            DbError::TlsRefused { .. } => "DatabaseTlsRefused",
            DbError::Tls { .. } => "DatabaseTlsFailed",
            DbError::TrustedRoots(e) => e.error_type(),
            DbError::AuthFailed { .. } => "AuthFailed",
            DbError::PrivilegedUser { .. } => "PrivilegedUserRefused",
            DbError::Blocked { .. } => "DatabaseStatementTimeout",
            DbError::PrivilegeMismatch { .. } => "PrivilegeMismatch",
            DbError::Query(_) => "DatabaseQueryFailed",
        }
    }

    pub fn is_auth_failure(&self) -> bool {
        matches!(self, DbError::AuthFailed { .. })
    }
}

/// The Amazon RDS root CAs (`certs/rds-ca-bundle.pem`), so TLS to RDS and Aurora verifies
/// without a bundle of the operator's.
pub const RDS_ROOTS: shared::tls::ShippedRoots =
    shared::tls::ShippedRoots { name: "Amazon RDS", pem: include_bytes!("../../certs/rds-ca-bundle.pem") };

/// Connection settings shared by every engine.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub connect_timeout: Duration,
    /// Bound on each statement and each lock wait (`DB_STATEMENT_TIMEOUT_SECONDS`), so an `ALTER`
    /// stuck behind another session's lock fails, saying so, well inside the function's timeout.
    pub statement_timeout: Duration,
    /// Roots shipped in the function and trusted beside the system's: the Amazon RDS CAs, which
    /// Lambda's images lack. (Tests put a test CA here to exercise the same path.)
    pub shipped_roots: shared::tls::ShippedRoots,
    /// `DB_CA_BUNDLE`: CAs trusted beside those (the suite's one TLS rule, `shared::tls`).
    pub ca_bundle: Option<shared::tls::ExtraBundle>,
}

impl Default for DbSettings {
    fn default() -> Self {
        DbSettings {
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            shipped_roots: RDS_ROOTS,
            ca_bundle: None,
        }
    }
}

/// Logs in with `spec` and runs a trivial query.
pub async fn check_login(spec: &ConnectionSpec, settings: &DbSettings) -> Result<(), DbError> {
    match spec.kind {
        EngineKind::Postgres => postgres::check_login(spec, settings).await,
        EngineKind::MySql => mysql::check_login(spec, settings).await,
        EngineKind::Generic => Ok(()),
    }
}

/// When the password of the account `spec` logs in as last changed, where the server keeps it
/// and the account may read it (MySQL and MariaDB); `None` otherwise.
pub async fn password_changed_at(
    spec: &ConnectionSpec,
    settings: &DbSettings,
) -> Result<Option<std::time::SystemTime>, DbError> {
    let seconds = match spec.kind {
        EngineKind::MySql => mysql::password_changed_at(spec, settings).await?,
        EngineKind::Postgres | EngineKind::Generic => None,
    };
    // A value no clock could hold (a bad row) is no answer, never a panic.
    Ok(seconds.and_then(|s| std::time::UNIX_EPOCH.checked_add(Duration::from_secs(s))))
}

/// Logged in as `spec`, changes that user's own password.
pub async fn set_own_password(spec: &ConnectionSpec, new_password: &str, settings: &DbSettings) -> Result<(), DbError> {
    match spec.kind {
        EngineKind::Postgres => postgres::set_own_password(spec, new_password, settings).await,
        EngineKind::MySql => mysql::set_own_password(spec, new_password, settings).await,
        EngineKind::Generic => Ok(()),
    }
}

/// Logged in as the master `admin`, gives `user` the password `new_password`, creating `user`
/// first (with the privileges of `template_user`) when it does not exist yet.
pub async fn set_user_password(
    admin: &ConnectionSpec,
    user: &str,
    new_password: &str,
    template_user: &str,
    settings: &DbSettings,
) -> Result<(), DbError> {
    match admin.kind {
        EngineKind::Postgres => postgres::set_user_password(admin, user, new_password, template_user, settings).await,
        EngineKind::MySql => mysql::set_user_password(admin, user, new_password, template_user, settings).await,
        EngineKind::Generic => Ok(()),
    }
}

/// Logged in as the master `admin`: fails with `PrivilegeMismatch` unless `clone` is tied to
/// `original` as a clone this function makes is. On PostgreSQL it must be a member of the
/// original's role, which only an administrator of that role can make it. MySQL/MariaDB keep
/// nothing that ties two accounts together (hosts and grants of either may change while the
/// other is current), so there the recorded pair is trusted: the README says so. Unlike
/// [`check_privilege_parity`] it allows grants that changed since the clone was last made.
pub async fn check_clone_of(
    admin: &ConnectionSpec,
    clone: &str,
    original: &str,
    settings: &DbSettings,
) -> Result<(), DbError> {
    let difference = match admin.kind {
        EngineKind::Postgres => postgres::clone_tie_missing(admin, clone, original, settings).await?,
        EngineKind::MySql | EngineKind::Generic => None,
    };
    mismatch(clone, original, difference)
}

/// `PrivilegeMismatch` for a difference found, naming both users.
fn mismatch(clone: &str, original: &str, difference: Option<String>) -> Result<(), DbError> {
    match difference {
        None => Ok(()),
        Some(difference) => {
            Err(DbError::PrivilegeMismatch { clone: clone.to_owned(), original: original.to_owned(), difference })
        }
    }
}

/// Logged in as the master `admin`: whether an existing `clone` may be one this function began
/// for `original`. On PostgreSQL, the tie of [`check_clone_of`] (membership in the original's
/// role); on MySQL/MariaDB, no role, and no host or privilege beyond the original's.
pub async fn may_be_own_clone(
    admin: &ConnectionSpec,
    clone: &str,
    original: &str,
    settings: &DbSettings,
) -> Result<bool, DbError> {
    match admin.kind {
        EngineKind::Postgres => Ok(postgres::clone_tie_missing(admin, clone, original, settings).await?.is_none()),
        EngineKind::MySql => mysql::holds_no_more_than(admin, clone, original, settings).await,
        EngineKind::Generic => Ok(false),
    }
}

/// Whether a user exists, and whether it is locked (a MySQL/MariaDB clone is, while setSecret
/// makes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Absent,
    Locked,
    Present,
}

/// Logged in as the master `admin`: the state of `user`'s account.
pub async fn account_state(admin: &ConnectionSpec, user: &str, settings: &DbSettings) -> Result<AccountState, DbError> {
    match admin.kind {
        EngineKind::Postgres => postgres::account_state(admin, user, settings).await,
        EngineKind::MySql => mysql::account_state(admin, user, settings).await,
        EngineKind::Generic => Ok(AccountState::Absent),
    }
}

/// Logged in as the master `admin`: fails with `PrivilegeMismatch` when `clone` does not hold
/// exactly what `original` holds (grants, roles, settings, TLS requirement, hosts).
pub async fn check_privilege_parity(
    admin: &ConnectionSpec,
    clone: &str,
    original: &str,
    settings: &DbSettings,
) -> Result<(), DbError> {
    let difference = match admin.kind {
        EngineKind::Postgres => postgres::privilege_difference(admin, clone, original, settings).await?,
        EngineKind::MySql => mysql::privilege_difference(admin, clone, original, settings).await?,
        EngineKind::Generic => None,
    };
    mismatch(clone, original, difference)
}

/// Applies the secret's `ssl` policy, the same for every engine: `connect_with(true)` is a
/// verified TLS connection, `connect_with(false)` a plain one. Without `ssl`, plain text is used
/// only when the server offers no TLS at all, never after a failed certificate check.
pub(crate) async fn connect_per_tls_mode<T, F, Fut>(spec: &ConnectionSpec, connect_with: F) -> Result<T, DbError>
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    match spec.tls {
        TlsMode::Disable => connect_with(false).await,
        TlsMode::Require => connect_with(true).await,
        TlsMode::Prefer => match connect_with(true).await {
            Err(DbError::TlsRefused { .. }) => {
                tracing::warn!(host = %spec.host, port = spec.port, "server offers no TLS; connecting without it (set \"ssl\": true to refuse)");
                connect_with(false).await
            }
            other => other,
        },
    }
}

/// Runs `connect` with the timeout, turning an expiry into a named error.
pub(crate) async fn with_timeout<T>(
    spec: &ConnectionSpec,
    settings: &DbSettings,
    connect: impl std::future::Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    tokio::time::timeout(settings.connect_timeout, connect).await.unwrap_or_else(|_| {
        Err(DbError::Timeout { host: spec.host.clone(), port: spec.port, seconds: settings.connect_timeout.as_secs() })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::RDS_ROOTS;

    /// Regions whose RDS roots the shipped bundle lacks (the pinned package does not carry
    /// them): TLS to RDS there needs `DB_CA_BUNDLE`. The README lists the same.
    const REGIONS_WITHOUT_SHIPPED_ROOTS: [&str; 12] = [
        "ap-east-2",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-west-1",
        "cn-north-1",
        "cn-northwest-1",
        "eusc-de-east-1",
        "il-central-1",
        "mx-central-1",
        "us-gov-east-1",
        "us-gov-west-1",
    ];

    /// The region of each "Amazon RDS <region> Root CA <family>" subject in the shipped bundle,
    /// with the families it has.
    fn regions_and_families() -> Vec<(String, String)> {
        let certs = RDS_ROOTS.certificates().expect("the shipped bundle parses");
        let mut found = Vec::new();
        for cert in certs {
            let text = String::from_utf8_lossy(cert.as_ref()).into_owned();
            let Some(start) = text.find("Amazon RDS ") else { continue };
            let rest = &text[start + "Amazon RDS ".len()..];
            let Some(end) = rest.find(" Root CA ") else { continue };
            // The family is the word after "Root CA" (the DER that follows "G1" is not text).
            let family: String =
                rest[end + " Root CA ".len()..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            found.push((rest[..end].to_owned(), family));
        }
        found
    }

    #[test]
    fn the_shipped_rds_bundle_holds_all_three_roots_of_exactly_the_pinned_regions() {
        let found = regions_and_families();
        let regions: BTreeSet<&str> = found.iter().map(|(region, _)| region.as_str()).collect();
        let pinned = [
            "Beta us-east-1",
            "Preview us-east-2",
            "af-south-1",
            "ap-east-1",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ca-central-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "me-central-1",
            "me-south-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ];
        assert_eq!(
            regions,
            BTreeSet::from(pinned),
            "scripts/update-rds-ca-bundle changed the regions: update this list and the README"
        );
        for region in pinned {
            let families: BTreeSet<&str> =
                found.iter().filter(|(r, _)| r == region).map(|(_, family)| family.as_str()).collect();
            assert_eq!(families, BTreeSet::from(["ECC384", "RSA2048", "RSA4096"]), "{region}");
        }
        for region in REGIONS_WITHOUT_SHIPPED_ROOTS {
            assert!(
                !regions.contains(region),
                "{region} is shipped now: take it off REGIONS_WITHOUT_SHIPPED_ROOTS and the README"
            );
        }
    }

    #[test]
    fn the_readme_names_every_region_without_shipped_roots() {
        let readme = include_str!("../../README.md");
        for region in REGIONS_WITHOUT_SHIPPED_ROOTS {
            assert!(readme.contains(&format!("`{region}`")), "the README's TLS section lacks {region}");
        }
    }

    #[test]
    fn the_shipped_rds_bundle_parses_and_holds_the_g1_roots() {
        let certs = RDS_ROOTS.certificates().expect("the shipped bundle parses, every certificate a usable root");
        assert!(certs.len() >= 80, "{} certificates", certs.len());
        // Subjects read "Amazon RDS <region> Root CA <family>".
        for family in ["Root CA RSA2048 G1", "Root CA RSA4096 G1", "Root CA ECC384 G1"] {
            let count = certs
                .iter()
                .map(|c| String::from_utf8_lossy(c.as_ref()).into_owned())
                .filter(|text| text.contains("Amazon RDS") && text.contains(family))
                .count();
            assert!(count >= 20, "{family}: {count} regional roots");
        }
    }
}
