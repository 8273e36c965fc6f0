//! A user secret whose host is a read replica of the master's database: a PostgreSQL primary
//! and its streaming standby (`pg_basebackup`), the RDS API answered with the test's own
//! endpoints. The password is set on the primary only and logs in on the replica once replayed.

use harness_fixtures::secret_rotation::{
    assert_not_logged, full_rotation, rds_failing, rds_instance, rds_listing, scene, settings_trusting_all, step,
};
use harness_services::postgres::Postgres;
use harness_services::rotation::begin_rotation;
use harness_services::secrets::{create_secret, current, pg_user};
use serde_json::json;

const OLD: &str = "reader-Passw0rd-old";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_replica_of_the_masters_instance_is_rotated_through_the_primary() {
    let mut scene = scene().await;
    let primary = Postgres::start();
    pg_user(&primary, "reporter", OLD).await;
    primary
        .superuser()
        .await
        .batch_execute("CREATE ROLE rotator LOGIN SUPERUSER PASSWORD 'master-Passw0rd-reader'")
        .await
        .expect("master");
    let standby = Postgres::standby_of(&primary);
    assert!(standby.can_log_in("reporter", OLD).await, "the standby replays the primary's roles");
    let settings = settings_trusting_all(&[&primary.ca, &standby.ca]);
    scene.clients.rds = rds_listing(vec![
        rds_instance("app-db", primary.port, None),
        rds_instance("app-db-replica", standby.port, Some("app-db")),
    ]);
    let master = create_secret(
        &scene.sm,
        "pg-master-reader",
        &json!({
            "engine": "postgres", "host": "127.0.0.1", "port": primary.port, "username": "rotator",
            "password": "master-Passw0rd-reader", "dbname": "postgres"
        }),
    )
    .await;
    let id = create_secret(
        &scene.sm,
        "pg-reader",
        &json!({
            "engine": "postgres", "host": "127.0.0.1", "port": standby.port, "username": "reporter",
            "password": OLD, "dbname": "postgres", "masterarn": master
        }),
    )
    .await;

    full_rotation(&scene, &settings, &id, "d1111111-1111-4111-8111-111111111111").await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(
        (now["username"].as_str(), now["port"].as_u64()),
        (Some("reporter_clone"), Some(u64::from(standby.port)))
    );
    let password = now["password"].as_str().expect("password");
    assert!(standby.can_log_in("reporter_clone", password).await, "the new credentials log in on the replica");
    assert!(primary.can_log_in("reporter_clone", password).await, "they were set on the primary");
    assert!(standby.can_log_in("reporter", OLD).await, "the previous user still logs in");
    assert_not_logged(&[OLD, password, "master-Passw0rd-reader"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_of_another_instance_is_refused_and_nothing_is_made() {
    let mut scene = scene().await;
    let primary = Postgres::start();
    pg_user(&primary, "reporter", OLD).await;
    primary
        .superuser()
        .await
        .batch_execute("CREATE ROLE rotator LOGIN SUPERUSER PASSWORD 'master-Passw0rd-reader'")
        .await
        .expect("master");
    let standby = Postgres::standby_of(&primary);
    let settings = settings_trusting_all(&[&primary.ca, &standby.ca]);
    // RDS says the user's server replicates another instance than the master's.
    scene.clients.rds = rds_listing(vec![
        rds_instance("app-db", primary.port, None),
        rds_instance("app-db-replica", standby.port, Some("some-other-db")),
    ]);
    let master = create_secret(
        &scene.sm,
        "pg-master-not-reader",
        &json!({
            "engine": "postgres", "host": "127.0.0.1", "port": primary.port, "username": "rotator",
            "password": "master-Passw0rd-reader", "dbname": "postgres"
        }),
    )
    .await;
    let id = create_secret(
        &scene.sm,
        "pg-not-reader",
        &json!({
            "engine": "postgres", "host": "127.0.0.1", "port": standby.port, "username": "reporter",
            "password": OLD, "dbname": "postgres", "masterarn": master
        }),
    )
    .await;
    let token = "d2222222-2222-4222-8222-222222222222";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("createSecret");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("not a reader of the master's");
    assert_eq!(error.error_type(), "RotationRefused", "{error}");
    assert!(error.to_string().contains("master's own database"), "{error}");
    let clone =
        primary.superuser().await.query_opt("SELECT 1 FROM pg_roles WHERE rolname = 'reporter_clone'", &[]).await;
    assert!(clone.expect("query").is_none(), "no clone was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rds_api_that_fails_is_retried_not_taken_for_a_refusal() {
    let mut scene = scene().await;
    let primary = Postgres::start();
    pg_user(&primary, "reporter", OLD).await;
    let standby = Postgres::standby_of(&primary);
    let settings = settings_trusting_all(&[&primary.ca, &standby.ca]);
    scene.clients.rds = rds_failing();
    let master = create_secret(
        &scene.sm,
        "pg-master-rds-down",
        &json!({
            "engine": "postgres", "host": "127.0.0.1", "port": primary.port, "username": "rotator",
            "password": "master-Passw0rd-reader", "dbname": "postgres"
        }),
    )
    .await;
    let id = create_secret(
        &scene.sm,
        "pg-reader-rds-down",
        &json!({
            "engine": "postgres", "host": "127.0.0.1", "port": standby.port, "username": "reporter",
            "password": OLD, "dbname": "postgres", "masterarn": master
        }),
    )
    .await;
    let token = "d3333333-3333-4333-8333-333333333333";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("createSecret");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("RDS cannot answer");
    assert_eq!(error.error_type(), "RdsFailed", "{error}");
    let described = scene.sm.describe_secret().secret_id(&id).send().await.expect("describe");
    let stages = described.version_ids_to_stages().and_then(|s| s.get(token)).cloned().unwrap_or_default();
    assert_eq!(stages, ["AWSPENDING"], "a failing RDS API is transient: the retry resumes");
}
