//! Secrets that list several servers (`hosts`): every server rotated, a server that fails or
//! hangs half-way rolled back or resumed, the step killed between servers and run again, and a
//! single user's testSecret failing after setSecret. Each server is a throwaway cluster of the
//! test's own; which password each holds is checked by logging in.

use std::time::Duration;

use harness_fixtures::secret_rotation::{full_rotation, scene, settings_trusting_all, step, step_until, Scene};
use harness_services::forward::Gate;
use harness_services::mariadb::MariaDb;
use harness_services::postgres::Postgres;
use harness_services::rotation::{begin_rotation, end_rotation};
use harness_services::secrets::{create_secret, current, mariadb_user, pg_user};
use secret_rotation::{RotationError, Settings};
use serde_json::{json, Value};

const OLD: &str = "old-Passw0rd-fleet";

/// A PostgreSQL secret for `user` on each of `ports` (all 127.0.0.1), in `hosts`.
async fn pg_fleet_secret(scene: &Scene, name: &str, user: &str, ports: &[u16], extra: Value) -> String {
    let hosts: Vec<Value> = ports.iter().map(|port| json!({"host": "127.0.0.1", "port": port})).collect();
    let mut secret = json!({
        "engine": "postgres", "username": user, "password": OLD, "dbname": "postgres", "hosts": hosts,
        "ssl": true, "note": "kept across rotations"
    });
    if let (Some(map), Value::Object(extra)) = (secret.as_object_mut(), extra) {
        map.extend(extra);
    }
    create_secret(&scene.sm, name, &secret).await
}

/// Two throwaway PostgreSQL clusters, each with the login role `fleet` on the old password.
async fn two_servers_with_the_user() -> (Postgres, Postgres) {
    let (pg1, pg2) = (Postgres::start(), Postgres::start());
    for pg in [&pg1, &pg2] {
        pg_user(pg, "fleet", OLD).await;
    }
    (pg1, pg2)
}

/// Starts the rotation `token` as Secrets Manager does, runs createSecret, and answers the
/// pending password.
async fn started(scene: &Scene, settings: &Settings, id: &str, token: &str) -> String {
    begin_rotation(&scene.sm, id, token).await;
    step(scene, settings, "createSecret", id, token).await.expect("createSecret");
    pending_password(scene, id, token).await
}

/// The stages the version `token` holds now.
async fn stages_of(scene: &Scene, id: &str, token: &str) -> Vec<String> {
    let described = scene.sm.describe_secret().secret_id(id).send().await.expect("describe_secret");
    described.version_ids_to_stages().and_then(|s| s.get(token)).cloned().unwrap_or_default()
}

/// The pending password of the rotation `token`.
async fn pending_password(scene: &Scene, id: &str, token: &str) -> String {
    let out = scene
        .sm
        .get_secret_value()
        .secret_id(id)
        .version_id(token)
        .version_stage("AWSPENDING")
        .send()
        .await
        .expect("the pending version");
    let value: Value = serde_json::from_str(out.secret_string().expect("string")).expect("json");
    value["password"].as_str().expect("password").to_owned()
}

async fn set_password(pg: &Postgres, user: &str, password: &str) {
    pg.superuser().await.batch_execute(&format!("ALTER ROLE {user} PASSWORD '{password}'")).await.expect("alter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_a_secret_lists_takes_the_new_password_and_the_list_is_kept() {
    let scene = scene().await;
    let (pg1, pg2) = two_servers_with_the_user().await;
    let settings = settings_trusting_all(&[&pg1.ca, &pg2.ca]);
    let id = pg_fleet_secret(&scene, "pg-fleet", "fleet", &[pg1.port, pg2.port], json!({})).await;
    let before = current(&scene.sm, &id).await;

    full_rotation(&scene, &settings, &id, "f1111111-1111-4111-8111-111111111111").await;
    let after = current(&scene.sm, &id).await;
    let new = after["password"].as_str().expect("password");
    assert_ne!(new, OLD);
    assert_eq!(after["hosts"], before["hosts"], "the servers are kept in the new version");
    assert!(after.get("host").is_none(), "no single host was added");
    for pg in [&pg1, &pg2] {
        assert!(pg.can_log_in("fleet", new).await, "the new password logs in on {}", pg.port);
        assert!(!pg.can_log_in("fleet", OLD).await, "the old password is refused on {}", pg.port);
    }
}

/// A session on `pg` that holds `user`'s row locked (as a DBA's open transaction would), so an
/// `ALTER ROLE` of it waits until `lock_timeout`.
async fn hold_role_lock(pg: &Postgres, user: &str) -> tokio_postgres::Client {
    let holder = pg.superuser().await;
    holder.batch_execute(&format!("BEGIN; ALTER ROLE {user} CONNECTION LIMIT 50;")).await.expect("holding the row");
    holder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_failing_half_way_is_rolled_back_everywhere_and_the_retry_converges() {
    let scene = scene().await;
    let pg1 = Postgres::start_with(&[("log_statement", "ddl")]);
    let pg2 = Postgres::start();
    for pg in [&pg1, &pg2] {
        pg_user(pg, "fleet", OLD).await;
    }
    let mut settings = settings_trusting_all(&[&pg1.ca, &pg2.ca]);
    settings.db.statement_timeout = Duration::from_secs(2);
    settings.host_concurrency = 1;
    let id = pg_fleet_secret(&scene, "pg-fleet-half-way", "fleet", &[pg1.port, pg2.port], json!({})).await;
    let token = "f2222222-2222-4222-8222-222222222222";
    let new = started(&scene, &settings, &id, token).await;

    // Both servers take the current password, so setSecret starts; the second then fails.
    let holder = hold_role_lock(&pg2, "fleet").await;
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("the second server is locked");
    assert_eq!(error.error_type(), "DatabaseStatementTimeout", "the original failure is the answer: {error}");
    let changes = pg1.log().matches("ALTER ROLE").count();
    assert_eq!(changes, 2, "the first server was changed, then changed back:\n{}", pg1.log());
    assert!(pg1.can_log_in("fleet", OLD).await, "the first server holds the current password again");
    assert!(!pg1.can_log_in("fleet", &new).await);
    assert!(pg2.can_log_in("fleet", OLD).await, "the second server was never changed");
    assert_eq!(stages_of(&scene, &id, token).await, ["AWSPENDING"], "a lock is transient: AWSPENDING stays");

    holder.batch_execute("ROLLBACK").await.expect("release");
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    end_rotation(&scene.sm, &id, token).await;
    for pg in [&pg1, &pg2] {
        assert!(pg.can_log_in("fleet", &new).await, "the retry converged on {}", pg.port);
        assert!(!pg.can_log_in("fleet", OLD).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_fails_the_step_before_any_server_changes() {
    let scene = scene().await;
    let pg1 = Postgres::start_with(&[("log_statement", "ddl")]);
    let mut pg2 = Postgres::start();
    for pg in [&pg1, &pg2] {
        pg_user(pg, "fleet", OLD).await;
    }
    let settings = settings_trusting_all(&[&pg1.ca, &pg2.ca]);
    let id = pg_fleet_secret(&scene, "pg-fleet-down", "fleet", &[pg1.port, pg2.port], json!({})).await;
    let token = "f2222222-2222-4222-8222-222222222223";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("createSecret");
    let ddl_before = pg1.log().matches("ALTER ROLE").count();
    pg2.stop();
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("one server is down");
    assert_eq!(error.error_type(), "DatabaseUnreachable", "{error}");
    assert_eq!(pg1.log().matches("ALTER ROLE").count(), ddl_before, "no server was changed, so none flip-flops");
    assert!(pg1.can_log_in("fleet", OLD).await);
    assert_eq!(stages_of(&scene, &id, token).await, ["AWSPENDING"]);
    pg2.restart();
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let new = current(&scene.sm, &id).await["password"].as_str().expect("password").to_owned();
    assert!(pg1.can_log_in("fleet", &new).await && pg2.can_log_in("fleet", &new).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rollback_a_failed_set_leaves_the_servers_as_they_were_left() {
    let scene = scene().await;
    let (pg1, pg2) = two_servers_with_the_user().await;
    let mut settings = Settings { rollback_on_failure: false, ..settings_trusting_all(&[&pg1.ca, &pg2.ca]) };
    settings.db.statement_timeout = Duration::from_secs(2);
    settings.host_concurrency = 1;
    let id = pg_fleet_secret(&scene, "pg-fleet-no-rollback", "fleet", &[pg1.port, pg2.port], json!({})).await;
    let token = "f3333333-3333-4333-8333-333333333333";
    let new = started(&scene, &settings, &id, token).await;
    let _holder = hold_role_lock(&pg2, "fleet").await;
    step(&scene, &settings, "setSecret", &id, token).await.expect_err("the second server is locked");
    assert!(pg1.can_log_in("fleet", &new).await, "ROLLBACK_ON_FAILURE=false: today's behaviour");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_killed_between_servers_converges_when_run_again() {
    let scene = scene().await;
    let (pg1, pg2) = two_servers_with_the_user().await;
    let gate = Gate::start(pg2.port).await;
    let mut settings = settings_trusting_all(&[&pg1.ca, &pg2.ca]);
    settings.host_concurrency = 1;
    settings.db.connect_timeout = Duration::from_secs(60);
    let id = pg_fleet_secret(&scene, "pg-fleet-killed", "fleet", &[pg1.port, gate.port], json!({})).await;
    let token = "f4444444-4444-4444-8444-444444444444";
    let new = started(&scene, &settings, &id, token).await;

    // The second server hangs once setSecret starts changing servers (its two logins of the
    // check before go through); the step is dropped there, as a killed process stops: nothing
    // after that point runs, no rollback either.
    gate.hold_after(2);
    let killed = tokio::time::timeout(Duration::from_secs(5), step(&scene, &settings, "setSecret", &id, token)).await;
    assert!(killed.is_err(), "the step was still waiting on the second server");
    assert!(pg1.can_log_in("fleet", &new).await, "the first server took the new password before the kill");
    assert!(pg2.can_log_in("fleet", OLD).await, "the second server was never reached");

    gate.open();
    let again = step(&scene, &settings, "setSecret", &id, token).await.expect("setSecret again");
    assert!(!again.was_already_done(), "the second server still had to be set: {again}");
    for name in ["testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    end_rotation(&scene.sm, &id, token).await;
    for pg in [&pg1, &pg2] {
        assert!(pg.can_log_in("fleet", &new).await, "converged on {}", pg.port);
        assert!(!pg.can_log_in("fleet", OLD).await, "the old password is refused on {}", pg.port);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_past_the_deadline_is_left_and_the_others_are_put_back_in_time() {
    let scene = scene().await;
    let (pg1, pg2) = two_servers_with_the_user().await;
    let gate = Gate::start(pg2.port).await;
    let mut settings = settings_trusting_all(&[&pg1.ca, &pg2.ca]);
    settings.host_concurrency = 1;
    let id = pg_fleet_secret(&scene, "pg-fleet-deadline", "fleet", &[pg1.port, gate.port], json!({})).await;
    let token = "f5555555-5555-4555-8555-555555555555";
    let new = started(&scene, &settings, &id, token).await;

    gate.hold_after(2);
    // 8 s to the step's end: the servers' work stops at 4 s, leaving the rest to the rollback.
    let stop_at = tokio::time::Instant::now() + Duration::from_secs(8);
    let error = step_until(&scene, &settings, "setSecret", &id, token, stop_at).await.expect_err("deadline");
    // The servers' own deadline, not the step's: it names the time kept for the rollback.
    assert!(matches!(error, RotationError::DeadlineExceeded { margin_ms, .. } if margin_ms > 3000), "{error}");
    assert!(tokio::time::Instant::now() <= stop_at + Duration::from_millis(500), "answered within the step's time");
    assert!(pg1.can_log_in("fleet", OLD).await, "the first server was put back before the answer");
    assert!(!pg1.can_log_in("fleet", &new).await);
    assert_eq!(stages_of(&scene, &id, token).await, ["AWSPENDING"], "a deadline is transient: AWSPENDING stays");
    gate.open();
    assert!(pg2.can_log_in("fleet", OLD).await, "the hanging server was never changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_single_user_test_puts_the_current_password_back_and_clears_pending() {
    let scene = scene().await;
    let (pg1, pg2) = two_servers_with_the_user().await;
    let settings = settings_trusting_all(&[&pg1.ca, &pg2.ca]);
    let id = pg_fleet_secret(&scene, "pg-fleet-test-fails", "fleet", &[pg1.port, pg2.port], json!({})).await;
    let token = "f6666666-6666-4666-8666-666666666666";
    begin_rotation(&scene.sm, &id, token).await;
    for name in ["createSecret", "setSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let new = pending_password(&scene, &id, token).await;
    assert!(pg1.can_log_in("fleet", &new).await && pg2.can_log_in("fleet", &new).await);
    // Behind the function's back, a DBA puts the second server back on the old password.
    set_password(&pg2, "fleet", OLD).await;

    let error = step(&scene, &settings, "testSecret", &id, token).await.expect_err("the pending password is refused");
    assert_eq!(error.error_type(), "AuthFailed", "{error}");
    for pg in [&pg1, &pg2] {
        assert!(pg.can_log_in("fleet", OLD).await, "AWSCURRENT's password logs in on {}", pg.port);
        assert!(!pg.can_log_in("fleet", &new).await);
    }
    assert!(
        stages_of(&scene, &id, token).await.is_empty(),
        "the servers answered: no retry can pass, AWSPENDING is cleared"
    );
    let old = current(&scene.sm, &id).await;
    assert_eq!(old["password"], OLD, "AWSCURRENT did not move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_users_on_every_server_with_a_master_listing_the_same_servers() {
    let scene = scene().await;
    let (pg1, pg2) = (Postgres::start(), Postgres::start());
    for pg in [&pg1, &pg2] {
        pg_user(pg, "shard", OLD).await;
        pg.superuser()
            .await
            .batch_execute("CREATE ROLE rotator LOGIN SUPERUSER PASSWORD 'master-Passw0rd'")
            .await
            .expect("master");
    }
    let settings = settings_trusting_all(&[&pg1.ca, &pg2.ca]);
    let hosts = |ports: &[u16]| -> Value { ports.iter().map(|p| json!({"host": "127.0.0.1", "port": p})).collect() };
    let master = |name: &str, ports: &[u16]| json!({"engine": "postgres", "username": "rotator", "password": "master-Passw0rd", "hosts": hosts(ports), "name": name});
    // A master naming only one of the servers: refused before any server is touched.
    let partial = create_secret(&scene.sm, "pg-master-partial", &master("partial", &[pg1.port])).await;
    let id =
        pg_fleet_secret(&scene, "pg-shards-partial", "shard", &[pg1.port, pg2.port], json!({"masterarn": partial}))
            .await;
    let token = "f7777777-7777-4777-8777-777777777777";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("createSecret");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("refused");
    assert!(matches!(&error, RotationError::Refused { reason, .. } if reason.contains("hosts")), "{error}");
    for pg in [&pg1, &pg2] {
        let clone = pg.superuser().await.query_opt("SELECT 1 FROM pg_roles WHERE rolname = 'shard_clone'", &[]).await;
        assert!(clone.expect("query").is_none(), "no clone was made on {}", pg.port);
    }

    let whole = create_secret(&scene.sm, "pg-master-whole", &master("whole", &[pg2.port, pg1.port])).await;
    let id = pg_fleet_secret(&scene, "pg-shards", "shard", &[pg1.port, pg2.port], json!({"masterarn": whole})).await;
    full_rotation(&scene, &settings, &id, "f8888888-8888-4888-8888-888888888888").await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(now["username"], "shard_clone");
    let password = now["password"].as_str().expect("password");
    for pg in [&pg1, &pg2] {
        assert!(pg.can_log_in("shard_clone", password).await, "the clone logs in on {}", pg.port);
        assert!(pg.can_log_in("shard", OLD).await, "the previous user still logs in on {}", pg.port);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_server_taking_none_of_the_passwords_fails_the_step_before_any_server_changes() {
    let scene = scene().await;
    let (db1, db2) = (MariaDb::start(), MariaDb::start());
    mariadb_user(&db1, "fleet", OLD).await;
    // The second server holds the user with another password: setSecret cannot log in there.
    mariadb_user(&db2, "fleet", "someone-elses-Passw0rd").await;
    let settings = settings_trusting_all(&[&db1.ca, &db2.ca]);
    let hosts: Vec<Value> = [db1.port, db2.port].iter().map(|p| json!({"host": "127.0.0.1", "port": p})).collect();
    let secret = json!({"engine": "mariadb", "username": "fleet", "password": OLD, "dbname": "app", "hosts": hosts});
    let id = create_secret(&scene.sm, "mariadb-fleet", &secret).await;
    let token = "f9999999-9999-4999-8999-999999999999";
    let new = started(&scene, &settings, &id, token).await;
    let changed = || async {
        let mut admin = db1.admin().await;
        let at: Option<Option<u64>> = mysql_async::prelude::Queryable::query_first(
            &mut admin,
            "SELECT CAST(JSON_VALUE(Priv, '$.password_last_changed') AS UNSIGNED) FROM mysql.global_priv WHERE User = 'fleet'",
        )
        .await
        .expect("password_last_changed");
        at.flatten()
    };
    let before = changed().await;
    // A changed password would show a later second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("the second server refuses");
    assert_eq!(error.error_type(), "AuthFailed", "{error}");
    assert_eq!(changed().await, before, "the first server was never changed");
    assert!(db1.can_log_in("fleet", OLD).await);
    assert!(!db1.can_log_in("fleet", &new).await);
    assert!(db2.can_log_in("fleet", "someone-elses-Passw0rd").await, "the second server was not touched");
    assert_eq!(stages_of(&scene, &id, token).await, ["AWSPENDING"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_stays_while_a_server_that_may_hold_the_new_password_could_not_be_put_back() {
    let scene = scene().await;
    let (pg1, pg2) = two_servers_with_the_user().await;
    let gate = Gate::start(pg2.port).await;
    let settings = settings_trusting_all(&[&pg1.ca, &pg2.ca]);
    let id = pg_fleet_secret(&scene, "pg-fleet-unrolled", "fleet", &[pg1.port, gate.port], json!({})).await;
    let token = "fa111111-1111-4111-8111-111111111111";
    begin_rotation(&scene.sm, &id, token).await;
    for name in ["createSecret", "setSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let new = pending_password(&scene, &id, token).await;
    // The first server is put back on the old password behind the function's back: testSecret
    // fails there, a failure no retry passes. The second passes its test, then hangs.
    set_password(&pg1, "fleet", OLD).await;
    gate.hold_after(1);
    let stop_at = tokio::time::Instant::now() + Duration::from_secs(8);
    let error = step_until(&scene, &settings, "testSecret", &id, token, stop_at).await.expect_err("refused on pg1");
    assert_eq!(error.error_type(), "AuthFailed", "{error}");
    assert_eq!(
        stages_of(&scene, &id, token).await,
        ["AWSPENDING"],
        "the second server may still hold the pending password: it must stay in a version"
    );
    gate.open();
    assert!(pg2.can_log_in("fleet", &new).await, "the second server could not be put back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_server_hanging_half_way_leaves_the_others_rolled_back() {
    let scene = scene().await;
    let (db1, db2) = (MariaDb::start(), MariaDb::start());
    for db in [&db1, &db2] {
        mariadb_user(db, "fleet", OLD).await;
    }
    let gate = Gate::start(db2.port).await;
    let mut settings = settings_trusting_all(&[&db1.ca, &db2.ca]);
    settings.host_concurrency = 1;
    let hosts: Vec<Value> = [db1.port, gate.port].iter().map(|p| json!({"host": "127.0.0.1", "port": p})).collect();
    let secret = json!({"engine": "mariadb", "username": "fleet", "password": OLD, "dbname": "app", "hosts": hosts});
    let id = create_secret(&scene.sm, "mariadb-fleet-hangs", &secret).await;
    let token = "fb111111-1111-4111-8111-111111111111";
    let new = started(&scene, &settings, &id, token).await;
    // The second server's two logins of the check go through; it hangs once servers change.
    gate.hold_after(2);
    let stop_at = tokio::time::Instant::now() + Duration::from_secs(8);
    let error = step_until(&scene, &settings, "setSecret", &id, token, stop_at).await.expect_err("deadline");
    assert_eq!(error.error_type(), "DeadlineExceeded", "{error}");
    assert!(db1.can_log_in("fleet", OLD).await, "the first server was put back");
    assert!(!db1.can_log_in("fleet", &new).await);
    gate.open();
    assert!(db2.can_log_in("fleet", OLD).await, "the hanging server was never changed");
    assert_eq!(stages_of(&scene, &id, token).await, ["AWSPENDING"]);
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for db in [&db1, &db2] {
        assert!(db.can_log_in("fleet", &new).await, "the retry converged on {}", db.port);
    }
}
