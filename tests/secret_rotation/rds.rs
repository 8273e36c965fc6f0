//! Master secrets that RDS manages: only `username` and `password`, and a tag naming the DB
//! instance or cluster; the function finds the endpoint through the RDS API.

use aws_sdk_secretsmanager::types::Tag;
use harness_fixtures::secret_rotation::{
    assert_not_logged, full_rotation, moto_rds_instance, rds_answering, scene, settings_trusting, step,
};
use harness_services::postgres::Postgres;
use harness_services::rotation::begin_rotation;
use harness_services::secrets::{current, pg_user_secret};
use secret_rotation::RotationError;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rds_managed_master_is_resolved_through_rds_and_its_endpoint_must_be_the_users() {
    use secret_rotation::{endpoint_of, owner_of, RdsOwner};
    let scene = scene().await;
    let (master, rds_host) = moto_rds_instance(&scene.clients, "app-db", 5433).await;
    assert!(master.contains(":secret:rds!db-"), "{master}");

    // The resolution: the tag names the instance, and RDS gives its endpoint and engine.
    let owner = owner_of(&scene.sm, &master).await.expect("describe").expect("an RDS tag");
    assert!(matches!(&owner, RdsOwner::Instance(arn) if arn.ends_with(":db:app-db")), "{owner:?}");
    let endpoint = endpoint_of(&scene.clients.rds, &master, &owner).await.expect("endpoint");
    assert_eq!(
        (endpoint.host.as_str(), endpoint.port, endpoint.engine.as_str()),
        (rds_host.as_str(), 5433, "postgres")
    );

    // The check: a user secret on another server (here a real one, where the user logs in)
    // cannot have the master's credentials sent there.
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let id =
        pg_user_secret(&scene.sm, &pg, "app-on-rds", "app", "user-Passw0rd-rds", json!({"masterarn": master})).await;
    let token = "a9999999-9999-4999-8999-999999999999";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("refused");
    assert!(
        matches!(&error, RotationError::Refused { reason, .. } if reason.contains("host") && reason.contains("port")),
        "{error}"
    );
    // Nothing was made on the user's server.
    let clone =
        pg.superuser().await.query("SELECT 1 FROM pg_roles WHERE rolname = 'app_clone'", &[]).await.expect("query");
    assert!(clone.is_empty(), "the clone was created with a master that does not own the database");

    // A tag naming an instance RDS does not know is a clear error, not a connection anywhere.
    let ghost = RdsOwner::Instance("arn:aws:rds:us-east-1:123456789012:db:gone".into());
    let error = endpoint_of(&scene.clients.rds, &master, &ghost).await.expect_err("unknown instance");
    assert_eq!(error.error_type(), "RdsFailed", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_users_rotate_with_an_rds_managed_master_at_the_endpoint_rds_gives() {
    let mut scene = scene().await;
    let pg = Postgres::start();
    scene.clients.rds = rds_answering("127.0.0.1", pg.port);
    let settings = settings_trusting(&pg.ca);
    let master_password = "rds-Managed-Passw0rd";
    pg.superuser()
        .await
        .batch_execute(&format!("CREATE ROLE rdsadmin LOGIN CREATEROLE PASSWORD '{master_password}'"))
        .await
        .expect("master");
    // As RDS writes it: credentials only, and the tag naming the instance.
    let master = scene
        .sm
        .create_secret()
        .name("rds!db-0a1b2c3d")
        .secret_string(json!({"username": "rdsadmin", "password": master_password}).to_string())
        .tags(
            Tag::builder()
                .key("aws:rds:primaryDBInstanceArn")
                .value("arn:aws:rds:us-east-1:123456789012:db:app-db")
                .build(),
        )
        .send()
        .await
        .expect("master secret")
        .arn()
        .expect("arn")
        .to_owned();
    let id = pg_user_secret(
        &scene.sm,
        &pg,
        "app-rds-master",
        "app",
        "user-Passw0rd-1",
        json!({"masterarn": master, "ssl": true}),
    )
    .await;
    let token = "aa999999-9999-4999-8999-999999999999";
    full_rotation(&scene, &settings, &id, token).await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(now["username"], "app_clone");
    let new = now["password"].as_str().expect("password");
    assert!(pg.can_log_in("app_clone", new).await, "the clone logs in with the new password");
    assert!(pg.can_log_in("app", "user-Passw0rd-1").await, "the original keeps working");
    assert!(pg.can_log_in("rdsadmin", master_password).await, "the master is untouched");
    assert_not_logged(&[master_password, new]);
}
