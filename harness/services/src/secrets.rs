//! Secrets in moto's Secrets Manager: made, and read back at AWSCURRENT; and database users on a
//! throwaway server, each made together with the secret that describes it.

use aws_sdk_secretsmanager::Client;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

use crate::mariadb::MariaDb;
use crate::postgres::Postgres;

/// Makes the secret `name` with `value` as its string; returns its ARN.
pub async fn create_secret(sm: &Client, name: &str, value: &Value) -> String {
    let out = sm.create_secret().name(name).secret_string(value.to_string()).send().await.expect("create_secret");
    out.arn().expect("arn").to_owned()
}

/// The AWSCURRENT value, as JSON.
pub async fn current(sm: &Client, secret_id: &str) -> Value {
    let out = sm.get_secret_value().secret_id(secret_id).version_stage("AWSCURRENT").send().await.expect("get current");
    serde_json::from_str(out.secret_string().expect("string")).expect("json")
}

/// The id of the AWSCURRENT version.
pub async fn current_version(sm: &Client, secret_id: &str) -> String {
    let out = sm.get_secret_value().secret_id(secret_id).version_stage("AWSCURRENT").send().await.expect("get current");
    out.version_id().expect("version").to_owned()
}

/// `base` with the fields of `extra` added (a test's own `ssl`, `masterarn` and such).
pub fn with_fields(mut base: Value, extra: Value) -> Value {
    if let (Some(map), Value::Object(extra)) = (base.as_object_mut(), extra) {
        map.extend(extra);
    }
    base
}

/// A login role `user` on `pg`, and its secret `name` (database `postgres`, a `note` field that
/// a rotation must keep, and the fields of `extra`); returns the secret's ARN.
pub async fn pg_user_secret(
    sm: &Client,
    pg: &Postgres,
    name: &str,
    user: &str,
    password: &str,
    extra: Value,
) -> String {
    pg_user(pg, user, password).await;
    let secret = json!({
        "engine": "postgres", "host": "127.0.0.1", "port": pg.port,
        "username": user, "password": password, "dbname": "postgres", "note": "kept across rotations"
    });
    create_secret(sm, name, &with_fields(secret, extra)).await
}

/// A login role `user` on `pg` with `password`.
pub async fn pg_user(pg: &Postgres, user: &str, password: &str) {
    let superuser = pg.superuser().await;
    let create = superuser
        .query_one("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", &[&user, &password])
        .await
        .expect("quoting");
    superuser.batch_execute(create.get::<_, &str>(0)).await.expect("creating the user");
}

/// A superuser master `rotator` on `pg`, and its secret `pg-master`; returns the secret's ARN.
pub async fn pg_master_secret(sm: &Client, pg: &Postgres, password: &str) -> String {
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

/// A secret `name` for `db`'s password admin (all privileges, with grant option), as a master
/// secret; returns its ARN.
pub async fn mariadb_master_secret(sm: &Client, db: &MariaDb, name: &str) -> String {
    let secret = json!({
        "engine": "mariadb", "host": "127.0.0.1", "port": db.port,
        "username": crate::mariadb::ADMIN, "password": crate::mariadb::ADMIN_PASSWORD
    });
    create_secret(sm, name, &secret).await
}

/// A user `user` on `db` with SELECT and INSERT on the database `app`.
pub async fn mariadb_user(db: &MariaDb, user: &str, password: &str) {
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
}

/// A user `user` on `db` with SELECT and INSERT on the database `app`, and its secret `name`
/// (with the fields of `extra`); returns the secret's ARN.
pub async fn mariadb_user_secret(
    sm: &Client,
    db: &MariaDb,
    name: &str,
    user: &str,
    password: &str,
    extra: Value,
) -> String {
    mariadb_user(db, user, password).await;
    let secret = json!({
        "engine": "mariadb", "host": "127.0.0.1", "port": db.port,
        "username": user, "password": password, "dbname": "app"
    });
    create_secret(sm, name, &with_fields(secret, extra)).await
}
