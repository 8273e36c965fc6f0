//! The database half of the TLS rule: the roots shipped in the function verify the server
//! without a bundle, and a certificate that cannot be verified is refused, not downgraded.

use harness_fixtures::secret_rotation::{full_rotation, scene, step};
use harness_services::password_lure::PasswordLure;
use harness_services::postgres::Postgres;
use harness_services::rotation::begin_rotation;
use harness_services::secrets::{create_secret, current, pg_user_secret};
use secret_rotation::Settings;
use serde_json::json;

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

// --- No downgrade of master credentials ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_credentials_never_cross_a_connection_that_refused_tls() {
    let scene = scene().await;
    // A server on the path that answers "no TLS" and asks for passwords in clear text, letting
    // the application user's login through as a proxy to the real server would. Both secrets
    // name it, in the console's format: no "ssl" field.
    let lure = PasswordLure::accepting("app").await;
    let master_password = "master-Passw0rd-downgraded";
    let server = json!({"engine": "postgres", "host": "127.0.0.1", "port": lure.port, "dbname": "postgres"});
    let mut master = server.clone();
    master["username"] = json!("rotator");
    master["password"] = json!(master_password);
    let master = create_secret(&scene.sm, "downgrade-master", &master).await;
    let mut user = server.clone();
    user["username"] = json!("app");
    user["password"] = json!("user-Passw0rd");
    user["masterarn"] = json!(master);
    let id = create_secret(&scene.sm, "downgrade-user", &user).await;
    let token = "b5555555-5555-4555-8555-555555555555";
    begin_rotation(&scene.sm, &id, token).await;
    step(&scene, &Settings::default(), "createSecret", &id, token).await.expect("create");
    let error = step(&scene, &Settings::default(), "setSecret", &id, token).await.expect_err("no TLS, no master login");
    assert_eq!(error.error_type(), "DatabaseTlsRefused", "{error}");
    assert!(error.to_string().contains("\"ssl\": false"), "the error names the field to set: {error}");
    assert!(lure.received().iter().any(|p| p == "user-Passw0rd"), "the user's own login went through the lure");
    assert!(!lure.received().iter().any(|p| p == master_password), "the master password crossed in clear text");
}
