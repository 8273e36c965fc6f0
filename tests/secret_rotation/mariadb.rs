//! Rotations on a throwaway MariaDB server (the MySQL engine) over verified TLS: single and
//! alternating users (one with a hostile name), a held lock, and clones whose grants converge.

use harness_fixtures::secret_rotation::{
    assert_not_logged, bounded, full_rotation, scene, settings_trusting, step, STEPS,
};
use harness_services::mariadb::MariaDb;
use harness_services::rotation::{begin_rotation, end_rotation};
use harness_services::secrets::{current, mariadb_master_secret, mariadb_user_secret};
use mysql_async::prelude::Queryable;
use serde_json::json;

// --- Single and alternating users ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_single_user_rotation_over_verified_tls() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    let old = "old-Maria-Passw0rd";
    let id = mariadb_user_secret(&scene.sm, &db, "maria-single", "app", old, json!({"ssl": true})).await;
    let token = "88888888-8888-4888-8888-888888888888";
    begin_rotation(&scene.sm, &id, token).await;
    for name in STEPS {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name} again: {e}"));
    }
    end_rotation(&scene.sm, &id, token).await;
    let new = current(&scene.sm, &id).await["password"].as_str().expect("password").to_owned();
    assert!(db.can_log_in("app", &new).await, "the new password logs in");
    assert!(!db.can_log_in("app", old).await, "the old password no longer does");
    assert_not_logged(&[old, &new]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_alternating_users_with_a_hostile_name() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    let master = mariadb_master_secret(&scene.sm, &db, "maria-master").await;
    let user = "o'brien\"; DROP USER admin; --";
    let id = mariadb_user_secret(
        &scene.sm,
        &db,
        "maria-alternating",
        user,
        "first-Maria-Passw0rd",
        json!({"masterarn": master}),
    )
    .await;

    full_rotation(&scene, &settings, &id, "99999999-9999-4999-8999-999999999991").await;
    let first = current(&scene.sm, &id).await;
    let clone = format!("{user}_clone");
    assert_eq!(first["username"], json!(clone));
    let clone_password = first["password"].as_str().expect("password").to_owned();
    assert!(db.can_log_in(&clone, &clone_password).await, "the clone logs in");
    assert!(db.can_log_in(user, "first-Maria-Passw0rd").await, "the original still logs in");
    let mut as_clone = db.connect(&clone, &clone_password).await.expect("clone login");
    as_clone.query_drop("CREATE TABLE IF NOT EXISTS app.t (x int)").await.ok();
    let grants: Vec<String> = as_clone.query("SHOW GRANTS").await.expect("grants");
    assert!(
        grants.iter().any(|g| g.contains("SELECT, INSERT ON `app`.*")),
        "the clone has the original's grants: {grants:?}"
    );
    let _ = as_clone.disconnect().await;

    full_rotation(&scene, &settings, &id, "99999999-9999-4999-8999-999999999992").await;
    let second = current(&scene.sm, &id).await;
    assert_eq!(second["username"], json!(user));
    let original_password = second["password"].as_str().expect("password").to_owned();
    assert!(db.can_log_in(user, &original_password).await);
    assert!(db.can_log_in(&clone, &clone_password).await, "the clone keeps working");
    assert!(
        db.can_log_in(harness_services::mariadb::ADMIN, harness_services::mariadb::ADMIN_PASSWORD).await,
        "the hostile name broke nothing"
    );
    assert_not_logged(&["first-Maria-Passw0rd", &clone_password, &original_password]);
}

// --- A held lock ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_lock_held_elsewhere_fails_the_step_in_time_saying_so() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = bounded(&db.ca, 2);
    let id = mariadb_user_secret(&scene.sm, &db, "maria-locked", "app", "locked-Maria-Passw0rd", json!({})).await;
    let token = "b2222222-2222-4222-8222-222222222222";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let mut holder = db.admin().await;
    holder.query_drop("FLUSH TABLES WITH READ LOCK").await.expect("global read lock");
    let blocked =
        tokio::time::timeout(std::time::Duration::from_secs(25), step(&scene, &settings, "setSecret", &id, token));
    let error = blocked.await.expect("the step waited on the lock without bound").expect_err("blocked");
    assert_eq!(error.error_type(), "DatabaseStatementTimeout", "{error}");
    holder.query_drop("UNLOCK TABLES").await.expect("unlock");
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

// --- Clones converge -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_clone_grants_follow_the_original_both_ways_and_keep_its_tls_requirement() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    let master = mariadb_master_secret(&scene.sm, &db, "maria-master-sync").await;
    let id = mariadb_user_secret(
        &scene.sm,
        &db,
        "maria-sync",
        "shop",
        "shop-Maria-Passw0rd",
        json!({"masterarn": master, "ssl": true}),
    )
    .await;
    let mut admin = db.admin().await;
    admin.query_drop("ALTER USER 'shop'@'%' REQUIRE SSL").await.expect("require ssl");
    full_rotation(&scene, &settings, &id, "b6666666-6666-4666-8666-666666666661").await;
    // The DBA changes the original's grants while the clone is current.
    admin.query_drop("GRANT UPDATE ON app.* TO 'shop'@'%'").await.expect("grant update");
    admin.query_drop("REVOKE INSERT ON app.* FROM 'shop'@'%'").await.expect("revoke insert");
    full_rotation(&scene, &settings, &id, "b6666666-6666-4666-8666-666666666662").await;
    full_rotation(&scene, &settings, &id, "b6666666-6666-4666-8666-666666666663").await;
    assert_eq!(current(&scene.sm, &id).await["username"], "shop_clone");
    let grants: Vec<String> = admin.query("SHOW GRANTS FOR 'shop_clone'@'%'").await.expect("grants");
    let on_app = grants.iter().find(|g| g.contains("ON `app`.*")).cloned().unwrap_or_default();
    assert!(on_app.contains("UPDATE") && on_app.contains("SELECT"), "the added grant reached the clone: {grants:?}");
    assert!(!on_app.contains("INSERT"), "the revoked grant left the clone too: {grants:?}");
    let ssl: Option<String> =
        admin.query_first("SELECT ssl_type FROM mysql.user WHERE User = 'shop_clone'").await.expect("ssl_type");
    assert_eq!(ssl.as_deref(), Some("ANY"), "the clone requires TLS as the original does");
}
