//! Rotations through PgBouncer 1.18 (Debian's), in session and in transaction pooling: the
//! secret's `host` and `port`, and the master's, are PgBouncer's, which reads verifiers from the
//! server (`auth_query`), so a new password works through it at the next login. TLS to PgBouncer
//! is verified. A wrong password through PgBouncer (its own "SASL authentication failed") counts
//! as a refused login, as PostgreSQL's does: single-user setSecret then logs in as AWSCURRENT.

use harness_fixtures::secret_rotation::{assert_not_logged, full_rotation, scene, settings_trusting};
use harness_services::pgbouncer::{PgBouncer, PoolMode};
use harness_services::postgres::Postgres;
use harness_services::secrets::{create_secret, current, pg_user_secret};
use serde_json::json;

async fn rotations_through(mode: PoolMode) {
    let scene = scene().await;
    let pg = Postgres::start();
    let bouncer = PgBouncer::start(&pg, mode).await;
    let settings = settings_trusting(&bouncer.ca);
    let through = json!({"port": bouncer.port, "ssl": true});

    // A single user changes its own password through PgBouncer.
    let single = pg_user_secret(&scene.sm, &pg, "bounced-single", "solo", "solo-Passw0rd", through.clone()).await;
    full_rotation(&scene, &settings, &single, "d1111111-1111-4111-8111-111111111111").await;
    let solo = current(&scene.sm, &single).await["password"].as_str().expect("password").to_owned();
    assert!(pg.can_log_in("solo", &solo).await, "the server took the new password");
    assert!(bouncer.can_log_in("solo", &solo).await, "PgBouncer follows the new password");
    assert!(!bouncer.can_log_in("solo", "solo-Passw0rd").await, "the old password no longer passes PgBouncer");

    // Alternating users, the master reaching the server through PgBouncer too.
    pg.superuser()
        .await
        .batch_execute("CREATE ROLE rotator LOGIN CREATEROLE PASSWORD 'bounced-master-Passw0rd'")
        .await
        .expect("master");
    let master = create_secret(
        &scene.sm,
        "bounced-master",
        &json!({"engine": "postgres", "host": "127.0.0.1", "port": bouncer.port, "username": "rotator",
                "password": "bounced-master-Passw0rd", "dbname": "postgres"}),
    )
    .await;
    let mut alternating = through.clone();
    alternating["masterarn"] = json!(master);
    let pair = pg_user_secret(&scene.sm, &pg, "bounced-pair", "app", "app-Passw0rd", alternating).await;
    pg.superuser().await.batch_execute("ALTER ROLE app SET search_path = public").await.expect("a setting");
    full_rotation(&scene, &settings, &pair, "d2222222-2222-4222-8222-222222222221").await;
    full_rotation(&scene, &settings, &pair, "d2222222-2222-4222-8222-222222222222").await;
    full_rotation(&scene, &settings, &pair, "d2222222-2222-4222-8222-222222222223").await;
    let now = current(&scene.sm, &pair).await;
    assert_eq!(now["username"], "app_clone");
    let clone = now["password"].as_str().expect("password").to_owned();
    assert!(bouncer.can_log_in("app_clone", &clone).await, "the clone logs in through PgBouncer");
    assert!(!bouncer.log().contains(&clone), "PgBouncer's log holds the password");
    assert_not_logged(&["solo-Passw0rd", &solo, "app-Passw0rd", &clone, "bounced-master-Passw0rd"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_works_through_pgbouncer_in_session_pooling() {
    rotations_through(PoolMode::Session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_works_through_pgbouncer_in_transaction_pooling() {
    rotations_through(PoolMode::Transaction).await;
}
