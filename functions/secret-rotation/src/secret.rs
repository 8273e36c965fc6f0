//! The secret's JSON: kept whole (every field survives a rotation) and read through typed views.
//! `Debug` shows field names only, never values.

use std::fmt;

use serde_json::{Map, Value};

use crate::engine::{ConnectionSpec, EngineKind, TlsMode};
use crate::error::RotationError;

/// Fields that make a secret a database secret, whatever its `engine` says.
const DATABASE_FIELDS: [&str; 3] = ["host", "port", "dbname"];

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
        let port = match self.fields.get("port") {
            None | Some(Value::Null) => kind.default_port(),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| origin.malformed("\"port\" is out of range"))?,
            Some(Value::String(s)) => s.trim().parse().map_err(|_| origin.malformed("\"port\" is not a number"))?,
            Some(_) => return Err(origin.malformed("\"port\" is not a number")),
        };
        let tls = match self.fields.get("ssl") {
            None | Some(Value::Null) => TlsMode::Prefer,
            Some(Value::Bool(true)) => TlsMode::Require,
            Some(Value::Bool(false)) => TlsMode::Disable,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => TlsMode::Require,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => TlsMode::Disable,
            Some(_) => return Err(origin.malformed("\"ssl\" is not true or false")),
        };
        let host = required("host")?;
        // An RDS endpoint always offers TLS: plain text there can only be an attacker's answer.
        let tls = if is_rds_host(&host) { TlsMode::Require } else { tls };
        Ok(ConnectionSpec {
            kind,
            host,
            port,
            username: required("username")?,
            password: required("password")?,
            dbname: self.text("dbname").filter(|s| !s.is_empty()).map(str::to_owned),
            tls,
        })
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
}
