//! secret-rotation against moto's Secrets Manager and a throwaway PostgreSQL cluster with
//! password authentication and TLS. moto cannot drive a rotation (RotateSecret needs Docker to run
//! the function), so each test does what Secrets Manager does: it marks a new version AWSPENDING,
//! calls the four steps in order, and clears AWSPENDING after finishSecret.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_secretsmanager::Client;
use harness_services::moto::Moto;
use harness_services::postgres::Postgres;
use harness_services::rotation::{begin_rotation, end_rotation};
use secret_rotation::{rotate_step, AwsClients, RotationError, Settings, StepOutcome};
use serde_json::{json, Value};

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// Everything every test in this binary logs, through the functions' own logging setup at TRACE.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        std::env::set_var("AWS_LAMBDA_LOG_LEVEL", "trace");
        shared::logging::init_with_writer(move || LogSink(sink.clone()));
        buffer
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);
impl Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::ErrorKind::Other)?.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Scene {
    _moto: Moto,
    /// What the function calls: moto's Secrets Manager and RDS (a test may swap RDS for a mock).
    clients: AwsClients,
    /// The same Secrets Manager, for staging and checking.
    sm: Client,
    settings: Settings,
}

async fn scene() -> Scene {
    captured_logs();
    let moto = Moto::start();
    let clients = AwsClients::new(&moto.sdk_config().await);
    Scene { _moto: moto, sm: clients.secrets.clone(), clients, settings: Settings::default() }
}

/// Settings that trust the test CA of a throwaway database server.
fn settings_trusting(ca: &std::path::Path) -> Settings {
    let mut settings = Settings::default();
    settings.db.ca_bundle = Some(shared::tls::bundle("DB_CA_BUNDLE", ca));
    settings
}

/// `base` with the fields of `extra` added (a test's own `ssl`, `masterarn` and such).
fn with_fields(mut base: Value, extra: Value) -> Value {
    if let (Some(map), Value::Object(extra)) = (base.as_object_mut(), extra) {
        map.extend(extra);
    }
    base
}

async fn create_secret(sm: &Client, name: &str, value: &Value) -> String {
    let out = sm.create_secret().name(name).secret_string(value.to_string()).send().await.expect("create_secret");
    out.arn().expect("arn").to_owned()
}

fn step_event(step: &str, secret_id: &str, token: &str) -> Value {
    json!({"Step": step, "SecretId": secret_id, "ClientRequestToken": token})
}

async fn step(
    scene: &Scene,
    settings: &Settings,
    step: &str,
    secret_id: &str,
    token: &str,
) -> Result<StepOutcome, RotationError> {
    rotate_step(&scene.clients, settings, &step_event(step, secret_id, token)).await.map(|r| r.result)
}

async fn full_rotation(scene: &Scene, settings: &Settings, secret_id: &str, token: &str) {
    begin_rotation(&scene.sm, secret_id, token).await;
    for name in STEPS {
        step(scene, settings, name, secret_id, token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    end_rotation(&scene.sm, secret_id, token).await;
}

async fn current(sm: &Client, secret_id: &str) -> Value {
    let out = sm.get_secret_value().secret_id(secret_id).version_stage("AWSCURRENT").send().await.expect("get current");
    serde_json::from_str(out.secret_string().expect("string")).expect("json")
}

async fn current_version(sm: &Client, secret_id: &str) -> String {
    let out = sm.get_secret_value().secret_id(secret_id).version_stage("AWSCURRENT").send().await.expect("get current");
    out.version_id().expect("version").to_owned()
}

async fn pg_user_secret(sm: &Client, pg: &Postgres, name: &str, user: &str, password: &str, extra: Value) -> String {
    let superuser = pg.superuser().await;
    let create = superuser
        .query_one("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", &[&user, &password])
        .await
        .expect("quoting");
    superuser.batch_execute(create.get::<_, &str>(0)).await.expect("creating the user");
    let secret = json!({
        "engine": "postgres", "host": "127.0.0.1", "port": pg.port,
        "username": user, "password": password, "dbname": "postgres", "note": "kept across rotations"
    });
    create_secret(sm, name, &with_fields(secret, extra)).await
}

fn assert_not_logged(secrets: &[&str]) {
    let logs = captured_logs();
    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    assert!(text.contains("rotation step done"), "the capture saw no rotation logs");
    for secret in secrets {
        assert!(!text.contains(secret), "a password reached the logs");
    }
}

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
async fn generic_secrets_rotate_without_an_external_system() {
    let scene = scene().await;
    let id = create_secret(
        &scene.sm,
        "api-key",
        &json!({"username": "partner", "password": "old-api-key", "endpoint": "https://api.example"}),
    )
    .await;
    full_rotation(&scene, &scene.settings, &id, "55555555-5555-4555-8555-555555555555").await;
    let now = current(&scene.sm, &id).await;
    assert_ne!(now["password"], "old-api-key");
    assert_eq!(now["endpoint"], "https://api.example");
    assert_eq!(now["username"], "partner");
}

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
    let error = rotate_step(&scene.clients, &scene.settings, &step_event("dropSecret", &id, token)).await.unwrap_err();
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

// --- Hostile or mistaken secrets ---------------------------------------------------------------

use harness_services::password_lure::PasswordLure;

/// A superuser master `rotator` on `pg`, and its secret.
async fn pg_master_secret(sm: &Client, pg: &Postgres, password: &str) -> String {
    let superuser = pg.superuser().await;
    superuser
        .batch_execute(&format!("CREATE ROLE rotator LOGIN SUPERUSER PASSWORD '{password}'"))
        .await
        .expect("master");
    create_secret(
        sm,
        "pg-master",
        &json!({
            "engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": "rotator", "password": password
        }),
    )
    .await
}

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
    // The lure works (the user's own credentials were tried there), and got nothing of the master's.
    assert!(!lure.received().is_empty(), "the lure was never asked");
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
    step(&scene, &settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &settings, "setSecret", &id, token).await.expect_err("refused");
    assert!(matches!(&error, RotationError::Refused { reason, .. } if reason.contains("master's own user")), "{error}");
    assert!(pg.can_log_in("rotator", master_password).await, "the master's password is unchanged");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_shipped_in_the_function_verify_the_database_without_a_bundle() {
    let scene = scene().await;
    let pg = Postgres::start();
    // The test CA takes the place of the shipped RDS roots: the same code path, no DB_CA_BUNDLE.
    let pem: &'static [u8] = Box::leak(std::fs::read(&pg.ca).expect("test CA").into_boxed_slice());
    let mut settings = Settings::default();
    settings.db.shipped_roots = shared::tls::ShippedRoots { name: "test CA", pem };
    assert!(settings.db.ca_bundle.is_none());
    let id = pg_user_secret(&scene.sm, &pg, "shipped-roots", "app", "shipped-Passw0rd", json!({"ssl": true})).await;
    full_rotation(&scene, &settings, &id, "b3333333-3333-4333-8333-333333333333").await;
    let now = current(&scene.sm, &id).await;
    assert!(pg.can_log_in("app", now["password"].as_str().expect("password")).await);
    // With only the real shipped roots, the test CA's server is refused, not downgraded.
    let id =
        pg_user_secret(&scene.sm, &pg, "shipped-roots-refused", "other", "other-Passw0rd", json!({"ssl": true})).await;
    let token = "b4444444-4444-4444-8444-444444444444";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &Settings::default(), "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &Settings::default(), "setSecret", &id, token).await.expect_err("unverified");
    assert_eq!(error.error_type(), "DatabaseTlsFailed", "{error}");
}

// --- MySQL / MariaDB ------------------------------------------------------------------------

use harness_services::mariadb::MariaDb;
use mysql_async::prelude::Queryable;

async fn mariadb_user_secret(
    sm: &Client,
    db: &MariaDb,
    name: &str,
    user: &str,
    password: &str,
    extra: Value,
) -> String {
    let mut admin = db.admin().await;
    // Account statements take no placeholders: quote as the function does.
    let quote = |text: &str| mysql_async::Value::from(text).as_sql(false);
    let (quoted_user, quoted_password) = (quote(user), quote(password));
    admin
        .query_drop(format!("CREATE USER {quoted_user}@'%' IDENTIFIED BY {quoted_password}"))
        .await
        .expect("creating the user");
    admin.query_drop(format!("GRANT SELECT, INSERT ON app.* TO {quoted_user}@'%'")).await.expect("granting");
    let _ = admin.disconnect().await;
    let secret = json!({
        "engine": "mariadb", "host": "127.0.0.1", "port": db.port,
        "username": user, "password": password, "dbname": "app"
    });
    create_secret(sm, name, &with_fields(secret, extra)).await
}

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
    let master = create_secret(
        &scene.sm,
        "maria-master",
        &json!({
            "engine": "mariadb", "host": "127.0.0.1", "port": db.port,
            "username": harness_services::mariadb::ADMIN, "password": harness_services::mariadb::ADMIN_PASSWORD
        }),
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverifiable_certificate_is_refused_not_downgraded() {
    let scene = scene().await;
    let pg = Postgres::start();
    // `ssl` absent (try TLS first), but the test CA is not trusted: the server's certificate
    // cannot be verified. That is a TLS failure, not a reason to fall back to plain text.
    let id = pg_user_secret(&scene.sm, &pg, "pg-untrusted", "app", "untrusted-Passw0rd", json!({})).await;
    let token = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &scene.settings, "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &scene.settings, "setSecret", &id, token).await.unwrap_err().to_string();
    assert!(error.contains("TLS with 127.0.0.1"), "{error}");
    assert!(pg.can_log_in("app", "untrusted-Passw0rd").await, "the password was not changed");
}

// --- Held locks -------------------------------------------------------------------------------

/// Settings that trust `ca` and give each statement `seconds` at most.
fn bounded(ca: &std::path::Path, seconds: u64) -> Settings {
    let mut settings = settings_trusting(ca);
    settings.db.statement_timeout = std::time::Duration::from_secs(seconds);
    settings
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

// --- Clones converge ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_made_postgres_clone_is_repaired_and_its_objects_belong_to_the_original() {
    let scene = scene().await;
    let pg = Postgres::start();
    let settings = settings_trusting(&pg.ca);
    let master = pg_master_secret(&scene.sm, &pg, "master-Passw0rd-repair").await;
    let id = pg_user_secret(&scene.sm, &pg, "half-made", "app", "half-Passw0rd", json!({"masterarn": master})).await;
    let superuser = pg.superuser().await;
    superuser.batch_execute("GRANT CREATE ON SCHEMA public TO app").await.expect("schema grant");
    // A clone whose CREATE succeeded, and nothing after.
    superuser.batch_execute("CREATE ROLE app_clone LOGIN").await.expect("half-made clone");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_clone_grants_follow_the_original_both_ways_and_keep_its_tls_requirement() {
    let scene = scene().await;
    let db = MariaDb::start();
    let settings = settings_trusting(&db.ca);
    let master = create_secret(
        &scene.sm,
        "maria-master-sync",
        &json!({
            "engine": "mariadb", "host": "127.0.0.1", "port": db.port,
            "username": harness_services::mariadb::ADMIN, "password": harness_services::mariadb::ADMIN_PASSWORD
        }),
    )
    .await;
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

// Master secrets that RDS manages: only `username` and `password`, and a tag naming the DB
// instance or cluster; the function finds the endpoint through the RDS API.

use aws_sdk_secretsmanager::types::Tag;

/// A DB instance in moto's RDS whose master password RDS manages; moto makes its `rds!db-…`
/// secret, tagged as RDS tags it. Returns the secret's ARN and the instance's endpoint.
async fn moto_rds_instance(clients: &AwsClients, name: &str, port: i32) -> (String, String) {
    let out = clients
        .rds
        .create_db_instance()
        .db_instance_identifier(name)
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .master_username("admin")
        .manage_master_user_password(true)
        .port(port)
        .allocated_storage(20)
        .send()
        .await
        .expect("create_db_instance");
    let instance = out.db_instance().expect("instance");
    let secret =
        instance.master_user_secret().and_then(|s| s.secret_arn()).expect("an RDS-managed master secret").to_owned();
    let host = instance.endpoint().and_then(|e| e.address()).expect("endpoint").to_owned();
    (secret, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rds_managed_master_is_resolved_through_rds_and_its_endpoint_must_be_the_users() {
    use secret_rotation::rds_master::{endpoint_of, owner_of, RdsOwner};
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

/// An RDS client whose DescribeDBInstances answers with `host`:`port` for every instance: moto's
/// endpoints do not resolve, so the login part runs against a database of the test's own.
fn rds_answering(host: &str, port: u16) -> aws_sdk_rds::Client {
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::types::{DbInstance, Endpoint};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let host = host.to_owned();
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
        let endpoint = Endpoint::builder().address(host.clone()).port(i32::from(port)).build();
        let instance =
            DbInstance::builder().db_instance_identifier("app-db").engine("postgres").endpoint(endpoint).build();
        DescribeDbInstancesOutput::builder().db_instances(instance).build()
    });
    mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&describe])
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
