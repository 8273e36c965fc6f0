//! A user secret whose host is a read replica of the master's database: a PostgreSQL primary
//! and its streaming standby (`pg_basebackup`), the RDS API answered with the test's own
//! endpoints. The password is set on the primary only and logs in on the replica once replayed.

use harness_fixtures::secret_rotation::{
    assert_not_logged, full_rotation, rds_failing, rds_instance, rds_listing, scene, settings_trusting_all, step, Scene,
};
use harness_services::postgres::Postgres;
use harness_services::rotation::begin_rotation;
use harness_services::secrets::{create_secret, current, pg_user};
use secret_rotation::Settings;
use serde_json::json;

const OLD: &str = "reader-Passw0rd-old";
const MASTER_PASSWORD: &str = "master-Passw0rd-reader";

/// A primary with the user `reporter` and the superuser `rotator`, its standby, and settings
/// trusting both.
struct Replicated {
    primary: Postgres,
    standby: Postgres,
    settings: Settings,
}

async fn replicated() -> Replicated {
    let primary = Postgres::start();
    pg_user(&primary, "reporter", OLD).await;
    let create_master = format!("CREATE ROLE rotator LOGIN SUPERUSER PASSWORD '{MASTER_PASSWORD}'");
    primary.superuser().await.batch_execute(&create_master).await.expect("master");
    let standby = Postgres::standby_of(&primary);
    let settings = settings_trusting_all(&[&primary.ca, &standby.ca]);
    Replicated { primary, standby, settings }
}

/// The master secret (the primary) and the user secret (the standby), named after `name`;
/// answers the user secret's ARN.
async fn secrets(scene: &Scene, db: &Replicated, name: &str) -> String {
    let master = json!({
        "engine": "postgres", "host": "127.0.0.1", "port": db.primary.port, "username": "rotator",
        "password": MASTER_PASSWORD, "dbname": "postgres"
    });
    let master = create_secret(&scene.sm, &format!("{name}-master"), &master).await;
    let user = json!({
        "engine": "postgres", "host": "127.0.0.1", "port": db.standby.port, "username": "reporter",
        "password": OLD, "dbname": "postgres", "masterarn": master
    });
    create_secret(&scene.sm, name, &user).await
}

/// The stages the version `token` holds now.
async fn stages_of(scene: &Scene, id: &str, token: &str) -> Vec<String> {
    let described = scene.sm.describe_secret().secret_id(id).send().await.expect("describe");
    described.version_ids_to_stages().and_then(|s| s.get(token)).cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_replica_of_the_masters_instance_is_rotated_through_the_primary() {
    let mut scene = scene().await;
    let db = replicated().await;
    assert!(db.standby.can_log_in("reporter", OLD).await, "the standby replays the primary's roles");
    scene.clients.rds = rds_listing(vec![
        rds_instance("app-db", db.primary.port, None),
        rds_instance("app-db-replica", db.standby.port, Some("app-db")),
    ]);
    let id = secrets(&scene, &db, "pg-reader").await;

    full_rotation(&scene, &db.settings, &id, "d1111111-1111-4111-8111-111111111111").await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(
        (now["username"].as_str(), now["port"].as_u64()),
        (Some("reporter_clone"), Some(u64::from(db.standby.port)))
    );
    let password = now["password"].as_str().expect("password");
    assert!(db.standby.can_log_in("reporter_clone", password).await, "the new credentials log in on the replica");
    assert!(db.primary.can_log_in("reporter_clone", password).await, "they were set on the primary");
    assert!(db.standby.can_log_in("reporter", OLD).await, "the previous user still logs in");
    assert_not_logged(&[OLD, password, MASTER_PASSWORD]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_of_another_instance_is_refused_and_nothing_is_made() {
    let mut scene = scene().await;
    let db = replicated().await;
    // RDS says the user's server replicates another instance than the master's.
    scene.clients.rds = rds_listing(vec![
        rds_instance("app-db", db.primary.port, None),
        rds_instance("app-db-replica", db.standby.port, Some("some-other-db")),
    ]);
    let id = secrets(&scene, &db, "pg-not-reader").await;
    let token = "d2222222-2222-4222-8222-222222222222";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &db.settings, "createSecret", &id, token).await.expect("createSecret");
    let error = step(&scene, &db.settings, "setSecret", &id, token).await.expect_err("not a reader of the master's");
    assert_eq!(error.error_type(), "RotationRefused", "{error}");
    assert!(error.to_string().contains("master's own database"), "{error}");
    let superuser = db.primary.superuser().await;
    let clone = superuser.query_opt("SELECT 1 FROM pg_roles WHERE rolname = 'reporter_clone'", &[]).await;
    assert!(clone.expect("query").is_none(), "no clone was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rds_api_that_fails_is_retried_not_taken_for_a_refusal() {
    let mut scene = scene().await;
    let db = replicated().await;
    scene.clients.rds = rds_failing();
    let id = secrets(&scene, &db, "pg-reader-rds-down").await;
    let token = "d3333333-3333-4333-8333-333333333333";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &db.settings, "createSecret", &id, token).await.expect("createSecret");
    let error = step(&scene, &db.settings, "setSecret", &id, token).await.expect_err("RDS cannot answer");
    assert_eq!(error.error_type(), "RdsFailed", "{error}");
    assert_eq!(
        stages_of(&scene, &id, token).await,
        ["AWSPENDING"],
        "a failing RDS API is transient: the retry resumes"
    );
}
