use std::process::Command;
use std::time::Duration;

use harness_runtime::paths::venv_bin;
use harness_services::cloudformation::{by_sid, role_statements, translated};
use harness_services::moto::Moto;
use serde_json::{json, Value};

use crate::{read, read_until, secret_path, Scene};

/// Stages, within moto's first 6 unsigned requests: the secret, a role holding `statement`
/// alone, and an administrator; then, signed, assumes the role as Lambda does for a function.
/// Prints the administrator's keys and the role session's (with its session token).
const STAGE: &str = r#"
import json, sys, boto3
endpoint, statement = sys.argv[1], json.loads(sys.argv[2])
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
boto3.client("secretsmanager", **kw).create_secret(Name="mq/broker", SecretString="first")
iam = boto3.client("iam", **kw)
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
role = iam.create_role(RoleName="poller", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
iam.put_role_policy(RoleName="poller", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
iam.create_user(UserName="admin")
iam.put_user_policy(UserName="admin", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="admin")["AccessKey"]
admin = [key["AccessKeyId"], key["SecretAccessKey"]]
sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=admin[0], aws_secret_access_key=admin[1])
c = sts.assume_role(RoleArn=role, RoleSessionName="poller")["Credentials"]
print(json.dumps({"admin": admin, "poller": [c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]]}))
"#;

/// The template's statement, with `Resource: *` (moto matches resources against `*` only).
fn template_statement(drop_action: Option<&str>) -> Value {
    let mut statement = by_sid(&role_statements(&translated(), "MqPollerRole"), "BrokerCredentials");
    statement["Resource"] = json!("*");
    if let (Some(drop), Some(list)) = (drop_action, statement["Action"].as_array_mut()) {
        list.retain(|a| a != drop);
    }
    statement
}

async fn scene_for(statement: &Value) -> (Scene, Value) {
    let moto = Moto::start_enforcing_iam_after(6);
    let out = Command::new(venv_bin("python"))
        .args(["-c", STAGE, &moto.endpoint, &statement.to_string()])
        .output()
        .expect("staging IAM");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys: Value = serde_json::from_slice(&out.stdout).expect("keys");
    (Scene::on(moto, Duration::ZERO).await, keys)
}

async fn rotate(scene: &Scene, admin: &Value) {
    let credentials = aws_sdk_secretsmanager::config::Credentials::new(
        admin[0].as_str().unwrap_or_default(),
        admin[1].as_str().unwrap_or_default(),
        None,
        None,
        "admin",
    );
    let config = scene.sm.config().to_builder().credentials_provider(credentials).build();
    aws_sdk_secretsmanager::Client::from_conf(config)
        .put_secret_value()
        .secret_id("mq/broker")
        .secret_string("second")
        .send()
        .await
        .expect("put_secret_value as the administrator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_works_under_exactly_the_actions_the_template_grants_mq_poller() {
    let (scene, keys) = scene_for(&template_statement(None)).await;
    let key = |i: usize| keys["poller"][i].as_str().unwrap_or_default();
    // The role session's credentials, as Lambda hands them to the function and its extensions.
    let env = [
        ("AWS_ACCESS_KEY_ID", key(0)),
        ("AWS_SECRET_ACCESS_KEY", key(1)),
        ("AWS_SESSION_TOKEN", key(2)),
        ("SECRETS_CACHE_PREFETCH", "mq/broker"),
        ("SECRETS_MANAGER_TTL", "1"),
    ];
    let sandbox = scene.sandbox(&env).await;
    let (status, body) = read(&sandbox, &secret_path("mq/broker")).await;
    assert_eq!(body["SecretString"], "first", "{status} {body} {}", scene.output());
    rotate(&scene, &keys["admin"]).await;
    scene.front.reset();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let served = read_until(&sandbox, &secret_path("mq/broker"), 100, |(_, b)| b["SecretString"] == "second").await.1;
    assert_eq!(served["SecretString"], "second", "{served}");
    assert_eq!((scene.calls("DescribeSecret"), scene.calls("GetSecretValue")), (1, 1));
    assert!(!scene.output().contains("UpstreamRefused"), "{}", scene.output());
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_describe_secret_the_refresh_reads_the_value_and_keeps_serving() {
    let (scene, keys) = scene_for(&template_statement(Some("secretsmanager:DescribeSecret"))).await;
    let key = |i: usize| keys["poller"][i].as_str().unwrap_or_default();
    // The role session's credentials, as Lambda hands them to the function and its extensions.
    let env = [
        ("AWS_ACCESS_KEY_ID", key(0)),
        ("AWS_SECRET_ACCESS_KEY", key(1)),
        ("AWS_SESSION_TOKEN", key(2)),
        ("SECRETS_CACHE_PREFETCH", "mq/broker"),
        ("SECRETS_MANAGER_TTL", "1"),
    ];
    let sandbox = scene.sandbox(&env).await;
    let (status, body) = read(&sandbox, &secret_path("mq/broker")).await;
    assert_eq!(body["SecretString"], "first", "{status} {body} {}", scene.output());
    rotate(&scene, &keys["admin"]).await;
    scene.front.reset();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // DescribeSecret is refused (the role lacks it, as AWS's extension needs only
    // GetSecretValue): the refresh reads the value instead, and the rotated one is served.
    let served = read_until(&sandbox, &secret_path("mq/broker"), 100, |(_, b)| b["SecretString"] == "second").await.1;
    assert_eq!(served["SecretString"], "second", "{served} {}", scene.output());
    assert!(scene.calls("GetSecretValue") >= 1, "the refresh read the value");
    sandbox.shutdown().await;
}
