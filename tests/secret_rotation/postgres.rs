//! Rotations on a throwaway PostgreSQL cluster (password authentication, TLS): single and
//! alternating users, the strategies, failures mid-rotation, clones that converge, and passwords
//! that never reach the server's statement log.

use harness_fixtures::secret_rotation::{
    assert_not_logged, bounded, full_rotation, scene, settings_trusting, step, STEPS,
};
use harness_services::postgres::Postgres;
use harness_services::rotation::{begin_rotation, end_rotation};
use harness_services::secrets::{create_secret, current, current_version, pg_master_secret, pg_user_secret};
use secret_rotation::RotationError;
use serde_json::json;

// --- Single and alternating users ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_single_user_rotation_changes_the_password_and_each_step_reruns() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let old = "old-Passw0rd-single";
    let id = pg_user_secret(&scene.sm, &pg, "pg-single", "app", old, json!({"ssl": true})).await;
    let token = "11111111-1111-4111-8111-111111111111";
    begin_rotation(&scene.sm, &id, token).await;
    for name in STEPS {
        let first = step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        // Each step run twice gives the same end state; the second run has nothing left to do.
        let again = step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name} again: {e}"));
        if name == "createSecret" || name == "setSecret" || name == "finishSecret" {
            assert!(again.was_already_done(), "{name} re-run: {again} (first: {first})");
        }
    }
    end_rotation(&scene.sm, &id, token).await;

    let now = current(&scene.sm, &id).await;
    let new = now["password"].as_str().expect("password").to_owned();
    assert_ne!(new, old);
    assert_eq!(new.len(), 32);
    assert!(!new.contains(':'), "default exclusions apply");
    assert_eq!(now["note"], "kept across rotations");
    assert_eq!(current_version(&scene.sm, &id).await, token);
    assert!(pg.can_log_in("app", &new).await, "the new password logs in");
    assert!(!pg.can_log_in("app", old).await, "the old password no longer does");
    assert_not_logged(&[old, &new]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_alternating_users_swap_and_both_stay_usable() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let superuser = pg.superuser().await;
    superuser.batch_execute("CREATE ROLE rotator2 LOGIN SUPERUSER PASSWORD 'master-Passw0rd'").await.expect("master");
    let master = create_secret(&scene.sm, "pg-master", &json!({
        "engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": "rotator2", "password": "master-Passw0rd"
    })).await;
    let id = pg_user_secret(
        &scene.sm,
        &pg,
        "pg-alternating",
        "app \"quoted\"",
        "first-Passw0rd",
        json!({"masterarn": master}),
    )
    .await;

    full_rotation(&scene, &settings, &id, "22222222-2222-4222-8222-222222222221").await;
    let first = current(&scene.sm, &id).await;
    assert_eq!(first["username"], "app \"quoted\"_clone");
    let clone_password = first["password"].as_str().expect("password");
    assert!(pg.can_log_in("app \"quoted\"_clone", clone_password).await, "the clone logs in");
    assert!(pg.can_log_in("app \"quoted\"", "first-Passw0rd").await, "the previous user still logs in");
    let member = superuser
        .query_one("SELECT pg_has_role('app \"quoted\"_clone', 'app \"quoted\"', 'MEMBER')", &[])
        .await
        .expect("membership");
    assert!(member.get::<_, bool>(0), "the clone holds the original user's role");

    full_rotation(&scene, &settings, &id, "22222222-2222-4222-8222-222222222222").await;
    let second = current(&scene.sm, &id).await;
    assert_eq!(second["username"], "app \"quoted\"");
    let original_password = second["password"].as_str().expect("password");
    assert!(pg.can_log_in("app \"quoted\"", original_password).await);
    assert!(pg.can_log_in("app \"quoted\"_clone", clone_password).await, "the clone keeps working");
    assert_not_logged(&["first-Passw0rd", clone_password, original_password]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategies_single_and_alternating_and_a_clone_name_too_long() {
    let scene = scene().await;
    let pg = Postgres::start();
    let master = pg_master_secret(&scene.sm, &pg, "master-Passw0rd-strategy").await;
    // single: masterarn present (as CDK writes it), yet the user changes its own password.
    let mut single = settings_trusting(&pg.ca);
    single.strategy = secret_rotation::Strategy::Single;
    let id =
        pg_user_secret(&scene.sm, &pg, "strategy-single", "solo", "solo-Passw0rd", json!({"masterarn": master})).await;
    full_rotation(&scene, &single, &id, "a5555555-5555-4555-8555-555555555555").await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(now["username"], "solo", "no clone under the single strategy");
    assert!(pg.can_log_in("solo", now["password"].as_str().expect("password")).await);

    // alternating without masterarn: refused at createSecret.
    let mut alternating = settings_trusting(&pg.ca);
    alternating.strategy = secret_rotation::Strategy::Alternating;
    let id = pg_user_secret(&scene.sm, &pg, "strategy-alternating", "duo", "duo-Passw0rd", json!({})).await;
    let token = "a6666666-6666-4666-8666-666666666666";
    begin_rotation(&scene.sm, &id, token).await;
    let error = step(&scene, &alternating, "createSecret", &id, token).await.expect_err("refused");
    assert!(matches!(&error, RotationError::Refused { reason, .. } if reason.contains("masterarn")), "{error}");

    // A user whose clone name would pass PostgreSQL's 63 bytes: refused before AWSPENDING exists.
    let long = "u".repeat(60);
    let id = pg_user_secret(&scene.sm, &pg, "long-name", &long, "long-Passw0rd", json!({"masterarn": master})).await;
    let token = "a7777777-7777-4777-8777-777777777777";
    begin_rotation(&scene.sm, &id, token).await;
    let error = step(&scene, &settings_trusting(&pg.ca), "createSecret", &id, token).await.expect_err("refused");
    assert!(matches!(&error, RotationError::Refused { reason, .. } if reason.contains("63")), "{error}");
    let pending = scene.sm.get_secret_value().secret_id(&id).version_id(token).version_stage("AWSPENDING").send().await;
    assert!(pending.map(|p| p.secret_string().is_none()).unwrap_or(true), "a pending value was written");
}

// --- Failures mid-rotation -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_set_secret_completes_when_rerun_and_a_failed_test_moves_nothing() {
    let scene = scene().await;
    let mut pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let id = pg_user_secret(&scene.sm, &pg, "pg-outage", "app", "before-Passw0rd", json!({})).await;
    let before = current_version(&scene.sm, &id).await;
    let token = "33333333-3333-4333-8333-333333333333";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");

    pg.stop();
    let error = step(&scene, &settings, "setSecret", &id, token).await.unwrap_err().to_string();
    assert!(error.contains("cannot reach 127.0.0.1"), "{error}");
    let error = step(&scene, &settings, "testSecret", &id, token).await.unwrap_err().to_string();
    assert!(error.contains("cannot reach"), "{error}");
    assert_eq!(current_version(&scene.sm, &id).await, before, "a failed test moves nothing");

    pg.restart();
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let new = current(&scene.sm, &id).await["password"].as_str().expect("password").to_owned();
    assert!(pg.can_log_in("app", &new).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_secret_with_a_wrong_pending_password_fails_and_current_stays() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let id = pg_user_secret(&scene.sm, &pg, "pg-wrong", "app", "right-Passw0rd", json!({})).await;
    let before = current_version(&scene.sm, &id).await;
    let token = "44444444-4444-4444-8444-444444444444";
    begin_rotation(&scene.sm, &id, token).await;
    // A pending version whose password the database never got.
    let mut pending = current(&scene.sm, &id).await;
    pending["password"] = json!("never-set-Passw0rd");
    scene
        .sm
        .put_secret_value()
        .secret_id(&id)
        .client_request_token(token)
        .secret_string(pending.to_string())
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("put pending");
    let error = step(&scene, &settings, "testSecret", &id, token).await.unwrap_err().to_string();
    assert!(error.contains("authentication failed for user \"app\""), "{error}");
    assert!(!error.contains("never-set"), "{error}");
    assert_eq!(current_version(&scene.sm, &id).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_lock_held_elsewhere_fails_the_step_in_time_saying_so() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = bounded(&pg.ca, 2);
    let id = pg_user_secret(&scene.sm, &pg, "pg-locked", "app", "locked-Passw0rd", json!({})).await;
    let token = "b1111111-1111-4111-8111-111111111111";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    // Another session changes the same role and keeps its transaction open.
    let holder = pg.superuser().await;
    holder.batch_execute("BEGIN; ALTER ROLE app CONNECTION LIMIT 50;").await.expect("holding the role's row");
    let started = std::time::Instant::now();
    let blocked =
        tokio::time::timeout(std::time::Duration::from_secs(25), step(&scene, &settings, "setSecret", &id, token));
    let error = blocked.await.expect("the step waited on the lock without bound").expect_err("blocked");
    assert_eq!(error.error_type(), "DatabaseStatementTimeout", "{error}");
    assert!(error.to_string().contains("lock"), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the step gave up long before the function's timeout"
    );
    holder.batch_execute("ROLLBACK").await.expect("release");
    // Once the lock is gone, the re-run completes.
    for name in ["setSecret", "testSecret", "finishSecret"] {
        step(&scene, &settings, name, &id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

// --- Clones converge -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_clone_is_taken_only_once_recorded_and_is_then_repaired() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let master = pg_master_secret(&scene.sm, &pg, "master-Passw0rd-repair").await;
    let id = pg_user_secret(&scene.sm, &pg, "half-made", "app", "half-Passw0rd", json!({"masterarn": master})).await;
    let superuser = pg.superuser().await;
    superuser.batch_execute("GRANT CREATE ON SCHEMA public TO app").await.expect("schema grant");
    // A user `app_clone` the function did not make (a clone left by an older rotation, or a user
    // of its own with that name).
    superuser.batch_execute("CREATE ROLE app_clone LOGIN PASSWORD 'own-clone-Passw0rd'").await.expect("existing");
    let token = "b5555555-5555-4555-8555-555555555551";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("not the function's clone");
    assert_eq!(error.error_type(), "RotationRefused", "{error}");
    assert!(error.to_string().contains("alternating_users"), "the error says what to record: {error}");
    assert!(pg.can_log_in("app_clone", "own-clone-Passw0rd").await, "the existing user was changed");
    // No retry of this rotation can pass: AWSPENDING is cleared, so the next one can start.
    let described = scene.sm.describe_secret().secret_id(&id).send().await.expect("describe");
    let stages = described.version_ids_to_stages().and_then(|s| s.get(token)).cloned().unwrap_or_default();
    assert!(stages.is_empty(), "the refused rotation's version keeps {stages:?}");

    // The operator records the pair in the current version: the clone is adopted and repaired.
    let mut value = current(&scene.sm, &id).await;
    value["alternating_users"] = json!(["app", "app_clone"]);
    scene.sm.put_secret_value().secret_id(&id).secret_string(value.to_string()).send().await.expect("record");
    full_rotation(&scene, &settings, &id, "b5555555-5555-4555-8555-555555555555").await;
    let now = current(&scene.sm, &id).await;
    assert_eq!(now["username"], "app_clone");
    let member =
        superuser.query_one("SELECT pg_has_role('app_clone', 'app', 'MEMBER')", &[]).await.expect("membership");
    assert!(member.get::<_, bool>(0), "the re-run made the clone a member of the original");
    let as_clone = pg.connect("app_clone", now["password"].as_str().expect("password")).await.expect("clone login");
    as_clone.batch_execute("CREATE TABLE made_by_clone (x int)").await.expect("the clone creates a table");
    let owner = superuser
        .query_one("SELECT tableowner::text FROM pg_tables WHERE tablename = 'made_by_clone'", &[])
        .await
        .expect("owner");
    assert_eq!(owner.get::<_, String>(0), "app", "objects the clone creates belong to the original");
}

// --- Passwords out of the server's log -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_reach_postgresql_as_scram_verifiers_never_in_its_statement_log() {
    let scene = scene().await;
    let pg = Postgres::start_with(&[("log_statement", "all"), ("log_parameter_max_length", "-1")]);
    let settings = settings_trusting(&pg.ca);
    let master = pg_master_secret(&scene.sm, &pg, "master-Passw0rd-scram").await;
    let single = pg_user_secret(&scene.sm, &pg, "scram-single", "logged", "logged-Passw0rd", json!({})).await;
    full_rotation(&scene, &settings, &single, "a8888888-8888-4888-8888-888888888888").await;
    let alternating =
        pg_user_secret(&scene.sm, &pg, "scram-alternating", "pair", "pair-Passw0rd", json!({"masterarn": master}))
            .await;
    full_rotation(&scene, &settings, &alternating, "a9999999-9999-4999-8999-999999999999").await;

    let log = pg.log();
    assert!(log.contains("ALTER ROLE") && log.contains("SCRAM-SHA-256$"), "the statement log saw the changes");
    for id in [&single, &alternating] {
        let now = current(&scene.sm, id).await;
        let password = now["password"].as_str().expect("password");
        let user = now["username"].as_str().expect("user");
        assert!(pg.can_log_in(user, password).await, "{user} logs in with the rotated password");
        assert!(!log.contains(password), "the server's log holds a rotated password");
    }
}
