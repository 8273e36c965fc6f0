//! Alternating users hold the same: the clone gets exactly what the original has (grants both
//! ways, roles and default roles, every host, the certificate requirement; PostgreSQL's per-role
//! and per-database settings), is opened with its password only once all of it is stated, and is
//! never promoted while it differs (`PrivilegeMismatch`). A step that runs out of the invocation's
//! time answers `DeadlineExceeded`, and its re-run completes.

use std::time::Duration;

use harness_fixtures::secret_rotation::{
    assert_not_logged, bounded, full_rotation, scene, settings_trusting, step, step_until, Scene,
};
use harness_services::mariadb::MariaDb;
use harness_services::postgres::Postgres;
use harness_services::rotation::{begin_rotation, end_rotation};
use harness_services::secrets::{
    create_secret, current, current_version, mariadb_master_secret, mariadb_user_secret, pg_master_secret,
    pg_user_secret,
};
use mysql_async::prelude::Queryable;
use serde_json::json;

const MASTER_PASSWORD: &str = "rotator-Maria-Passw0rd";

/// A master that may create users and grant on `app` only, as a DBA might set one up, and its
/// secret (TLS, as master secrets are by default).
async fn limited_master(scene: &Scene, db: &MariaDb) -> String {
    let mut admin = db.admin().await;
    for statement in [
        format!("CREATE USER 'rotator'@'%' IDENTIFIED BY '{MASTER_PASSWORD}'"),
        "GRANT CREATE USER ON *.* TO 'rotator'@'%'".into(),
        "GRANT SELECT, UPDATE ON mysql.* TO 'rotator'@'%'".into(),
        "GRANT ALL PRIVILEGES ON app.* TO 'rotator'@'%' WITH GRANT OPTION".into(),
    ] {
        admin.query_drop(statement).await.expect("setting up the master");
    }
    create_secret(
        &scene.sm,
        "maria-limited-master",
        &json!({"engine": "mariadb", "host": "127.0.0.1", "port": db.port, "username": "rotator", "password": MASTER_PASSWORD}),
    )
    .await
}

async fn run(db: &MariaDb, statements: &[&str]) {
    let mut admin = db.admin().await;
    for statement in statements {
        admin.query_drop(*statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let _ = admin.disconnect().await;
}

async fn grants_of(db: &MariaDb, account: &str) -> Vec<String> {
    db.admin().await.query(format!("SHOW GRANTS FOR {account}")).await.expect("grants")
}

// --- A grant the master cannot give ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_the_master_cannot_fully_grant_is_never_promoted_and_the_rerun_completes_it() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    run(&db, &["CREATE DATABASE reports", "CREATE TABLE reports.t (x int)", "INSERT INTO reports.t VALUES (7)"]).await;
    let master = limited_master(&scene, &db).await;
    let id = mariadb_user_secret(
        &scene.sm,
        &db,
        "maria-parity",
        "shop",
        "shop-Maria-Passw0rd",
        json!({"masterarn": master}),
    )
    .await;
    // The original reads a database the master holds no grant option on.
    run(&db, &["GRANT SELECT ON reports.* TO 'shop'@'%'"]).await;
    let before = current_version(&scene.sm, &id).await;
    let token = "c1111111-1111-4111-8111-111111111111";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");

    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("the master cannot grant reports");
    assert_eq!(error.error_type(), "DatabaseQueryFailed", "{error}");
    // The clone exists, locked: its pending password does not log in, so nothing after can pass it.
    let error = step(&scene, &settings, "testSecret", &id, token).await.expect_err("a half-made clone");
    assert_eq!(error.error_type(), "AuthFailed", "{error}");
    let error = step(&scene, &settings, "finishSecret", &id, token).await.expect_err("not promoted");
    assert_eq!(error.error_type(), "PendingNotReady", "{error}");
    assert_eq!(current_version(&scene.sm, &id).await, before, "AWSCURRENT did not move");
    assert_eq!(current(&scene.sm, &id).await["username"], "shop");

    // Once the master may grant it, the re-run completes the clone.
    run(&db, &["GRANT SELECT ON reports.* TO 'rotator'@'%' WITH GRANT OPTION"]).await;
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    end_rotation(&scene.sm, &id, token).await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(now["username"], "shop_clone");
    let password = now["password"].as_str().expect("password").to_owned();
    let mut as_clone = db.connect("shop_clone", &password).await.expect("the clone logs in");
    let seen: Option<i64> = as_clone.query_first("SELECT x FROM reports.t").await.expect("the clone reads reports");
    assert_eq!(seen, Some(7));
    let _ = as_clone.disconnect().await;

    // Later the original gains a grant the master cannot give. When the clone is next made
    // pending, setSecret fails again, and the clone keeps everything it held: it is given what
    // it lacks before anything is taken away.
    full_rotation(&scene, &settings, &id, "c1111111-1111-4111-8111-111111111112").await;
    run(&db, &["CREATE DATABASE audit", "GRANT SELECT ON audit.* TO 'shop'@'%'"]).await;
    let token = "c1111111-1111-4111-8111-111111111113";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("the master cannot grant audit");
    assert_eq!(error.error_type(), "DatabaseQueryFailed", "{error}");
    let grants = grants_of(&db, "'shop_clone'@'%'").await.join("\n");
    assert!(grants.contains("ON `app`.*") && grants.contains("ON `reports`.*"), "the clone kept its grants: {grants}");
    assert_eq!(current(&scene.sm, &id).await["username"], "shop", "AWSCURRENT did not move");
    assert_not_logged(&["shop-Maria-Passw0rd", &password, MASTER_PASSWORD]);
}

// --- A clone changed after setSecret ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_clone_that_differs_from_the_original_fails_test_and_finish_with_privilege_mismatch() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    let master = limited_master(&scene, &db).await;
    let id = mariadb_user_secret(
        &scene.sm,
        &db,
        "maria-mismatch",
        "shop",
        "shop-Maria-Passw0rd",
        json!({"masterarn": master}),
    )
    .await;
    let before = current_version(&scene.sm, &id).await;
    let token = "c2222222-2222-4222-8222-222222222222";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    step(&scene, &settings, "setSecret", &id, token).await.expect("set");
    // Someone gives the pending clone more than the original has.
    run(&db, &["GRANT DELETE ON app.* TO 'shop_clone'@'%'"]).await;
    for name in ["testSecret", "finishSecret"] {
        let error = step(&scene, &settings, name, &id, token).await.expect_err("the clone differs");
        assert_eq!(error.error_type(), "PrivilegeMismatch", "{name}: {error}");
        assert!(error.to_string().contains("DELETE"), "{name} names the privilege: {error}");
    }
    assert_eq!(current_version(&scene.sm, &id).await, before, "AWSCURRENT did not move");
    // The re-run of setSecret states the grants again, both ways.
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    end_rotation(&scene.sm, &id, token).await;
    let grants = grants_of(&db, "'shop_clone'@'%'").await;
    assert!(!grants.iter().any(|g| g.contains("DELETE")), "the extra grant was taken back: {grants:?}");
    let pending = current(&scene.sm, &id).await["password"].as_str().expect("password").to_owned();
    assert_not_logged(&["shop-Maria-Passw0rd", &pending]);
}

// --- What SHOW GRANTS does not say ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_clone_gets_default_roles_every_host_and_the_certificate_requirement() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    let master = mariadb_master_secret(&scene.sm, &db, "maria-master-roles").await;
    let id =
        mariadb_user_secret(&scene.sm, &db, "maria-roles", "shop", "shop-Maria-Passw0rd", json!({"masterarn": master}))
            .await;
    run(
        &db,
        &[
            "CREATE DATABASE reports",
            "CREATE TABLE reports.t (x int)",
            "CREATE ROLE app_reader",
            "GRANT SELECT ON reports.* TO app_reader",
            "GRANT app_reader TO 'shop'@'%'",
            "SET DEFAULT ROLE app_reader FOR 'shop'@'%'",
            // A second account of the original, from the application's subnet, held to a certificate.
            "CREATE USER 'shop'@'10.%' IDENTIFIED BY 'shop-Maria-Passw0rd' REQUIRE SUBJECT '/CN=shop' AND ISSUER '/CN=ops-suite test CA'",
            "GRANT SELECT ON app.* TO 'shop'@'10.%'",
        ],
    )
    .await;
    full_rotation(&scene, &settings, &id, "c3333333-3333-4333-8333-333333333331").await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(now["username"], "shop_clone");
    let mut as_clone =
        db.connect("shop_clone", now["password"].as_str().expect("password")).await.expect("clone login");
    let role: Option<String> = as_clone.query_first("SELECT CURRENT_ROLE()").await.expect("role");
    assert_eq!(role.as_deref(), Some("app_reader"), "the clone's sessions start in the original's default role");
    as_clone.query_drop("SELECT x FROM reports.t").await.expect("the clone reads through the role");
    let _ = as_clone.disconnect().await;
    let mut admin = db.admin().await;
    let certificate: Option<(String, String)> = admin
        .query_first("SELECT CONVERT(x509_subject USING utf8mb4), CONVERT(x509_issuer USING utf8mb4) FROM mysql.user WHERE User = 'shop_clone' AND Host = '10.%'")
        .await
        .expect("the clone's account on 10.%");
    assert_eq!(certificate, Some(("/CN=shop".into(), "/CN=ops-suite test CA".into())));

    // The DBA adds a host and takes the role away; both reach the clone when it is next made pending.
    run(
        &db,
        &[
            "CREATE USER 'shop'@'192.168.%' IDENTIFIED BY 'x-Maria-Passw0rd'",
            "GRANT SELECT ON app.* TO 'shop'@'192.168.%'",
            "REVOKE app_reader FROM 'shop'@'%'",
            "SET DEFAULT ROLE NONE FOR 'shop'@'%'",
        ],
    )
    .await;
    full_rotation(&scene, &settings, &id, "c3333333-3333-4333-8333-333333333332").await;
    full_rotation(&scene, &settings, &id, "c3333333-3333-4333-8333-333333333333").await;
    assert_eq!(current(&scene.sm, &id).await["username"], "shop_clone");
    let hosts: Vec<String> =
        admin.query("SELECT Host FROM mysql.user WHERE User = 'shop_clone' ORDER BY Host").await.expect("hosts");
    assert_eq!(hosts, ["%", "10.%", "192.168.%"]);
    let grants = grants_of(&db, "'shop_clone'@'%'").await;
    assert!(!grants.iter().any(|g| g.contains("app_reader")), "the revoked role left the clone: {grants:?}");
    let _ = admin.disconnect().await;
}

// --- PostgreSQL: settings, and a clone that holds more ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_clone_carries_the_originals_settings_and_a_clone_holding_more_is_not_promoted() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let master = pg_master_secret(&scene.sm, &pg, "master-Passw0rd-settings").await;
    let id =
        pg_user_secret(&scene.sm, &pg, "pg-settings", "app", "settings-Passw0rd", json!({"masterarn": master})).await;
    let superuser = pg.superuser().await;
    // A value that would be SQL if it were ever written into a statement.
    let hostile = "x'; DROP ROLE rotator; --";
    superuser
        .batch_execute(
            "CREATE SCHEMA app_schema AUTHORIZATION app; \
             ALTER ROLE app SET search_path = app_schema, pg_catalog, public; \
             ALTER ROLE app IN DATABASE postgres SET statement_timeout = '7s'; \
             ALTER ROLE app SET lock_timeout = 7000; \
             ALTER ROLE app CREATEDB CONNECTION LIMIT 40; \
             CREATE ROLE app_owner NOLOGIN; GRANT app_owner TO app; GRANT CREATE ON SCHEMA public TO app_owner; \
             ALTER ROLE app SET role = app_owner;",
        )
        .await
        .expect("the original's settings");
    // The original's own schema, first on its search_path, holds functions named like the ones
    // the master's statements use: were the original's settings ever applied to the master's
    // session, these would run with the master's rights.
    for args in ["text, text", "text, text, text", "text, text, text, text", "text, text, text, text, text"] {
        superuser
            .batch_execute(&format!(
                "CREATE FUNCTION app_schema.format({args}) RETURNS text LANGUAGE sql AS \
                 $$ SELECT 'CREATE TABLE public.pwned ()' $$; ALTER FUNCTION app_schema.format({args}) OWNER TO app"
            ))
            .await
            .expect("a lure");
    }
    let set_tenant = superuser
        .query_one("SELECT format('ALTER ROLE app SET myapp.tenant = %L', $1::text)", &[&hostile])
        .await
        .expect("quoting");
    superuser.batch_execute(set_tenant.get::<_, &str>(0)).await.expect("a custom setting");

    full_rotation(&scene, &settings, &id, "c4444444-4444-4444-8444-444444444441").await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(now["username"], "app_clone");
    let as_clone = pg.connect("app_clone", now["password"].as_str().expect("password")).await.expect("clone login");
    let show = |row: tokio_postgres::Row| row.get::<_, String>(0);
    assert_eq!(
        show(as_clone.query_one("SHOW search_path", &[]).await.expect("search_path")),
        "app_schema, pg_catalog, public"
    );
    assert_eq!(show(as_clone.query_one("SHOW lock_timeout", &[]).await.expect("lock_timeout")), "7s");
    assert_eq!(
        show(as_clone.query_one("SELECT current_user::text", &[]).await.expect("role")),
        "app_owner",
        "the clone's sessions act as the original's do"
    );
    let (createdb, limit): (bool, i32) = {
        let row = superuser
            .query_one("SELECT rolcreatedb, rolconnlimit FROM pg_roles WHERE rolname = 'app_clone'", &[])
            .await
            .expect("attributes");
        (row.get(0), row.get(1))
    };
    assert!(createdb && limit == 40, "the clone has the original's attributes");
    let pwned = superuser.query_opt("SELECT 1 FROM pg_tables WHERE tablename = 'pwned'", &[]).await.expect("tables");
    assert!(pwned.is_none(), "a function of the original's ran in the master's session");
    assert_eq!(show(as_clone.query_one("SHOW statement_timeout", &[]).await.expect("timeout")), "7s");
    assert_eq!(show(as_clone.query_one("SELECT current_setting('myapp.tenant')", &[]).await.expect("tenant")), hostile);
    let rotator = superuser.query_opt("SELECT 1 FROM pg_roles WHERE rolname = 'rotator'", &[]).await.expect("roles");
    assert!(rotator.is_some(), "the hostile value ran as SQL");

    // A setting taken from the original leaves the clone on its next rotation.
    superuser.batch_execute("ALTER ROLE app IN DATABASE postgres RESET statement_timeout").await.expect("reset");
    full_rotation(&scene, &settings, &id, "c4444444-4444-4444-8444-444444444442").await;
    let before = current_version(&scene.sm, &id).await;
    let token = "c4444444-4444-4444-8444-444444444443";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    step(&scene, &settings, "setSecret", &id, token).await.expect("set");
    // Someone grants the pending clone a table of its own.
    superuser.batch_execute("CREATE TABLE side (x int); GRANT SELECT ON side TO app_clone").await.expect("side grant");
    for name in ["testSecret", "finishSecret"] {
        let error = step(&scene, &settings, name, &id, token).await.expect_err("the clone holds more");
        assert_eq!(error.error_type(), "PrivilegeMismatch", "{name}: {error}");
        assert!(error.to_string().contains("of its own"), "{name}: {error}");
    }
    assert_eq!(current_version(&scene.sm, &id).await, before, "AWSCURRENT did not move");
    superuser.batch_execute("REVOKE SELECT ON side FROM app_clone").await.expect("revoke");
    for name in ["testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    end_rotation(&scene.sm, &id, token).await;
    let now = current(&scene.sm, &id).await;
    let as_clone = pg.connect("app_clone", now["password"].as_str().expect("password")).await.expect("clone login");
    assert_eq!(
        show(as_clone.query_one("SHOW statement_timeout", &[]).await.expect("timeout")),
        "0",
        "the reset reached the clone"
    );
}

// --- The invocation's deadline ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_secret_past_the_deadline_answers_deadline_exceeded_and_the_rerun_completes() {
    let scene = scene().await;
    let db = MariaDb::start();
    // Statements may wait 20 s: it is the invocation's deadline that stops this one.
    let settings = bounded(&db.ca, 20);
    let master = limited_master(&scene, &db).await;
    let id = mariadb_user_secret(
        &scene.sm,
        &db,
        "maria-deadline",
        "shop",
        "shop-Maria-Passw0rd",
        json!({"masterarn": master}),
    )
    .await;
    let before = current_version(&scene.sm, &id).await;
    let token = "c5555555-5555-4555-8555-555555555555";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let mut holder = db.admin().await;
    holder.query_drop("FLUSH TABLES WITH READ LOCK").await.expect("global read lock");
    let stop_at = tokio::time::Instant::now() + Duration::from_secs(2);
    let bounded_step = step_until(&scene, &settings, "setSecret", &id, token, stop_at);
    let error = tokio::time::timeout(Duration::from_secs(15), bounded_step)
        .await
        .expect("the step ended at its deadline")
        .expect_err("the lock outlasts the invocation");
    assert_eq!(error.error_type(), "DeadlineExceeded", "{error}");
    holder.query_drop("UNLOCK TABLES").await.expect("unlock");
    // The statement the dropped step had sent runs once the lock is gone: wait for it to end, as
    // Lambda's retry would come later.
    for _ in 0..100 {
        let busy: Option<i64> = holder
            .query_first(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE User = 'rotator' AND Command <> 'Sleep'",
            )
            .await
            .expect("processlist");
        if busy == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = step(&scene, &settings, "finishSecret", &id, token).await.expect_err("not promoted");
    assert_eq!(error.error_type(), "PendingNotReady", "{error}");
    assert_eq!(current_version(&scene.sm, &id).await, before);
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    end_rotation(&scene.sm, &id, token).await;
    let now = current(&scene.sm, &id).await;
    assert!(db.can_log_in("shop_clone", now["password"].as_str().expect("password")).await);
}
