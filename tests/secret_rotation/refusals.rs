//! What is refused, and changes nothing: events and secrets that are not usable, and secrets
//! that would turn the master's credentials against the master or send them elsewhere.

use harness_fixtures::secret_rotation::{full_rotation, scene, settings_trusting, step, step_event};
use harness_services::mariadb::MariaDb;
use harness_services::password_lure::PasswordLure;
use harness_services::postgres::Postgres;
use harness_services::rotation::begin_rotation;
use harness_services::secrets::{
    create_secret, current, current_version, mariadb_master_secret, mariadb_user_secret, pg_master_secret,
    pg_user_secret,
};
use mysql_async::prelude::Queryable;
use secret_rotation::{rotate_step, RotationError, StepOutcome};
use serde_json::json;

// --- Events and secrets that are not usable ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_change_nothing() {
    let scene = scene().await;
    let secret = json!({"engine": "postgres", "host": "127.0.0.1", "username": "app", "password": "p-Passw0rd"});
    // Rotation not enabled.
    let plain = create_secret(&scene.sm, "not-enabled", &secret).await;
    let version = current_version(&scene.sm, &plain).await;
    let error = step(&scene, &scene.settings, "createSecret", &plain, &version).await.unwrap_err();
    assert!(matches!(error, RotationError::RotationNotEnabled(_)), "{error}");

    let id = create_secret(&scene.sm, "refusals", &secret).await;
    let token = "66666666-6666-4666-8666-666666666666";
    begin_rotation(&scene.sm, &id, token).await;
    let before = current_version(&scene.sm, &id).await;
    // Unknown token.
    let error =
        step(&scene, &scene.settings, "createSecret", &id, "77777777-7777-4777-8777-777777777777").await.unwrap_err();
    assert!(matches!(error, RotationError::TokenNotAVersion { .. }), "{error}");
    // The current version is not pending: its steps are no-ops, not errors.
    let done = step(&scene, &scene.settings, "setSecret", &id, &before).await.expect("no-op");
    assert_eq!(done, StepOutcome::AlreadyCurrent);
    // Unknown step.
    let error =
        rotate_step(&scene.clients, &scene.settings, &step_event("dropSecret", &id, token), None).await.unwrap_err();
    assert!(matches!(error, RotationError::UnknownStep(_)), "{error}");

    // A malformed secret and an unknown engine are refused before anything is written.
    for (name, value) in [
        ("not-json", "user=app;password=p-Passw0rd"),
        ("odd-engine", r#"{"engine":"oracle","password":"p-Passw0rd"}"#),
        ("no-host", r#"{"engine":"mysql","username":"u","password":"p-Passw0rd"}"#),
    ] {
        let out = scene.sm.create_secret().name(name).secret_string(value).send().await.expect("create");
        let arn = out.arn().expect("arn").to_owned();
        begin_rotation(&scene.sm, &arn, token).await;
        let error = step(&scene, &scene.settings, "createSecret", &arn, token).await.unwrap_err().to_string();
        assert!(error.contains("is not usable"), "{name}: {error}");
        assert!(!error.contains("p-Passw0rd"), "{name}: {error}");
        let pending =
            scene.sm.get_secret_value().secret_id(&arn).version_id(token).version_stage("AWSPENDING").send().await;
        assert!(pending.map(|p| p.secret_string().is_none()).unwrap_or(true), "{name}: a pending value was written");
    }
    assert_eq!(current_version(&scene.sm, &id).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_secret_without_engine_is_refused_and_the_database_keeps_working() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let id = pg_user_secret(&scene.sm, &pg, "no-engine", "app", "engine-less-Passw0rd", json!({})).await;
    let mut value = current(&scene.sm, &id).await;
    value.as_object_mut().expect("object").remove("engine");
    scene.sm.put_secret_value().secret_id(&id).secret_string(value.to_string()).send().await.expect("drop engine");
    let before = current_version(&scene.sm, &id).await;
    let token = "a4444444-4444-4444-8444-444444444444";
    begin_rotation(&scene.sm, &id, token).await;
    let error = step(&scene, &settings, "createSecret", &id, token).await.expect_err("refused").to_string();
    assert!(error.contains("no \"engine\""), "{error}");
    let pending = scene.sm.get_secret_value().secret_id(&id).version_id(token).version_stage("AWSPENDING").send().await;
    assert!(pending.map(|p| p.secret_string().is_none()).unwrap_or(true), "a pending value was written");
    assert_eq!(current_version(&scene.sm, &id).await, before);
    assert!(pg.can_log_in("app", "engine-less-Passw0rd").await, "AWSCURRENT still logs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_sent_after_a_refused_create_secret_leaves_awscurrent_as_it_was() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let id = pg_user_secret(&scene.sm, &pg, "no-engine-all-steps", "app", "kept-Passw0rd", json!({})).await;
    let mut value = current(&scene.sm, &id).await;
    value.as_object_mut().expect("object").remove("engine");
    scene.sm.put_secret_value().secret_id(&id).secret_string(value.to_string()).send().await.expect("drop engine");
    let before = current_version(&scene.sm, &id).await;
    let token = "a4545454-4545-4545-8545-454545454545";
    begin_rotation(&scene.sm, &id, token).await;
    // A caller that does not stop at the first failure sends all four.
    let mut errors = Vec::new();
    for name in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        errors.push(step(&scene, &settings, name, &id, token).await.expect_err(name).error_type());
    }
    // setSecret's refusal is one no retry can pass: it clears AWSPENDING, and the steps sent
    // after it find no rotation to work on.
    assert_eq!(errors, ["MalformedSecret", "MalformedSecret", "TokenNotPending", "TokenNotPending"]);
    let described = scene.sm.describe_secret().secret_id(&id).send().await.expect("describe");
    assert!(described.version_ids_to_stages().and_then(|s| s.get(token)).is_none_or(|s| s.is_empty()));
    assert_eq!(current_version(&scene.sm, &id).await, before, "AWSCURRENT moved to a version with no value");
    let now = scene.sm.get_secret_value().secret_id(&id).version_stage("AWSCURRENT").send().await.expect("current");
    assert!(now.secret_string().is_some_and(|s| s.contains("kept-Passw0rd")), "readers still get the secret");
    assert!(pg.can_log_in("app", "kept-Passw0rd").await);
}

// --- Hostile or mistaken secrets -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_password_never_goes_to_a_host_the_user_secret_names() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let master_password = "master-Passw0rd-lured";
    let master = pg_master_secret(&scene.sm, &pg, master_password).await;
    // A user secret that points at a server of the attacker's, in plain text.
    let lure = PasswordLure::start().await;
    let id = create_secret(
        &scene.sm,
        "lure",
        &json!({
            "engine": "postgres", "host": "127.0.0.1", "port": lure.port, "ssl": false,
            "username": "app", "password": "user-Passw0rd", "dbname": "postgres", "masterarn": master
        }),
    )
    .await;
    let token = "a1111111-1111-4111-8111-111111111111";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("refused");
    assert!(
        matches!(&error, RotationError::Refused { reason, .. } if reason.contains("host") || reason.contains("port")),
        "{error}"
    );
    assert_eq!(error.error_type(), "RotationRefused");
    // The alternation is checked before any login, so the lure was sent nothing at all: not the
    // master's password, and not the user's either (the lure itself is shown to work in `tls`).
    assert!(lure.received().is_empty(), "the lure got {} password(s)", lure.received().len());
    assert!(!lure.received().iter().any(|p| p == master_password), "the lure got the master password");
    assert!(pg.can_log_in("rotator", master_password).await, "the master is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_secret_named_after_the_master_cannot_reset_the_master() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let master_password = "master-Passw0rd-kept";
    let master = pg_master_secret(&scene.sm, &pg, master_password).await;
    let id =
        pg_user_secret(&scene.sm, &pg, "master-clone", "rotator_clone", "clone-Passw0rd", json!({"masterarn": master}))
            .await;
    let token = "a2222222-2222-4222-8222-222222222222";
    begin_rotation(&scene.sm, &id, token).await;
    // A name ending in _clone is no pair with the master's user unless the secret says so.
    let error = step(&scene, &settings, "createSecret", &id, token).await.expect_err("refused");
    assert!(matches!(&error, RotationError::Refused { reason, .. } if reason.contains("alternating_users")), "{error}");
    // And a record naming the master as the original is refused before the master is used.
    let mut forged = current(&scene.sm, &id).await;
    forged["alternating_users"] = json!(["rotator", "rotator_clone"]);
    scene.sm.put_secret_value().secret_id(&id).secret_string(forged.to_string()).send().await.expect("forge");
    let token = "a2323232-2222-4222-8222-222222222222";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("refused");
    assert!(matches!(&error, RotationError::Refused { reason, .. } if reason.contains("master's own user")), "{error}");
    assert!(pg.can_log_in("rotator", master_password).await, "the master's password is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_merely_named_like_a_clone_never_takes_over_the_role_without_the_suffix() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let master = pg_master_secret(&scene.sm, &pg, "master-Passw0rd-report").await;
    // An unrelated role `report`, a `payroll` role, and a real user `report_clone` with a
    // secret of its own.
    let superuser = pg.superuser().await;
    superuser.batch_execute("CREATE ROLE report LOGIN PASSWORD 'report-own-Passw0rd'").await.expect("report");
    superuser.batch_execute("CREATE ROLE payroll LOGIN PASSWORD 'payroll-own-Passw0rd'").await.expect("payroll");
    let id =
        pg_user_secret(&scene.sm, &pg, "report-clone", "report_clone", "rc-Passw0rd", json!({"masterarn": master}))
            .await;
    let token = "a2424242-2424-4242-8242-242424242424";
    begin_rotation(&scene.sm, &id, token).await;
    let error = step(&scene, &settings, "createSecret", &id, token).await.expect_err("no pair recorded");
    assert_eq!(error.error_type(), "RotationRefused");
    assert!(
        error.to_string().contains("[\"report_clone\", \"report_clone_clone\"]"),
        "the error says what to record: {error}"
    );
    // A record naming an unrelated role is refused: a pair is only ever <user> and <user>_clone.
    let mut value = current(&scene.sm, &id).await;
    value["alternating_users"] = json!(["payroll", "report_clone"]);
    scene.sm.put_secret_value().secret_id(&id).secret_string(value.to_string()).send().await.expect("forge");
    let token = "a2525252-2525-4252-8252-252525252525";
    begin_rotation(&scene.sm, &id, token).await;
    let error = step(&scene, &settings, "createSecret", &id, token).await.expect_err("forged pair");
    assert_eq!(error.error_type(), "RotationRefused", "{error}");
    // A record of the right shape, forged by the owner of `report_clone`'s secret, naming the
    // unrelated `report` as its original: report_clone is no clone of report, so the master never
    // hands report's password over.
    value["alternating_users"] = json!(["report", "report_clone"]);
    scene.sm.put_secret_value().secret_id(&id).secret_string(value.to_string()).send().await.expect("forge");
    let token = "a2555555-2555-4255-8255-255555555555";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create names report as pending");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("not a clone of report");
    assert_eq!(error.error_type(), "PrivilegeMismatch", "{error}");
    assert!(pg.can_log_in("report", "report-own-Passw0rd").await, "report's password was reset");
    // Recorded as a user of its own, it alternates with a clone of its own, and back.
    value["alternating_users"] = json!(["report_clone", "report_clone_clone"]);
    scene.sm.put_secret_value().secret_id(&id).secret_string(value.to_string()).send().await.expect("record");
    for (round, token) in
        ["a2626262-2626-4262-8262-262626262626", "a2727272-2727-4272-8272-272727272727"].into_iter().enumerate()
    {
        full_rotation(&scene, &settings, &id, token).await;
        let now = current(&scene.sm, &id).await;
        let expected = if round == 0 { "report_clone_clone" } else { "report_clone" };
        assert_eq!(now["username"], expected, "round {round}");
        assert!(pg.can_log_in(expected, now["password"].as_str().expect("password")).await, "round {round}");
    }
    assert!(pg.can_log_in("report", "report-own-Passw0rd").await, "report's password was reset");
    assert!(pg.can_log_in("payroll", "payroll-own-Passw0rd").await, "payroll's password was reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_never_changes_a_privileged_user() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let master = pg_master_secret(&scene.sm, &pg, "master-Passw0rd-priv").await;
    let id = pg_user_secret(&scene.sm, &pg, "privileged", "ops", "ops-Passw0rd", json!({"masterarn": master})).await;
    pg.superuser().await.batch_execute("ALTER ROLE ops CREATEROLE").await.expect("createrole");
    let token = "a3333333-3333-4333-8333-333333333333";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("refused");
    assert_eq!(error.error_type(), "PrivilegedUserRefused", "{error}");
    let clone =
        pg.superuser().await.query_opt("SELECT 1 FROM pg_roles WHERE rolname = 'ops_clone'", &[]).await.expect("query");
    assert!(clone.is_none(), "no clone was made of a privileged role");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_privileged_through_a_role_is_never_changed_either() {
    let scene = scene().await;
    // PostgreSQL: a member of a role that writes the server's files.
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let master = pg_master_secret(&scene.sm, &pg, "master-Passw0rd-priv-role").await;
    let id =
        pg_user_secret(&scene.sm, &pg, "privileged-role", "ops", "ops-Passw0rd", json!({"masterarn": master})).await;
    pg.superuser()
        .await
        .batch_execute("CREATE ROLE files NOLOGIN; GRANT pg_write_server_files TO files; GRANT files TO ops")
        .await
        .expect("an indirect membership");
    let token = "a4444444-4444-4444-8444-444444444444";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("refused");
    assert_eq!(error.error_type(), "PrivilegedUserRefused", "{error}");

    // MariaDB: a user holding a role that may create users.
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    let master = mariadb_master_secret(&scene.sm, &db, "maria-master-priv-role").await;
    let id = mariadb_user_secret(
        &scene.sm,
        &db,
        "maria-priv-role",
        "ops",
        "ops-Maria-Passw0rd",
        json!({"masterarn": master}),
    )
    .await;
    let mut admin = db.admin().await;
    for statement in
        ["CREATE ROLE user_admin", "GRANT CREATE USER ON *.* TO user_admin", "GRANT user_admin TO 'ops'@'%'"]
    {
        admin.query_drop(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let token = "a5555555-5555-4555-8555-555555555555";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("refused");
    assert_eq!(error.error_type(), "PrivilegedUserRefused", "{error}");
    let clone: Option<String> =
        admin.query_first("SELECT User FROM mysql.user WHERE User = 'ops_clone'").await.expect("query");
    assert!(clone.is_none(), "no clone was made of a privileged user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_user_named_like_the_clone_is_not_taken_for_one_the_function_began() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    let master = mariadb_master_secret(&scene.sm, &db, "maria-master-locked").await;
    let id = mariadb_user_secret(
        &scene.sm,
        &db,
        "maria-locked-clone",
        "shop",
        "shop-Maria-Passw0rd",
        json!({"masterarn": master}),
    )
    .await;
    // A locked account of someone else's, holding what the original does not.
    let mut admin = db.admin().await;
    for statement in [
        "CREATE USER 'shop_clone'@'%' IDENTIFIED BY 'theirs-Maria-Passw0rd' ACCOUNT LOCK",
        "GRANT DELETE ON app.* TO 'shop_clone'@'%'",
    ] {
        admin.query_drop(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let token = "a6666666-6666-4666-8666-666666666666";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("not the function's clone");
    assert_eq!(error.error_type(), "RotationRefused", "{error}");
    let grants: Vec<String> = admin.query("SHOW GRANTS FOR 'shop_clone'@'%'").await.expect("grants");
    assert!(grants.iter().any(|g| g.contains("DELETE")), "the other account was changed: {grants:?}");
}
