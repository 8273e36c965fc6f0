//! What the function takes and what it reports: malformed events refused before any call, and
//! the summary's time since the warning.

use harness_fixtures::spot_drainer::{drain_instance, fleet, interruption, settings};
use harness_services::moto::Moto;
use serde_json::json;
use spot_drainer::{AwsClients, Discovery, DrainError, Settings};

// --- Refused events ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_refused_before_any_call() {
    // No moto at all: an AWS call would fail with a connection error, not the refusal below.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new("k", "s", None, None, "test"))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    for event in [
        harness_runtime::paths::read_event("hello-rest-api.json"),
        json!({"detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2", "detail": {}}),
        json!([1, 2, 3]),
    ] {
        let error = drain_instance(
            &AwsClients { ec2: ec2.clone(), elb: elb.clone(), autoscaling: aws_sdk_autoscaling::Client::new(&config) },
            &Settings::default(),
            &event,
        )
        .await
        .unwrap_err();
        assert!(matches!(error, DrainError::MalformedEvent(_) | DrainError::UnsupportedEvent(_)), "{error}");
    }
}

// --- The summary ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_says_how_long_after_the_warning_the_drain_ended() {
    let moto = Moto::start();
    let fleet = fleet(&moto, true).await;
    let mut event = interruption(&fleet.doomed.id);
    // EventBridge's `time`: ten seconds ago, at second precision, UTC.
    let warned = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() - 10;
    let date = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{warned}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    event["time"] = json!(String::from_utf8_lossy(&date.stdout).trim());
    let summary = drain_instance(&fleet.aws, &settings(Discovery::Tag), &event).await.expect("drained");
    let seconds = summary.seconds_since_warning.expect("the event had a time");
    assert!((10.0..3_600.0).contains(&seconds), "{seconds} s after {event}");
    let published = serde_json::to_value(&summary).expect("json");
    assert!(published["seconds_since_warning"].is_number(), "{published}");
}
