//! Readers of the master's database: a user secret whose `host` is a read replica of the
//! master's RDS instance, an instance of the master's Aurora cluster, or that cluster's reader
//! endpoint. Passwords are set on the writer (the master's server) and reach readers by
//! replication. The relation is read from the RDS API and matched by ARN; a hostname is only
//! ever compared whole with an endpoint RDS lists, never by a prefix.

use aws_sdk_rds::error::DisplayErrorContext;
use aws_sdk_rds::types::{DbCluster, DbInstance};

use crate::secret::same_host;

/// RDS lists at most 100 per page; more pages than this and the account is not one to scan.
const MAX_PAGES: usize = 50;

/// A server, as a host and port.
#[derive(Debug, Clone, Copy)]
pub struct Address<'a> {
    pub host: &'a str,
    pub port: u16,
}

impl Address<'_> {
    fn is(&self, host: Option<&str>, port: Option<i32>) -> bool {
        host.is_some_and(|h| same_host(h, self.host)) && port.and_then(|p| u16::try_from(p).ok()) == Some(self.port)
    }
}

/// Whether `user` is a reader of the database whose writer is `master`, by the RDS API. An
/// error says why RDS could not tell.
pub async fn is_reader_of(rds: &aws_sdk_rds::Client, user: Address<'_>, master: Address<'_>) -> Result<bool, String> {
    let instances = all_instances(rds).await?;
    let clusters = all_clusters(rds).await?;
    Ok(reader_relation(&instances, &clusters, user, master))
}

/// The rule itself, on what RDS listed.
pub fn reader_relation(
    instances: &[DbInstance],
    clusters: &[DbCluster],
    user: Address<'_>,
    master: Address<'_>,
) -> bool {
    let master_instance = instances.iter().find(|i| at_address(i, master));
    let cluster_by_id = |id: Option<&str>| clusters.iter().find(|c| id.is_some() && c.db_cluster_identifier() == id);
    // The master's cluster: the one whose writer endpoint it names, or its instance's.
    let master_cluster = clusters
        .iter()
        .find(|c| master.is(c.endpoint(), c.port()))
        .or_else(|| master_instance.and_then(|i| cluster_by_id(i.db_cluster_identifier())));
    let same_cluster = |c: &DbCluster| {
        master_cluster.is_some_and(|m| m.db_cluster_arn().is_some() && m.db_cluster_arn() == c.db_cluster_arn())
    };
    // The cluster's reader endpoint.
    if clusters.iter().any(|c| user.is(c.reader_endpoint(), c.port()) && same_cluster(c)) {
        return true;
    }
    let Some(user_instance) = instances.iter().find(|i| at_address(i, user)) else {
        return false;
    };
    if master_instance.is_some_and(|m| std::ptr::eq(m, user_instance)) {
        return false;
    }
    // An instance of the master's cluster (the writer instance is the master's own server).
    if let Some(cluster) = cluster_by_id(user_instance.db_cluster_identifier()) {
        let is_writer = cluster.db_cluster_members().iter().any(|m| {
            m.is_cluster_writer() == Some(true) && m.db_instance_identifier() == user_instance.db_instance_identifier()
        });
        return same_cluster(cluster) && !is_writer;
    }
    // A read replica of the master's instance: its source, by ARN (or, in the same region, by
    // the identifier the ARN ends in).
    let (Some(source), Some(master)) = (user_instance.read_replica_source_db_instance_identifier(), master_instance)
    else {
        return false;
    };
    master.db_instance_arn() == Some(source)
        || (!source.starts_with("arn:") && master.db_instance_identifier() == Some(source))
}

fn at_address(instance: &DbInstance, address: Address<'_>) -> bool {
    let endpoint = instance.endpoint();
    address.is(endpoint.and_then(|e| e.address()), endpoint.and_then(|e| e.port()))
}

async fn all_instances(rds: &aws_sdk_rds::Client) -> Result<Vec<DbInstance>, String> {
    every_page("DescribeDBInstances", |marker| async move {
        let page = rds
            .describe_db_instances()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok((page.db_instances().to_vec(), page.marker().map(str::to_owned)))
    })
    .await
}

async fn all_clusters(rds: &aws_sdk_rds::Client) -> Result<Vec<DbCluster>, String> {
    every_page("DescribeDBClusters", |marker| async move {
        let page = rds
            .describe_db_clusters()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok((page.db_clusters().to_vec(), page.marker().map(str::to_owned)))
    })
    .await
}

/// Every item of a listing RDS pages with a marker, up to `MAX_PAGES` pages; `fetch` answers one
/// page's items and the next marker.
async fn every_page<T, F, Fut>(operation: &str, fetch: F) -> Result<Vec<T>, String>
where
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), String>>,
{
    let mut all = Vec::new();
    let mut marker = None;
    for _ in 0..MAX_PAGES {
        let (items, next) = fetch(marker).await.map_err(|e| format!("{operation}: {e}"))?;
        all.extend(items);
        marker = next;
        if marker.is_none() {
            return Ok(all);
        }
    }
    Err(format!("{operation}: more than {MAX_PAGES} pages"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::types::{DbClusterMember, Endpoint};

    fn instance(id: &str, host: &str, port: i32) -> aws_sdk_rds::types::builders::DbInstanceBuilder {
        DbInstance::builder()
            .db_instance_identifier(id)
            .db_instance_arn(format!("arn:aws:rds:eu-west-1:123456789012:db:{id}"))
            .endpoint(Endpoint::builder().address(host).port(port).build())
    }

    const W: Address<'static> = Address { host: "writer.example", port: 5432 };

    #[test]
    fn replicas_and_cluster_readers_of_the_masters_database_only() {
        let primary = instance("primary", "writer.example", 5432).build();
        let replica =
            instance("replica", "replica.example", 5432).read_replica_source_db_instance_identifier("primary");
        let by_arn = instance("far", "far.example", 5432)
            .read_replica_source_db_instance_identifier("arn:aws:rds:eu-west-1:123456789012:db:primary");
        let other = instance("other", "other.example", 5432).read_replica_source_db_instance_identifier("someone-else");
        let instances = [primary, replica.build(), by_arn.build(), other.build()];
        let at = |host| Address { host, port: 5432 };
        assert!(reader_relation(&instances, &[], at("REPLICA.example."), W));
        assert!(reader_relation(&instances, &[], at("far.example"), W));
        assert!(!reader_relation(&instances, &[], at("other.example"), W), "a replica of another instance");
        assert!(!reader_relation(&instances, &[], at("writer.example"), W), "the master itself");
        assert!(!reader_relation(&instances, &[], at("unknown.example"), W), "a host RDS does not list");
        assert!(!reader_relation(&instances, &[], Address { host: "replica.example", port: 6543 }, W), "another port");
        assert!(!reader_relation(&instances, &[], at("replica.example.attacker"), W));
    }

    #[test]
    fn instances_and_the_reader_endpoint_of_the_masters_cluster() {
        let member = |id: &str, writer: bool| {
            DbClusterMember::builder().db_instance_identifier(id).is_cluster_writer(writer).build()
        };
        let cluster = |id: &str, writer: &str, reader: &str| {
            DbCluster::builder()
                .db_cluster_identifier(id)
                .db_cluster_arn(format!("arn:aws:rds:eu-west-1:123456789012:cluster:{id}"))
                .endpoint(writer)
                .reader_endpoint(reader)
                .port(5432)
                .db_cluster_members(member(&format!("{id}-1"), true))
                .db_cluster_members(member(&format!("{id}-2"), false))
                .build()
        };
        let clusters = [cluster("app", "writer.example", "ro.example"), cluster("other", "w2.example", "ro2.example")];
        let instances = [
            instance("app-1", "app-1.example", 5432).db_cluster_identifier("app").build(),
            instance("app-2", "app-2.example", 5432).db_cluster_identifier("app").build(),
            instance("other-2", "other-2.example", 5432).db_cluster_identifier("other").build(),
        ];
        let at = |host| Address { host, port: 5432 };
        assert!(reader_relation(&instances, &clusters, at("ro.example"), W), "the reader endpoint");
        assert!(reader_relation(&instances, &clusters, at("app-2.example"), W), "a reader instance");
        assert!(!reader_relation(&instances, &clusters, at("app-1.example"), W), "the writer instance is no reader");
        assert!(!reader_relation(&instances, &clusters, at("ro2.example"), W), "another cluster's reader endpoint");
        assert!(!reader_relation(&instances, &clusters, at("other-2.example"), W), "another cluster's instance");
        // The master named by its writer instance's endpoint: the same cluster.
        let by_instance = Address { host: "app-1.example", port: 5432 };
        assert!(reader_relation(&instances, &clusters, at("app-2.example"), by_instance));
    }

    #[test]
    fn what_rds_leaves_out_never_makes_a_reader() {
        let at = |host| Address { host, port: 5432 };
        // An instance without an endpoint (still being created) matches no host.
        let no_endpoint = DbInstance::builder()
            .db_instance_identifier("new")
            .read_replica_source_db_instance_identifier("primary")
            .build();
        let primary = instance("primary", "writer.example", 5432).build();
        assert!(!reader_relation(&[primary.clone(), no_endpoint], &[], at("new.example"), W));
        // Clusters without ARNs are never the same cluster.
        let cluster = |id: &str, writer: &str, reader: &str| {
            DbCluster::builder().db_cluster_identifier(id).endpoint(writer).reader_endpoint(reader).port(5432).build()
        };
        let clusters = [cluster("a", "writer.example", "ro.example")];
        assert!(!reader_relation(&[], &clusters, at("ro.example"), W));
        // A member without a writer flag is taken as a reader: harmless, for the master still
        // sets the password on its own server.
        let member = aws_sdk_rds::types::DbClusterMember::builder().db_instance_identifier("a-2").build();
        let with_arn = DbCluster::builder()
            .db_cluster_identifier("a")
            .db_cluster_arn("arn:aws:rds:eu-west-1:123456789012:cluster:a")
            .endpoint("writer.example")
            .port(5432)
            .db_cluster_members(member)
            .build();
        let a2 = instance("a-2", "a-2.example", 5432).db_cluster_identifier("a").build();
        assert!(reader_relation(&[a2], &[with_arn], at("a-2.example"), W), "not flagged writer: a reader");
    }
}
