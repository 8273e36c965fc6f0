//! finishSecret for a secret replicated to other regions, with Secrets Manager's answers mocked
//! (moto cannot script a replica in progress or failed): success only once every replica is in
//! sync, `ReplicationFailed` and `ReplicationPending` otherwise, and a retried finishSecret (its
//! token already current) resumes the wait without moving anything again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use aws_sdk_secretsmanager::operation::update_secret_version_stage::UpdateSecretVersionStageOutput;
use aws_sdk_secretsmanager::types::{ReplicationStatusType, StatusType};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use secret_rotation::{rotate_step, AwsClients, RotationError, Settings, StepOutcome};
use serde_json::json;

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:replicated-AbCdEf";
const TOKEN: &str = "11111111-2222-4333-8444-555555555555";
const OLD: &str = "00000000-2222-4333-8444-555555555555";

/// DescribeSecret's answer: the token under `stage`, one replica in eu-west-1 with `replica`.
fn described(stage: &str, replica: StatusType) -> DescribeSecretOutput {
    let old_stage = if stage == "AWSCURRENT" { "AWSPREVIOUS" } else { "AWSCURRENT" };
    DescribeSecretOutput::builder()
        .arn(SECRET)
        .rotation_enabled(true)
        .version_ids_to_stages(TOKEN, vec![stage.to_owned()])
        .version_ids_to_stages(OLD, vec![old_stage.to_owned()])
        .replication_status(
            ReplicationStatusType::builder().region("eu-west-1").status(replica).status_message("replica says").build(),
        )
        .build()
}

/// A Secrets Manager whose DescribeSecret answers `describes` in turn (the last one from then
/// on), holding a generic secret; counts the stage moves.
fn secrets_manager(describes: Vec<DescribeSecretOutput>, moves: Arc<AtomicUsize>) -> aws_sdk_secretsmanager::Client {
    let (last, first) = describes.split_last().expect("at least one answer");
    let mut sequence = mock!(aws_sdk_secretsmanager::Client::describe_secret).sequence();
    for answer in first {
        let answer = answer.clone();
        sequence = sequence.output(move || answer.clone());
    }
    let last = last.clone();
    client_with(sequence.output(move || last.clone()).repeatedly().build(), moves)
}

fn client_with(describe: Rule, moves: Arc<AtomicUsize>) -> aws_sdk_secretsmanager::Client {
    let value = |stage: &'static str, password: &'static str| {
        mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .match_requests(move |request| request.version_stage() == Some(stage))
            .then_output(move || {
                GetSecretValueOutput::builder()
                    .arn(SECRET)
                    .secret_string(json!({"password": password}).to_string())
                    .build()
            })
    };
    let (pending, current) = (value("AWSPENDING", "new-Passw0rd"), value("AWSCURRENT", "old-Passw0rd"));
    let update = mock!(aws_sdk_secretsmanager::Client::update_secret_version_stage)
        .match_requests(move |_| {
            moves.fetch_add(1, Ordering::SeqCst);
            true
        })
        .then_output(|| UpdateSecretVersionStageOutput::builder().build());
    mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&describe, &pending, &current, &update])
}

fn clients(secrets: aws_sdk_secretsmanager::Client) -> AwsClients {
    let config = aws_sdk_rds::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_rds::config::Region::new("us-east-1"))
        .build();
    AwsClients { secrets, rds: aws_sdk_rds::Client::from_conf(config) }
}

fn settings() -> Settings {
    Settings { replication_poll: Duration::from_millis(10), ..Settings::default() }
}

fn finish() -> serde_json::Value {
    json!({"Step": "finishSecret", "SecretId": SECRET, "ClientRequestToken": TOKEN})
}

#[tokio::test]
async fn finish_secret_answers_once_every_replica_is_in_sync() {
    let moves = Arc::new(AtomicUsize::new(0));
    let sm = secrets_manager(
        vec![
            described("AWSPENDING", StatusType::InSync),
            described("AWSCURRENT", StatusType::InProgress),
            described("AWSCURRENT", StatusType::InProgress),
            described("AWSCURRENT", StatusType::InSync),
        ],
        moves.clone(),
    );
    let report = rotate_step(&clients(sm), &settings(), &finish(), None).await.expect("in sync");
    assert_eq!(report.result, StepOutcome::MovedCurrent);
    assert_eq!(moves.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_replica_answers_replication_failed_naming_its_region() {
    let moves = Arc::new(AtomicUsize::new(0));
    let sm = secrets_manager(
        vec![described("AWSPENDING", StatusType::InSync), described("AWSCURRENT", StatusType::Failed)],
        moves,
    );
    let error = rotate_step(&clients(sm), &settings(), &finish(), None).await.expect_err("failed replica");
    assert_eq!(error.error_type(), "ReplicationFailed");
    assert!(matches!(&error, RotationError::ReplicationFailed { region, .. } if region == "eu-west-1"), "{error}");
}

#[tokio::test]
async fn a_replica_still_pending_at_the_deadline_answers_pending_and_the_retry_resumes_the_wait() {
    let moves = Arc::new(AtomicUsize::new(0));
    let sm = secrets_manager(
        vec![described("AWSPENDING", StatusType::InSync), described("AWSCURRENT", StatusType::InProgress)],
        moves.clone(),
    );
    let stop_at = tokio::time::Instant::now() + Duration::from_millis(300);
    let error = rotate_step(&clients(sm), &settings(), &finish(), Some(stop_at)).await.expect_err("still pending");
    assert_eq!(error.error_type(), "ReplicationPending", "{error}");
    assert_eq!(moves.load(Ordering::SeqCst), 1, "AWSCURRENT moved once");

    // Secrets Manager retries finishSecret: the token is current now, and the replica in sync.
    let sm = secrets_manager(
        vec![described("AWSCURRENT", StatusType::InProgress), described("AWSCURRENT", StatusType::InSync)],
        moves.clone(),
    );
    let report = rotate_step(&clients(sm), &settings(), &finish(), None).await.expect("the retry waits on");
    assert_eq!(report.result, StepOutcome::AlreadyCurrent);
    assert_eq!(moves.load(Ordering::SeqCst), 1, "nothing moved again");
}
