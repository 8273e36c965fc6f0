//! The secret's JSON: kept whole (every field survives a rotation) and read through typed views.
//! `Debug` shows field names only, never values.

use std::fmt;

use serde_json::{Map, Value};

use crate::engine::{ConnectionSpec, EngineKind, TlsMode};
use crate::error::RotationError;

/// Fields that make a secret a database secret, whatever its `engine` says.
const DATABASE_FIELDS: [&str; 4] = ["host", "hosts", "port", "dbname"];

#[derive(Clone, PartialEq)]
pub struct SecretDoc {
    fields: Map<String, Value>,
}

impl fmt::Debug for SecretDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretDoc").field("fields", &self.fields.keys().collect::<Vec<_>>()).finish()
    }
}

/// Where a secret came from, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub secret_id: &'a str,
    pub stage: &'a str,
}

impl Origin<'_> {
    fn malformed(&self, reason: impl Into<String>) -> RotationError {
        RotationError::MalformedSecret {
            secret_id: self.secret_id.to_owned(),
            stage: self.stage.to_owned(),
            reason: reason.into(),
        }
    }
}

impl SecretDoc {
    pub fn parse(text: &str, origin: Origin<'_>) -> Result<SecretDoc, RotationError> {
        // The parser's message may quote the text; it is not passed on.
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => Ok(SecretDoc { fields }),
            Ok(_) => Err(origin.malformed("the secret string is JSON but not an object")),
            Err(_) => Err(origin.malformed("the secret string is not JSON")),
        }
    }

    pub fn to_json(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    pub fn set_field(&mut self, name: &str, value: Value) {
        self.fields.insert(name.to_owned(), value);
    }

    pub fn set_text(&mut self, name: &str, value: &str) {
        self.fields.insert(name.to_owned(), Value::String(value.to_owned()));
    }

    /// The secret's engine. Generic (no database to change) only when `engine` says
    /// `"generic"`, or when the secret has none of the database fields: a database secret that
    /// lost its `engine` must not be rotated as generic, for the database would never learn the
    /// new password.
    pub fn engine(&self, origin: Origin<'_>) -> Result<EngineKind, RotationError> {
        match self.fields.get("engine") {
            None | Some(Value::Null) => {
                let database_fields: Vec<&str> = DATABASE_FIELDS
                    .iter()
                    .copied()
                    .filter(|name| self.fields.get(*name).is_some_and(|v| !v.is_null()))
                    .collect();
                if database_fields.is_empty() {
                    Ok(EngineKind::Generic)
                } else {
                    Err(origin.malformed(format!(
                        "it has database fields ({}) but no \"engine\"; set \"engine\" to postgres, mysql, mariadb (or their aurora- names), or to \"generic\" if no database uses it",
                        database_fields.join(", ")
                    )))
                }
            }
            Some(Value::String(name)) if name.is_empty() => Err(origin.malformed("\"engine\" is empty")),
            Some(Value::String(name)) => EngineKind::from_name(name).ok_or_else(|| {
                origin.malformed(format!("unknown engine {:?}", name.chars().take(40).collect::<String>()))
            }),
            Some(_) => Err(origin.malformed("\"engine\" is not a string")),
        }
    }

    pub fn master_arn(&self) -> Option<&str> {
        self.text("masterarn").filter(|s| !s.is_empty())
    }

    /// The connection a database secret describes; every field the engine needs must be there.
    pub fn connection(&self, origin: Origin<'_>) -> Result<ConnectionSpec, RotationError> {
        let required = |name: &str| {
            self.text(name)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| origin.malformed(format!("missing \"{name}\"")))
        };
        let kind = self.engine(origin)?;
        let port = self.own_port(kind, origin)?;
        let tls = match self.fields.get("ssl") {
            None | Some(Value::Null) => TlsMode::Prefer,
            Some(Value::Bool(true)) => TlsMode::Require,
            Some(Value::Bool(false)) => TlsMode::Disable,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => TlsMode::Require,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => TlsMode::Disable,
            Some(_) => return Err(origin.malformed("\"ssl\" is not true or false")),
        };
        // A secret listing several servers: the first one stands for them where no database is
        // touched (createSecret's checks); every step that logs in works on each server through
        // `on_server`.
        let first = self.servers(origin)?.and_then(|servers| servers.into_iter().next());
        let (host, port, dbname) = match first {
            Some(server) => {
                let dbname = server.dbname.or_else(|| self.text("dbname").filter(|s| !s.is_empty()).map(str::to_owned));
                (server.host, server.port, dbname)
            }
            None => (required("host")?, port, self.text("dbname").filter(|s| !s.is_empty()).map(str::to_owned)),
        };
        // An RDS endpoint always offers TLS: plain text there can only be an attacker's answer.
        let tls = if is_rds_host(&host) { TlsMode::Require } else { tls };
        Ok(ConnectionSpec {
            kind,
            host,
            port,
            username: required("username")?,
            password: required("password")?,
            dbname,
            tls,
        })
    }

    /// The secret's own `port`, or the engine's default.
    fn own_port(&self, kind: EngineKind, origin: Origin<'_>) -> Result<u16, RotationError> {
        port_of(self.fields.get("port"))
            .map(|port| port.unwrap_or_else(|| kind.default_port()))
            .map_err(|why| origin.malformed(format!("\"port\" {why}")))
    }

    /// The servers of a secret that lists them in `hosts` (`[{"host", "port"?, "dbname"?}]`)
    /// and has no `host`, in order, each with its port resolved (the entry's, else the secret's
    /// own `port`, else the engine's default); `None` for a secret with a `host` (where `hosts`
    /// is an ordinary field, as it was before servers could be listed). A list that cannot be
    /// read whole, is empty, or names a server twice is refused: rotating some of a fleet's
    /// servers and not others would lock its readers out of the rest.
    pub fn servers(&self, origin: Origin<'_>) -> Result<Option<Vec<Server>>, RotationError> {
        if self.text("host").is_some_and(|h| !h.is_empty()) {
            return Ok(None);
        }
        let list = match self.fields.get(HOSTS) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(origin.malformed("\"hosts\" is not a list")),
        };
        if list.is_empty() || list.len() > MAX_SERVERS {
            return Err(origin.malformed(format!("\"hosts\" must list 1 to {MAX_SERVERS} servers")));
        }
        let default_port = self.own_port(self.engine(origin)?, origin)?;
        let mut servers: Vec<Server> = Vec::with_capacity(list.len());
        for (index, entry) in list.iter().enumerate() {
            let server = Server::from_entry(entry, default_port)
                .map_err(|why| origin.malformed(format!("\"hosts\"[{index}] {why}")))?;
            if servers.iter().any(|known| known.same_server(&server)) {
                return Err(origin.malformed(format!("\"hosts\" lists {} twice", server.describe())));
            }
            servers.push(server);
        }
        Ok(Some(servers))
    }

    /// This secret as it applies to one of its servers: `host`, `port` (and `dbname`, where the
    /// entry has one) from the entry, `hosts` gone. A secret with one `host` is returned as it
    /// is (the checks that follow compare its host with the server's); one whose `hosts` do
    /// not list the server is refused.
    pub fn on_server(&self, server: &Server, origin: Origin<'_>) -> Result<SecretDoc, RotationError> {
        let Some(servers) = self.servers(origin)? else { return Ok(self.clone()) };
        let Some(entry) = servers.into_iter().find(|s| s.same_server(server)) else {
            return Err(origin.malformed(format!("its \"hosts\" do not list {}", server.describe())));
        };
        let mut doc = self.clone();
        doc.fields.remove(HOSTS);
        doc.set_text("host", &entry.host);
        doc.set_field("port", Value::from(entry.port));
        if let Some(dbname) = &entry.dbname {
            doc.set_text("dbname", dbname);
        }
        Ok(doc)
    }
}

const HOSTS: &str = "hosts";

/// The most servers one secret may list: each costs logins at every step, and the step has
/// the function's timeout for all of them.
pub const MAX_SERVERS: usize = 64;

/// One server of a secret's `hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    /// The entry's port, else the secret's own `port`, else the engine's default.
    pub port: u16,
    pub dbname: Option<String>,
}

impl Server {
    fn from_entry(entry: &Value, default_port: u16) -> Result<Server, String> {
        let Value::Object(entry) = entry else { return Err("is not an object".into()) };
        let host = match entry.get("host") {
            Some(Value::String(host)) if !host.is_empty() => host.clone(),
            _ => return Err("has no \"host\"".into()),
        };
        let port =
            port_of(entry.get("port")).map_err(|why| format!("has a \"port\" that {why}"))?.unwrap_or(default_port);
        let dbname = match entry.get("dbname") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err("has a \"dbname\" that is not a name".into()),
        };
        Ok(Server { host, port, dbname })
    }

    /// The same server: host names compare without case (and without a final dot), ports once
    /// resolved.
    pub fn same_server(&self, other: &Server) -> bool {
        same_host(&self.host, &other.host) && self.port == other.port
    }

    /// `host:port`, for messages.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Whether two host names name the same host: without case, and without a final dot.
pub fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// A port as AWS's secrets hold one: a number or a string of one; `None` when absent.
fn port_of(value: Option<&Value>) -> Result<Option<u16>, &'static str> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()).map(Some).ok_or("is out of range"),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| "is not a number"),
        Some(_) => Err("is not a number"),
    }
}

/// Whether `host` is an Amazon RDS endpoint (`*.rds.amazonaws.com`, `*.rds.amazonaws.com.cn`).
pub fn is_rds_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host.ends_with(".rds.amazonaws.com") || host.ends_with(".rds.amazonaws.com.cn")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: Origin<'static> = Origin { secret_id: "s", stage: "AWSCURRENT" };

    #[test]
    fn rds_endpoints_require_tls_whatever_the_secret_says() {
        for host in ["db.abc123.eu-west-1.rds.amazonaws.com", "DB.x.cn-north-1.rds.amazonaws.com.cn."] {
            let text = format!(r#"{{"engine":"postgres","host":"{host}","username":"u","password":"p","ssl":false}}"#);
            let spec = SecretDoc::parse(&text, ORIGIN).unwrap().connection(ORIGIN).unwrap();
            assert_eq!(spec.tls, TlsMode::Require, "{host}");
        }
        assert!(!is_rds_host("rds.amazonaws.com.attacker.example") && !is_rds_host("db.internal"));
    }

    #[test]
    fn debug_never_shows_values() {
        let doc = SecretDoc::parse(r#"{"username":"app","password":"hunter2-secret"}"#, ORIGIN).unwrap();
        let shown = format!("{doc:?}");
        assert!(!shown.contains("hunter2") && shown.contains("password"));
    }

    #[test]
    fn refusals_say_what_is_wrong_without_quoting_the_secret() {
        let not_json = SecretDoc::parse("password=hunter2-secret", ORIGIN).unwrap_err().to_string();
        assert!(not_json.contains("not JSON") && !not_json.contains("hunter2"), "{not_json}");
        let doc = SecretDoc::parse(r#"{"engine":"postgres","host":"db","password":"p"}"#, ORIGIN).unwrap();
        assert!(doc.connection(ORIGIN).unwrap_err().to_string().contains("\"username\""));
        let doc = SecretDoc::parse(r#"{"engine":"oracle"}"#, ORIGIN).unwrap();
        assert!(doc.engine(ORIGIN).unwrap_err().to_string().contains("unknown engine"));
    }

    #[test]
    fn engines_ports_and_tls_follow_the_aws_fields() {
        let doc = SecretDoc::parse(
            r#"{"engine":"aurora-postgresql","host":"h","username":"u","password":"p","port":"6432","ssl":false}"#,
            ORIGIN,
        )
        .unwrap();
        let spec = doc.connection(ORIGIN).unwrap();
        assert_eq!((spec.kind, spec.port, spec.tls), (EngineKind::Postgres, 6432, TlsMode::Disable));
        let doc = SecretDoc::parse(r#"{"engine":"mariadb","host":"h","username":"u","password":"p"}"#, ORIGIN).unwrap();
        let spec = doc.connection(ORIGIN).unwrap();
        assert_eq!((spec.kind, spec.port, spec.tls), (EngineKind::MySql, 3306, TlsMode::Prefer));
        assert_eq!(
            SecretDoc::parse(r#"{"api_key":"k"}"#, ORIGIN).unwrap().engine(ORIGIN).unwrap(),
            EngineKind::Generic
        );
        let explicit =
            SecretDoc::parse(r#"{"engine":"generic","host":"api.example.com","api_key":"k"}"#, ORIGIN).unwrap();
        assert_eq!(explicit.engine(ORIGIN).unwrap(), EngineKind::Generic);
    }

    #[test]
    fn a_database_secret_without_engine_is_refused_not_rotated_as_generic() {
        for text in [
            r#"{"host":"db","username":"u","password":"p"}"#,
            r#"{"port":5432,"username":"u","password":"p"}"#,
            r#"{"dbname":"app","username":"u","password":"p"}"#,
            r#"{"engine":"","host":"db","username":"u","password":"p"}"#,
        ] {
            let doc = SecretDoc::parse(text, ORIGIN).unwrap();
            let err = doc.engine(ORIGIN).expect_err(text).to_string();
            assert!(err.contains("engine"), "{text}: {err}");
        }
    }

    #[test]
    fn hosts_are_read_whole_or_refused() {
        let servers = |fields: &str| {
            let text = format!(r#"{{"engine":"postgres",{fields}}}"#);
            SecretDoc::parse(&text, ORIGIN).unwrap().servers(ORIGIN)
        };
        let listed = servers(
            r#""port":6000,"hosts":[{"host":"a","port":5433},{"host":"b","port":"6432","dbname":"x"},{"host":"c"}]"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!((listed[1].port, listed[1].dbname.as_deref()), (6432, Some("x")));
        assert_eq!(listed[2].port, 6000, "the secret's own port");
        assert_eq!(servers(r#""hosts":[{"host":"c"}]"#).unwrap().unwrap()[0].port, 5432, "the engine's default");
        // With a `host`, `hosts` is an ordinary field, as it was before servers could be listed.
        assert_eq!(servers(r#""host":"a","hosts":["r1","r2"]"#).unwrap(), None);
        assert_eq!(servers(r#""host":"a""#).unwrap(), None);
        for (fields, says) in [
            (r#""hosts":[]"#, "1 to 64"),
            (r#""hosts":{"host":"a"}"#, "not a list"),
            (r#""hosts":[{"port":1}]"#, "[0] has no \"host\""),
            (r#""hosts":[{"host":"a"},"b"]"#, "[1] is not an object"),
            (r#""hosts":[{"host":"a","port":70000}]"#, "out of range"),
            (r#""hosts":[{"host":"A","port":1},{"host":"a.","port":1}]"#, "twice"),
            // No port and the default port are one server.
            (r#""hosts":[{"host":"db1"},{"host":"db1","port":5432}]"#, "twice"),
        ] {
            let error = servers(fields).expect_err(fields).to_string();
            assert!(error.contains(says), "{fields}: {error}");
        }
        let many: Vec<String> = (0..65).map(|i| format!(r#"{{"host":"h{i}"}}"#)).collect();
        assert!(servers(&format!(r#""hosts":[{}]"#, many.join(","))).is_err());
    }

    #[test]
    fn a_secret_listing_servers_but_no_engine_is_refused_not_rotated_as_generic() {
        let doc = SecretDoc::parse(r#"{"username":"u","password":"p","hosts":[{"host":"db1"}]}"#, ORIGIN).unwrap();
        assert!(doc.engine(ORIGIN).unwrap_err().to_string().contains("hosts"));
    }

    #[test]
    fn a_secret_is_seen_on_each_of_its_servers() {
        let doc = SecretDoc::parse(
            r#"{"engine":"postgres","username":"u","password":"p","port":5432,"dbname":"app","hosts":[{"host":"a"},{"host":"b","port":6432,"dbname":"other"}]}"#,
            ORIGIN,
        )
        .unwrap();
        let listed = doc.servers(ORIGIN).unwrap().unwrap();
        let on_a = doc.on_server(&listed[0], ORIGIN).unwrap().connection(ORIGIN).unwrap();
        assert_eq!((on_a.host.as_str(), on_a.port, on_a.dbname.as_deref()), ("a", 5432, Some("app")));
        let on_b = doc.on_server(&listed[1], ORIGIN).unwrap();
        assert!(on_b.field("hosts").is_none(), "one server's view lists no others");
        let on_b = on_b.connection(ORIGIN).unwrap();
        assert_eq!((on_b.host.as_str(), on_b.port, on_b.dbname.as_deref()), ("b", 6432, Some("other")));
        // The whole secret stands for its first server where no database is touched.
        assert_eq!(doc.connection(ORIGIN).unwrap().host, "a");
        let elsewhere = Server { host: "c".into(), port: 5432, dbname: None };
        assert!(doc.on_server(&elsewhere, ORIGIN).unwrap_err().to_string().contains("do not list c"));
        // A secret with one host is seen as it is; the checks after compare its host.
        let single =
            SecretDoc::parse(r#"{"engine":"postgres","host":"z","username":"u","password":"p"}"#, ORIGIN).unwrap();
        assert_eq!(single.on_server(&listed[0], ORIGIN).unwrap(), single);
    }
}
