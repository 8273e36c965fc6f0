//! Master secrets that Amazon RDS manages for a DB instance or cluster (`rds!db-…`,
//! `rds!cluster-…`). They hold only `username` and `password`: the database they belong to is
//! named by the tag RDS puts on the secret, and its endpoint and engine come from the RDS API.
//! The endpoint found there is the only place their credentials go.

use aws_sdk_rds::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client as SecretsClient;

use crate::engine::{ConnectionSpec, EngineKind, TlsMode};
use crate::error::RotationError;
use crate::secret::{Origin, SecretDoc};
use crate::versions::sm_error;

const INSTANCE_TAG: &str = "aws:rds:primaryDBInstanceArn";
const CLUSTER_TAG: &str = "aws:rds:primaryDBClusterArn";

/// The RDS resource an RDS-managed master secret belongs to, from its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdsOwner {
    Instance(String),
    Cluster(String),
}

impl RdsOwner {
    /// The owner the secret's tags name; RDS tags a managed secret with exactly one of the two.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<RdsOwner> {
        tags.into_iter().find_map(|(key, value)| {
            if key.eq_ignore_ascii_case(INSTANCE_TAG) {
                Some(RdsOwner::Instance(value.to_owned()))
            } else if key.eq_ignore_ascii_case(CLUSTER_TAG) {
                Some(RdsOwner::Cluster(value.to_owned()))
            } else {
                None
            }
        })
    }

    fn arn(&self) -> &str {
        match self {
            RdsOwner::Instance(arn) | RdsOwner::Cluster(arn) => arn,
        }
    }
}

/// Where the RDS API says the owner's writer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsEndpoint {
    pub engine: String,
    pub host: String,
    pub port: u16,
    pub dbname: Option<String>,
}

/// A master secret that names no server of its own: RDS-managed, or incomplete.
pub fn names_no_server(doc: &SecretDoc) -> bool {
    doc.text("host").is_none_or(str::is_empty)
}

/// The RDS resource a master secret belongs to, from `DescribeSecret`'s tags; `None` when the
/// secret carries neither RDS tag.
pub async fn owner_of(sm: &SecretsClient, master_arn: &str) -> Result<Option<RdsOwner>, RotationError> {
    let described = sm
        .describe_secret()
        .secret_id(master_arn)
        .send()
        .await
        .map_err(|e| sm_error("DescribeSecret", master_arn, &e))?;
    Ok(RdsOwner::from_tags(described.tags().iter().filter_map(|t| Some((t.key()?, t.value()?)))))
}

fn rds_error<E: std::error::Error + 'static>(operation: &'static str, owner: &RdsOwner, err: &E) -> RotationError {
    RotationError::Rds { operation, resource: owner.arn().to_owned(), message: DisplayErrorContext(err).to_string() }
}

fn not_found(master_arn: &str, owner: &RdsOwner, what: &str) -> RotationError {
    RotationError::MalformedSecret {
        secret_id: master_arn.to_owned(),
        stage: crate::versions::CURRENT.to_owned(),
        reason: format!("its RDS tag names {}, {what}", owner.arn()),
    }
}

/// The writer endpoint of the instance or cluster, from `DescribeDBInstances` or
/// `DescribeDBClusters` (both take an ARN as the identifier).
pub async fn endpoint_of(
    rds: &aws_sdk_rds::Client,
    master_arn: &str,
    owner: &RdsOwner,
) -> Result<RdsEndpoint, RotationError> {
    let port = |port: Option<i32>| port.and_then(|p| u16::try_from(p).ok());
    match owner {
        RdsOwner::Instance(arn) => {
            let output = rds
                .describe_db_instances()
                .db_instance_identifier(arn)
                .send()
                .await
                .map_err(|e| rds_error("DescribeDBInstances", owner, &e))?;
            let instance =
                output.db_instances().first().ok_or_else(|| not_found(master_arn, owner, "which RDS does not know"))?;
            let endpoint = instance.endpoint();
            match (instance.engine(), endpoint.and_then(|e| e.address()), port(endpoint.and_then(|e| e.port()))) {
                (Some(engine), Some(host), Some(port)) => Ok(RdsEndpoint {
                    engine: engine.to_owned(),
                    host: host.to_owned(),
                    port,
                    dbname: instance.db_name().map(str::to_owned),
                }),
                _ => Err(not_found(master_arn, owner, "which has no endpoint yet")),
            }
        }
        RdsOwner::Cluster(arn) => {
            let output = rds
                .describe_db_clusters()
                .db_cluster_identifier(arn)
                .send()
                .await
                .map_err(|e| rds_error("DescribeDBClusters", owner, &e))?;
            let cluster =
                output.db_clusters().first().ok_or_else(|| not_found(master_arn, owner, "which RDS does not know"))?;
            match (cluster.engine(), cluster.endpoint(), port(cluster.port())) {
                (Some(engine), Some(host), Some(port)) => Ok(RdsEndpoint {
                    engine: engine.to_owned(),
                    host: host.to_owned(),
                    port,
                    dbname: cluster.database_name().map(str::to_owned),
                }),
                _ => Err(not_found(master_arn, owner, "which has no endpoint yet")),
            }
        }
    }
}

/// The master's connection: its credentials, at the endpoint RDS gave. TLS is required: every
/// RDS engine offers it, and these credentials never travel in plain text.
pub fn master_connection(
    doc: &SecretDoc,
    origin: Origin<'_>,
    endpoint: &RdsEndpoint,
) -> Result<ConnectionSpec, RotationError> {
    let kind = match EngineKind::from_name(&endpoint.engine) {
        Some(kind @ (EngineKind::Postgres | EngineKind::MySql)) => kind,
        _ => {
            return Err(RotationError::Refused {
                secret_id: origin.secret_id.to_owned(),
                reason: format!(
                    "the master's RDS database runs {:?}, which this function does not rotate",
                    endpoint.engine
                ),
            })
        }
    };
    let credential = |name: &str| {
        doc.text(name).filter(|s| !s.is_empty()).map(str::to_owned).ok_or_else(|| RotationError::MalformedSecret {
            secret_id: origin.secret_id.to_owned(),
            stage: origin.stage.to_owned(),
            reason: format!("missing \"{name}\""),
        })
    };
    // Roles are the server's, not a database's: any database reaches them. PostgreSQL needs one
    // to connect to; RDS creates `postgres` on every instance.
    let dbname = endpoint.dbname.clone().or_else(|| (kind == EngineKind::Postgres).then(|| "postgres".to_owned()));
    Ok(ConnectionSpec {
        kind,
        host: endpoint.host.clone(),
        port: endpoint.port,
        username: credential("username")?,
        password: credential("password")?,
        dbname,
        tls: TlsMode::Require,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: Origin<'static> = Origin { secret_id: "rds!db-1", stage: "AWSCURRENT" };

    #[test]
    fn the_owner_comes_from_either_rds_tag() {
        let instance = "arn:aws:rds:us-east-1:123456789012:db:app";
        assert_eq!(
            RdsOwner::from_tags([("Team", "x"), (INSTANCE_TAG, instance)]),
            Some(RdsOwner::Instance(instance.into()))
        );
        let cluster = "arn:aws:rds:us-east-1:123456789012:cluster:app";
        assert_eq!(
            RdsOwner::from_tags([("aws:rds:primarydbclusterarn", cluster)]),
            Some(RdsOwner::Cluster(cluster.into()))
        );
        assert_eq!(RdsOwner::from_tags([("Team", "x")]), None);
    }

    #[test]
    fn the_master_goes_to_the_rds_endpoint_over_tls_only() {
        let doc = SecretDoc::parse(r#"{"username":"admin","password":"p"}"#, ORIGIN).unwrap();
        assert!(names_no_server(&doc));
        let endpoint = RdsEndpoint {
            engine: "aurora-postgresql".into(),
            host: "app.cluster-x.rds.amazonaws.com".into(),
            port: 5432,
            dbname: None,
        };
        let spec = master_connection(&doc, ORIGIN, &endpoint).unwrap();
        assert_eq!(
            (spec.kind, spec.host.as_str(), spec.port, spec.tls),
            (EngineKind::Postgres, endpoint.host.as_str(), 5432, TlsMode::Require)
        );
        assert_eq!(spec.dbname.as_deref(), Some("postgres"));
        let oracle = RdsEndpoint { engine: "oracle-ee".into(), ..endpoint };
        assert!(master_connection(&doc, ORIGIN, &oracle).unwrap_err().to_string().contains("oracle-ee"));
    }
}
