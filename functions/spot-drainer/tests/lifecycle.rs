//! Auto Scaling's terminate lifecycle hook, end to end through the SDK clients, their answers
//! mocked (moto has no CompleteLifecycleAction or RecordLifecycleActionHeartbeat), on tokio's
//! paused clock so the drain's waits take no real time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_autoscaling::error::ErrorMetadata;
use aws_sdk_autoscaling::operation::complete_lifecycle_action::{
    CompleteLifecycleActionError, CompleteLifecycleActionOutput,
};
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::record_lifecycle_action_heartbeat::RecordLifecycleActionHeartbeatOutput;
use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{Instance, Reservation, Tag};
use aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_tags::DescribeTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_group_attributes::DescribeTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealth, TargetHealthDescription, TargetHealthStateEnum,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use serde_json::json;
use spot_drainer::{drain_one, AwsClients, Discovery, DrainError, Drainer, Outcome, Settings, TargetGroupCache};
use tokio::time::Instant;

const INSTANCE: &str = "i-0123456789abcdef0";
const TOKEN: &str = "87654321-4321-4321-4321-210987654321";
/// Attached to the Auto Scaling group: Auto Scaling drains it before the hook's wait.
const ATTACHED: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/attached/1";
/// Registered by something else (a controller, a person): the function's to drain.
const ELSEWHERE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/elsewhere/2";

fn lifecycle_event() -> serde_json::Value {
    lifecycle_event_of("drain")
}

fn lifecycle_event_of(hook: &str) -> serde_json::Value {
    json!({
        "version": "0", "detail-type": "EC2 Instance-terminate Lifecycle Action", "source": "aws.autoscaling",
        "detail": {"LifecycleActionToken": TOKEN, "AutoScalingGroupName": "web", "LifecycleHookName": hook,
                   "EC2InstanceId": INSTANCE, "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}
    })
}

fn ec2() -> aws_sdk_ec2::Client {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        let instance = Instance::builder()
            .instance_id(INSTANCE)
            .vpc_id("vpc-1")
            .private_ip_address("10.0.0.5")
            .tags(Tag::builder().key("loadBalancerTargetGroup").value(format!("{ATTACHED},{ELSEWHERE}")).build())
            .tags(Tag::builder().key("aws:autoscaling:groupName").value("web").build())
            .build();
        DescribeInstancesOutput::builder().reservations(Reservation::builder().instances(instance).build()).build()
    });
    mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe])
}

/// After the deregistration, the drain reads the group's delay and tags: none set here.
fn after_drain() -> [Rule; 2] {
    [
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_group_attributes)
            .then_output(|| DescribeTargetGroupAttributesOutput::builder().build()),
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_tags)
            .then_output(|| DescribeTagsOutput::builder().build()),
    ]
}

/// The instance's target on port 80 in `state`, as DescribeTargetHealth answers it.
fn health_of(state: TargetHealthStateEnum) -> DescribeTargetHealthOutput {
    let description = TargetHealthDescription::builder()
        .target(TargetDescription::builder().id(INSTANCE).port(80).build())
        .target_health(TargetHealth::builder().state(state).build())
        .build();
    DescribeTargetHealthOutput::builder().target_health_descriptions(description).build()
}

/// ELB answers: the instance is in ELSEWHERE; after its deregistration it is `draining` for
/// `draining_checks` checks, then `unused`. ATTACHED is never asked about (no rule for it).
fn elb(draining_checks: usize) -> (aws_sdk_elasticloadbalancingv2::Client, Rule, Arc<AtomicUsize>) {
    let checks = Arc::new(AtomicUsize::new(0));
    let counted = checks.clone();
    let health = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
        .match_requests(|r| r.target_group_arn() == Some(ELSEWHERE))
        .then_output(move || {
            let call = counted.fetch_add(1, Ordering::SeqCst);
            let state = if call == 0 {
                TargetHealthStateEnum::Healthy
            } else if call <= draining_checks {
                TargetHealthStateEnum::Draining
            } else {
                TargetHealthStateEnum::Unused
            };
            health_of(state)
        });
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .match_requests(|r| r.target_group_arn() == Some(ELSEWHERE))
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let [attributes, tags] = after_drain();
    let client =
        mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&health, &deregister, &attributes, &tags]);
    (client, deregister, checks)
}

struct AutoScaling {
    client: aws_sdk_autoscaling::Client,
    heartbeats: Rule,
    completions: Rule,
}

fn autoscaling(already_completed: bool) -> AutoScaling {
    let describe = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(|| {
        let group = AutoScalingGroup::builder().auto_scaling_group_name("web").target_group_arns(ATTACHED).build();
        DescribeAutoScalingGroupsOutput::builder().auto_scaling_groups(group).build()
    });
    let heartbeats = mock!(aws_sdk_autoscaling::Client::record_lifecycle_action_heartbeat)
        .match_requests(|r| r.lifecycle_action_token() == Some(TOKEN) && r.instance_id() == Some(INSTANCE))
        .then_output(|| RecordLifecycleActionHeartbeatOutput::builder().build());
    let completions = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action).match_requests(|r| {
        r.lifecycle_action_token() == Some(TOKEN)
            && r.lifecycle_action_result() == Some("CONTINUE")
            && r.auto_scaling_group_name() == Some("web")
            && r.lifecycle_hook_name() == Some("drain")
    });
    let completions = if already_completed {
        completions.then_error(|| {
            CompleteLifecycleActionError::generic(
                ErrorMetadata::builder()
                    .code("ValidationError")
                    .message(format!("No active Lifecycle Action found with instance ID {INSTANCE}"))
                    .build(),
            )
        })
    } else {
        completions.then_output(|| CompleteLifecycleActionOutput::builder().build())
    };
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&describe, &heartbeats, &completions]);
    AutoScaling { client, heartbeats, completions }
}

/// The function owns the hook named `drain` (LIFECYCLE_HOOK_NAMES=drain).
fn settings() -> Settings {
    Settings { discovery: Discovery::Auto, lifecycle_hook_names: vec!["drain".into()], ..Settings::default() }
}

#[tokio::test(start_paused = true)]
async fn a_lifecycle_action_is_drained_waited_for_and_completed() {
    // Draining for 6 checks, 5 s apart: longer than one heartbeat interval.
    let (elb, deregister, checks) = elb(6);
    let scaling = autoscaling(false);
    let aws = AwsClients { ec2: ec2(), elb, autoscaling: scaling.client.clone() };
    let started = Instant::now();
    let summary = drain_one(&Drainer::new(&aws, &settings(), &TargetGroupCache::default()), &lifecycle_event(), None)
        .await
        .expect("completed");
    assert_eq!(summary.lifecycle.as_deref(), Some("completed"));
    assert_eq!(summary.count(Outcome::Deregistered), 1);
    assert_eq!(
        summary.registrations[0].registration.target_group_arn, ELSEWHERE,
        "the attached group is Auto Scaling's to drain"
    );
    assert_eq!(deregister.num_calls(), 1);
    assert_eq!(checks.load(Ordering::SeqCst), 8, "found, six checks while draining, one that finds it gone");
    assert_eq!(scaling.completions.num_calls(), 1, "completed once, after the drain");
    assert!(scaling.heartbeats.num_calls() >= 1, "the hook was kept open while waiting");
    assert!(started.elapsed() >= Duration::from_secs(30), "it waited for the draining to end: {:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_repeated_lifecycle_event_finds_the_action_completed_and_succeeds() {
    let (elb, _, _) = elb(0);
    let scaling = autoscaling(true);
    let aws = AwsClients { ec2: ec2(), elb, autoscaling: scaling.client.clone() };
    let summary = drain_one(&Drainer::new(&aws, &settings(), &TargetGroupCache::default()), &lifecycle_event(), None)
        .await
        .expect("a no-op");
    assert_eq!(summary.lifecycle.as_deref(), Some("already-completed"));
    assert_eq!(scaling.completions.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_deregistration_delay_longer_than_the_invocation_keeps_the_hook_open_for_the_retry() {
    let (elb, _, _) = elb(usize::MAX);
    let scaling = autoscaling(false);
    let aws = AwsClients { ec2: ec2(), elb, autoscaling: scaling.client.clone() };
    let stop_by = Instant::now() + Duration::from_secs(12);
    let error =
        drain_one(&Drainer::new(&aws, &settings(), &TargetGroupCache::default()), &lifecycle_event(), Some(stop_by))
            .await
            .unwrap_err();
    assert!(matches!(error, DrainError::StillDraining { targets: 1, .. }), "{error}");
    assert_eq!(error.error_type(), "StillDraining");
    assert_eq!(scaling.completions.num_calls(), 0, "not completed while connections drain");
    assert!(scaling.heartbeats.num_calls() >= 1, "heart-beaten before giving the wait to the retry");
    assert!(Instant::now() <= stop_by, "ended before the invocation's deadline");
}

/// An SQS event whose records carry these EventBridge events.
fn sqs_batch(events: &[serde_json::Value]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = events
        .iter()
        .enumerate()
        .map(|(i, event)| json!({"messageId": format!("m-{i}"), "eventSource": "aws:sqs", "body": event.to_string()}))
        .collect();
    json!({ "Records": records })
}

#[tokio::test(start_paused = true)]
async fn another_owners_hook_is_left_alone_sent_directly_or_in_a_batch() {
    let (elb, deregister, checks) = elb(0);
    let scaling = autoscaling(false);
    let described =
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build());
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&described]);
    let aws = AwsClients { ec2, elb, autoscaling: scaling.client.clone() };
    let cache = TargetGroupCache::default();
    let settings = settings();
    let drainer = Drainer::new(&aws, &settings, &cache);
    let summary = drain_one(&drainer, &lifecycle_event_of("other-team-hook"), None).await.expect("succeeds");
    assert_eq!(summary.lifecycle.as_deref(), Some("left-alone"));
    let handled = spot_drainer::drain_event(&drainer, &sqs_batch(&[lifecycle_event_of("other-team-hook")]), None).await;
    let spot_drainer::Handled::Batch { response, results } = handled else { panic!("an SQS event is a batch") };
    assert!(response.batch_item_failures.is_empty(), "the record succeeds");
    assert_eq!(results[0].as_ref().map(|s| s.lifecycle.clone()).ok().flatten().as_deref(), Some("left-alone"));
    // Nothing was called for either: not the instance, not its groups, not the hook.
    assert_eq!(described.num_calls(), 0, "the instance was not even described");
    assert_eq!((deregister.num_calls(), checks.load(Ordering::SeqCst)), (0, 0), "still registered");
    assert_eq!((scaling.completions.num_calls(), scaling.heartbeats.num_calls()), (0, 0), "the owner's to complete");
}

#[tokio::test(start_paused = true)]
async fn with_no_hook_named_no_action_is_completed() {
    let (elb, deregister, _) = elb(0);
    let scaling = autoscaling(false);
    let aws = AwsClients { ec2: ec2(), elb, autoscaling: scaling.client.clone() };
    let cache = TargetGroupCache::default();
    let unnamed = Settings { discovery: Discovery::Auto, ..Settings::default() };
    let summary = drain_one(&Drainer::new(&aws, &unnamed, &cache), &lifecycle_event(), None).await.expect("succeeds");
    assert_eq!(summary.lifecycle.as_deref(), Some("left-alone"));
    assert_eq!((deregister.num_calls(), scaling.completions.num_calls()), (0, 0));
}

const THROTTLING: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
<Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>";

#[tokio::test(start_paused = true)]
async fn the_hook_is_heart_beaten_while_a_slow_drain_runs() {
    // The deregistration throttled 25 times, each retry waiting for a token at one a second: the
    // drain alone outlasts a heartbeat interval. Then nothing is left draining.
    let health = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
        .match_requests(|r| r.target_group_arn() == Some(ELSEWHERE))
        .then_output(|| health_of(TargetHealthStateEnum::Healthy));
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .sequence()
        .http_status(400, Some(THROTTLING.to_owned()))
        .times(25)
        .output(|| DeregisterTargetsOutput::builder().build())
        .build();
    let [attributes, tags] = after_drain();
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&health, &deregister, &attributes, &tags],
        |config| { config.retry_config(aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig::disabled()) }
    );
    let scaling = autoscaling(false);
    let aws = AwsClients { ec2: ec2(), elb, autoscaling: scaling.client.clone() };
    let pacing = spot_drainer::Pacing { deregister_rate: 1, deregister_burst: 1, ..spot_drainer::Pacing::default() };
    let settings = Settings { pacing, ..settings() };
    let stop_by = Instant::now() + Duration::from_secs(600);
    let cache = TargetGroupCache::default();
    let summary =
        drain_one(&Drainer::new(&aws, &settings, &cache), &lifecycle_event(), Some(stop_by)).await.expect("completed");
    assert_eq!((summary.lifecycle.as_deref(), summary.count(Outcome::Deregistered)), (Some("completed"), 1));
    assert_eq!(deregister.num_calls(), 26);
    assert!(scaling.heartbeats.num_calls() >= 1, "the hook was heart-beaten during the drain itself");
}

#[tokio::test(start_paused = true)]
async fn a_group_deleted_while_its_targets_drain_is_not_waited_for() {
    const NOT_FOUND: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code>\
<Message>One or more target groups not found</Message></Error><RequestId>r-2</RequestId></ErrorResponse>";
    // Found by the search, then gone: every check after the deregistration answers not-found.
    let health = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
        .match_requests(|r| r.target_group_arn() == Some(ELSEWHERE))
        .sequence()
        .output(|| health_of(TargetHealthStateEnum::Healthy))
        .http_status(400, Some(NOT_FOUND.to_owned()))
        .repeatedly()
        .build();
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let [attributes, tags] = after_drain();
    let elb =
        mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&health, &deregister, &attributes, &tags]);
    let scaling = autoscaling(false);
    let aws = AwsClients { ec2: ec2(), elb, autoscaling: scaling.client.clone() };
    let stop_by = Instant::now() + Duration::from_secs(600);
    let cache = TargetGroupCache::default();
    let summary = drain_one(&Drainer::new(&aws, &settings(), &cache), &lifecycle_event(), Some(stop_by))
        .await
        .expect("completed, not held until the stop time");
    assert_eq!(summary.lifecycle.as_deref(), Some("completed"));
    assert_eq!(health.num_calls(), 2, "found, then one check that finds the group gone");
}
