//! Playing Secrets Manager's part in a rotation, which moto's RotateSecret cannot (it needs
//! Docker to run the function): mark a new version AWSPENDING before the steps, and take
//! AWSPENDING off it after finishSecret.

use aws_sdk_secretsmanager::types::RotationRulesType;
use aws_sdk_secretsmanager::Client;

/// Enables rotation and adds the version `token` with AWSPENDING and no value yet. moto's
/// RotateSecret does exactly this before failing to find the (absent) function.
pub async fn begin_rotation(sm: &Client, secret_id: &str, token: &str) {
    let _ = sm
        .rotate_secret()
        .secret_id(secret_id)
        .client_request_token(token)
        .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:not-run-by-moto")
        .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
        .send()
        .await;
    let described = sm.describe_secret().secret_id(secret_id).send().await.expect("describe_secret");
    assert_eq!(described.rotation_enabled(), Some(true));
    let stages = described.version_ids_to_stages().and_then(|s| s.get(token)).cloned().unwrap_or_default();
    assert_eq!(stages, ["AWSPENDING"], "moto no longer sets up the pending version this way");
}

/// Secrets Manager's last move after finishSecret.
pub async fn end_rotation(sm: &Client, secret_id: &str, token: &str) {
    sm.update_secret_version_stage()
        .secret_id(secret_id)
        .version_stage("AWSPENDING")
        .remove_from_version_id(token)
        .send()
        .await
        .expect("clearing AWSPENDING");
}
