//! What moto cannot stage: one instance on two ports of one group, and ELB throttling or failing
//! in one group of several. The SDK clients are real; only their responses are mocked.

use std::time::Duration;

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{Instance, Reservation, Tag};
use aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig;
use aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_tags::DescribeTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_group_attributes::DescribeTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthDescription};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use serde_json::json;
use spot_drainer::{
    drain_one, AwsClients, Discovery, DrainError, DrainSummary, Drainer, Outcome, Settings, TargetGroupCache,
};

/// After a drain, the drained groups' delay and tags are read: answered empty here (the tests of
/// what they say are against moto, in tests/spot_drainer/after_drain.rs).
fn after_drain() -> [Rule; 2] {
    [
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_group_attributes)
            .then_output(|| DescribeTargetGroupAttributesOutput::builder().build()),
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_tags)
            .then_output(|| DescribeTagsOutput::builder().build()),
    ]
}

const INSTANCE: &str = "i-0123456789abcdef0";
const TWO_PORTS: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/two-ports/1";
const THROTTLED: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/throttled/2";
const HEALTHY: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/healthy/3";

fn event() -> serde_json::Value {
    json!({
        "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
        "detail": {"instance-id": INSTANCE, "instance-action": "terminate"}
    })
}

/// The clients of a drain: these EC2 and ELB mocks, and an Auto Scaling client nothing calls.
fn clients(ec2: aws_sdk_ec2::Client, elb: &aws_sdk_elasticloadbalancingv2::Client) -> AwsClients {
    AwsClients { ec2, elb: elb.clone(), autoscaling: mock_client!(aws_sdk_autoscaling, []) }
}

fn ec2_client() -> aws_sdk_ec2::Client {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        let tag =
            Tag::builder().key("loadBalancerTargetGroup").value(format!("{TWO_PORTS},{THROTTLED},{HEALTHY}")).build();
        let instance =
            Instance::builder().instance_id(INSTANCE).vpc_id("vpc-1").private_ip_address("10.0.0.5").tags(tag).build();
        DescribeInstancesOutput::builder().reservations(Reservation::builder().instances(instance).build()).build()
    });
    mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe])
}

fn health(ports: &'static [i32]) -> impl Fn() -> DescribeTargetHealthOutput + Send + Sync {
    move || {
        let mut output = DescribeTargetHealthOutput::builder();
        for port in ports {
            let target = TargetDescription::builder().id(INSTANCE).port(*port).build();
            output = output.target_health_descriptions(TargetHealthDescription::builder().target(target).build());
        }
        output.build()
    }
}

fn health_rule(arn: &'static str, ports: &'static [i32]) -> Rule {
    mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
        .match_requests(move |r| r.target_group_arn() == Some(arn))
        .then_output(health(ports))
}

const THROTTLING: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
<Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>";

/// DeregisterTargets on `arn` answering Throttling, every time.
fn throttled_for_ever(arn: &'static str) -> Rule {
    mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .match_requests(move |r| r.target_group_arn() == Some(arn))
        .sequence()
        .http_status(400, Some(THROTTLING.to_owned()))
        .repeatedly()
        .build()
}

/// One event drained as a cold environment would: no group list kept, no deadline.
async fn drain_instance(
    aws: &AwsClients,
    settings: &Settings,
    event: &serde_json::Value,
) -> Result<DrainSummary, DrainError> {
    drain_one(&Drainer::new(aws, settings, &TargetGroupCache::new(Duration::ZERO)), event, None).await
}

// Paused clock: the drain's own retries wait between attempts.
#[tokio::test(start_paused = true)]
async fn a_throttled_group_does_not_stop_the_others_and_the_drain_reports_an_error() {
    let describe = [health_rule(TWO_PORTS, &[80, 8081]), health_rule(THROTTLED, &[80]), health_rule(HEALTHY, &[443])];
    // Both ports of the two-port group go in one call, each with its own port.
    let two_ports = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .match_requests(|r| {
            let ports: Vec<_> = r.targets().iter().map(|t| (t.id(), t.port())).collect();
            r.target_group_arn() == Some(TWO_PORTS)
                && ports == [(Some(INSTANCE), Some(80)), (Some(INSTANCE), Some(8081))]
        })
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let throttled = throttled_for_ever(THROTTLED);
    let healthy = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .match_requests(|r| r.target_group_arn() == Some(HEALTHY) && r.targets()[0].port() == Some(443))
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let facts = after_drain();
    let rules = [&facts[0], &facts[1], &describe[0], &describe[1], &describe[2], &two_ports, &throttled, &healthy];
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, rules, |config| config
        .retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(1))));

    let settings = Settings { discovery: Discovery::Tag, ..Settings::default() };
    let error = drain_instance(&clients(ec2_client(), &elb), &settings, &event()).await.unwrap_err();

    let DrainError::Incomplete(summary) = error else { panic!("expected an incomplete drain, got {error}") };
    assert_eq!(summary.count(Outcome::Deregistered), 3, "{summary:?}");
    assert_eq!(summary.count(Outcome::Failed), 1);
    let failed = summary.registrations.iter().find(|r| r.outcome == Outcome::Failed).expect("a failure");
    assert_eq!(failed.registration.target_group_arn, THROTTLED);
    assert!(failed.error.as_deref().unwrap_or_default().contains("Throttling"), "{failed:?}");
    assert_eq!(two_ports.num_calls(), 1);
    assert_eq!(healthy.num_calls(), 1);
    // The first call and the drain's five retries, all it allows itself without a stop time; the
    // SDK's own attempts are off for the calls the drain retries, so each call took a token.
    assert_eq!(throttled.num_calls(), 6, "the drain retried the throttled call, each attempt one call");
}

#[tokio::test(start_paused = true)]
async fn a_group_throttled_three_times_then_answering_is_drained_in_the_same_invocation() {
    let tag_only_healthy = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        let tag = Tag::builder().key("loadBalancerTargetGroup").value(HEALTHY).build();
        let instance =
            Instance::builder().instance_id(INSTANCE).vpc_id("vpc-1").private_ip_address("10.0.0.5").tags(tag).build();
        DescribeInstancesOutput::builder().reservations(Reservation::builder().instances(instance).build()).build()
    });
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&tag_only_healthy]);
    let describe = health_rule(HEALTHY, &[443]);
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .match_requests(|r| r.target_group_arn() == Some(HEALTHY))
        .sequence()
        .http_status(400, Some(THROTTLING.to_owned()))
        .times(3)
        .output(|| DeregisterTargetsOutput::builder().build())
        .build();
    // The SDK's own retries off: every throttled answer reaches the drain.
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&after_drain()[0], &after_drain()[1], &describe, &deregister],
        |config| { config.retry_config(RetryConfig::disabled()) }
    );
    // One deregistration token at once, then one a second: each retry waits for a token.
    let pacing = spot_drainer::Pacing { deregister_rate: 1, deregister_burst: 1, ..spot_drainer::Pacing::default() };
    let settings = Settings { discovery: Discovery::Tag, pacing, ..Settings::default() };
    let started = tokio::time::Instant::now();
    let stop_by = started + Duration::from_secs(60);
    let aws = clients(ec2, &elb);
    let summary = drain_one(&Drainer::new(&aws, &settings, &TargetGroupCache::default()), &event(), Some(stop_by))
        .await
        .expect("drained in the same invocation");
    assert_eq!(summary.count(Outcome::Deregistered), 1, "{summary:?}");
    assert_eq!(deregister.num_calls(), 4, "three throttled attempts, then the one that answered");
    assert!(started.elapsed() >= Duration::from_secs(3), "each retry took a token: {:?}", started.elapsed());
    assert!(tokio::time::Instant::now() < stop_by);
}

#[tokio::test(start_paused = true)]
async fn a_group_still_throttled_at_the_stop_time_is_reported_failed_before_it() {
    let describe = [health_rule(TWO_PORTS, &[80, 8081]), health_rule(THROTTLED, &[80]), health_rule(HEALTHY, &[443])];
    let throttled = throttled_for_ever(THROTTLED);
    let others = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .match_requests(|r| r.target_group_arn() != Some(THROTTLED))
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let facts = after_drain();
    let rules = [&facts[0], &facts[1], &describe[0], &describe[1], &describe[2], &throttled, &others];
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, rules, |config| config
        .retry_config(RetryConfig::disabled()));
    let settings = Settings { discovery: Discovery::Tag, ..Settings::default() };
    let stop_by = tokio::time::Instant::now() + Duration::from_secs(20);
    let aws = clients(ec2_client(), &elb);
    let error = drain_one(&Drainer::new(&aws, &settings, &TargetGroupCache::default()), &event(), Some(stop_by))
        .await
        .unwrap_err();
    let DrainError::Incomplete(summary) = error else { panic!("expected an incomplete drain, got {error}") };
    assert_eq!(summary.count(Outcome::Failed), 1);
    assert!(throttled.num_calls() > 5, "retried until the stop time: {}", throttled.num_calls());
    assert!(tokio::time::Instant::now() <= stop_by, "answered before the stop time");
}

#[tokio::test(start_paused = true)]
async fn a_group_whose_health_cannot_be_read_fails_the_drain_after_the_rest() {
    let unreadable = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
        .match_requests(|r| r.target_group_arn() == Some(THROTTLED))
        .sequence()
        .http_status(500, None)
        .repeatedly()
        .build();
    let readable = [health_rule(TWO_PORTS, &[80, 8081]), health_rule(HEALTHY, &[443])];
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let facts = after_drain();
    let rules = [&facts[0], &facts[1], &unreadable, &readable[0], &readable[1], &deregister];
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, rules, |config| config
        .retry_config(RetryConfig::standard().with_max_attempts(2).with_initial_backoff(Duration::from_millis(1))));

    let settings = Settings { discovery: Discovery::Tag, ..Settings::default() };
    let error = drain_instance(&clients(ec2_client(), &elb), &settings, &event()).await.unwrap_err();
    let DrainError::Incomplete(summary) = error else { panic!("expected an incomplete drain, got {error}") };
    assert_eq!(summary.count(Outcome::Deregistered), 3);
    assert_eq!(summary.group_problems.len(), 1);
    assert_eq!(summary.group_problems[0].target_group_arn, THROTTLED);
    assert_eq!(deregister.num_calls(), 2, "one call per readable group");
}

/// moto has no delegated prefixes: an instance with a secondary IPv4 address, an IPv6 address and
/// a /28 prefix delegated to its interface, staged as DescribeInstances answers it.
fn ec2_with_addresses() -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::types::{
        InstanceIpv4Prefix, InstanceIpv6Address, InstanceNetworkInterface, InstancePrivateIpAddress,
    };
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        let interface = InstanceNetworkInterface::builder()
            .private_ip_addresses(InstancePrivateIpAddress::builder().private_ip_address("10.0.0.5").build())
            .private_ip_addresses(InstancePrivateIpAddress::builder().private_ip_address("10.0.0.9").build())
            .ipv6_addresses(InstanceIpv6Address::builder().ipv6_address("2001:db8:0:1::5").build())
            .ipv4_prefixes(InstanceIpv4Prefix::builder().ipv4_prefix("10.0.1.16/28").build())
            .build();
        let tag = Tag::builder().key("loadBalancerTargetGroup").value(HEALTHY).build();
        let instance = Instance::builder()
            .instance_id(INSTANCE)
            .vpc_id("vpc-1")
            .private_ip_address("10.0.0.5")
            .network_interfaces(interface)
            .tags(tag)
            .build();
        DescribeInstancesOutput::builder().reservations(Reservation::builder().instances(instance).build()).build()
    });
    mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe])
}

#[tokio::test]
async fn ip_targets_match_as_addresses_on_every_interface_and_delegated_prefix() {
    // Targets as an ip-type group may hold them: the IPv6 address written out in full, an address
    // inside the delegated prefix, a secondary address, and two addresses of other hosts.
    let ids = ["2001:0db8:0000:0001:0000:0000:0000:0005", "10.0.1.20", "10.0.0.9", "10.0.1.32", "2001:db8:0:1::6"];
    let health = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health).then_output(move || {
        let mut output = DescribeTargetHealthOutput::builder();
        for id in ids {
            output = output.target_health_descriptions(
                TargetHealthDescription::builder().target(TargetDescription::builder().id(id).port(80).build()).build(),
            );
        }
        output.build()
    });
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .match_requests(|r| {
            let mut ids: Vec<_> = r.targets().iter().filter_map(|t| t.id()).collect();
            ids.sort();
            ids == ["10.0.0.9", "10.0.1.20", "2001:0db8:0000:0001:0000:0000:0000:0005"]
        })
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&after_drain()[0], &after_drain()[1], &health, &deregister]
    );
    let settings = Settings { discovery: Discovery::Tag, ..Settings::default() };
    let summary = drain_instance(&clients(ec2_with_addresses(), &elb), &settings, &event()).await.expect("drained");
    assert_eq!(summary.count(Outcome::Deregistered), 3, "{summary:?}");
    assert_eq!(deregister.num_calls(), 1, "the three targets of this instance, exactly, in one call");
}

#[tokio::test]
async fn a_registration_is_removed_as_soon_as_its_group_is_read_not_after_the_scan() {
    use std::sync::{Arc, Mutex};
    let calls: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let (log_describe, log_deregister) = (calls.clone(), calls.clone());
    // The tag names three groups; the instance is in the first only.
    let describe = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health).then_output(move || {
        let mut log = log_describe.lock().unwrap();
        log.push("describe");
        let mut output = DescribeTargetHealthOutput::builder();
        if log.iter().filter(|c| **c == "describe").count() == 1 {
            let target = TargetDescription::builder().id(INSTANCE).port(80).build();
            output = output.target_health_descriptions(TargetHealthDescription::builder().target(target).build());
        }
        output.build()
    });
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets).then_output(move || {
        log_deregister.lock().unwrap().push("deregister");
        DeregisterTargetsOutput::builder().build()
    });
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&after_drain()[0], &after_drain()[1], &describe, &deregister]
    );
    let settings = Settings { discovery: Discovery::Tag, scan_concurrency: 1, ..Settings::default() };
    let summary = drain_instance(&clients(ec2_client(), &elb), &settings, &event()).await.expect("drained");
    assert_eq!(summary.count(Outcome::Deregistered), 1);
    assert_eq!(*calls.lock().unwrap(), ["describe", "deregister", "describe", "describe"]);
}

#[tokio::test]
async fn the_deadline_stops_the_scan_and_the_groups_not_reached_are_reported() {
    use spot_drainer::{GroupOutcome, Pacing};
    let describe = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health).then_output(health(&[80]));
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&after_drain()[0], &after_drain()[1], &describe, &deregister]
    );
    // One describe at once, then one a second: the second group's would come after the deadline.
    let pacing = Pacing { describe_rate: 1, describe_burst: 1, ..Pacing::default() };
    let settings = Settings { discovery: Discovery::Tag, scan_concurrency: 1, pacing, ..Settings::default() };
    let stop_by = tokio::time::Instant::now() + Duration::from_millis(300);
    let error = drain_one(
        &Drainer::new(&clients(ec2_client(), &elb), &settings, &TargetGroupCache::default()),
        &event(),
        Some(stop_by),
    )
    .await
    .unwrap_err();
    let DrainError::Incomplete(summary) = error else { panic!("expected an incomplete drain, got {error}") };
    assert_eq!(summary.count(Outcome::Deregistered), 1, "the group reached in time is drained");
    let not_reached: Vec<_> = summary.group_problems.iter().filter(|p| p.outcome == GroupOutcome::NotReached).collect();
    assert_eq!(not_reached.len(), 2, "{:?}", summary.group_problems);
    assert_eq!(describe.num_calls(), 1, "no group is described after the deadline");
    assert_eq!(summary.failures(), 2, "so Lambda retries the event for what is left");
}

#[tokio::test]
async fn groups_attached_as_traffic_sources_are_found_through_the_auto_scaling_group() {
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
    use aws_sdk_autoscaling::types::{AutoScalingGroup, TrafficSourceIdentifier};
    const VIA_TRAFFIC: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/via-traffic-source/9";
    let describe_instance = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        let tag = Tag::builder().key("aws:autoscaling:groupName").value("fleet").build();
        let instance =
            Instance::builder().instance_id(INSTANCE).vpc_id("vpc-1").private_ip_address("10.0.0.5").tags(tag).build();
        DescribeInstancesOutput::builder().reservations(Reservation::builder().instances(instance).build()).build()
    });
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe_instance]);
    // No TargetGroupARNs: the group is attached the newer way, as a traffic source, beside a
    // Classic Load Balancer, which is not a target group.
    let describe_group = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .match_requests(|r| r.auto_scaling_group_names() == ["fleet"])
        .then_output(|| {
            let elbv2 = TrafficSourceIdentifier::builder().identifier(VIA_TRAFFIC).r#type("elbv2").build();
            let classic = TrafficSourceIdentifier::builder().identifier("classic-lb").r#type("elb").build();
            let group = AutoScalingGroup::builder()
                .auto_scaling_group_name("fleet")
                .traffic_sources(elbv2)
                .traffic_sources(classic)
                .build();
            DescribeAutoScalingGroupsOutput::builder().auto_scaling_groups(group).build()
        });
    let autoscaling = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&describe_group]);
    let describe = health_rule(VIA_TRAFFIC, &[8080]);
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .match_requests(|r| r.target_group_arn() == Some(VIA_TRAFFIC))
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&after_drain()[0], &after_drain()[1], &describe, &deregister]
    );
    let aws = AwsClients { ec2, elb, autoscaling };
    let summary = drain_instance(&aws, &Settings { discovery: Discovery::Auto, ..Settings::default() }, &event())
        .await
        .expect("drained");
    assert_eq!(summary.discovered_by, Some(Discovery::Asg));
    assert_eq!(summary.count(Outcome::Deregistered), 1, "{summary:?}");
    assert_eq!(summary.registrations[0].registration.target_group_arn, VIA_TRAFFIC);
    assert_eq!((describe.num_calls(), deregister.num_calls()), (1, 1));
}

#[tokio::test]
async fn each_drains_summary_is_published_to_the_notices_topic() {
    use aws_sdk_sns::operation::publish_batch::PublishBatchOutput;
    let publish = mock!(aws_sdk_sns::Client::publish_batch)
        .match_requests(|r| {
            let entries = r.publish_batch_request_entries();
            r.topic_arn() == Some("arn:aws:sns:us-east-1:123456789012:notices")
                && entries.len() == 1
                && entries[0].message().contains(INSTANCE)
                && entries[0].message().contains("\"deregistered\"")
                && entries[0].message_attributes().and_then(|a| a.get("outcome")).and_then(|v| v.string_value())
                    == Some("drained")
        })
        .then_output(|| PublishBatchOutput::builder().build());
    let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]);
    let describe = health_rule(TWO_PORTS, &[80]);
    let others = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health).then_output(health(&[]));
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&after_drain()[0], &after_drain()[1], &describe, &others, &deregister]
    );
    let settings = Settings { discovery: Discovery::Tag, ..Settings::default() };
    let aws = clients(ec2_client(), &elb);
    let cache = TargetGroupCache::default();
    let notices = spot_drainer::Notices { sns: &sns, topic_arn: "arn:aws:sns:us-east-1:123456789012:notices" };
    let drainer = Drainer { notices: Some(notices), ..Drainer::new(&aws, &settings, &cache) };
    let handled = spot_drainer::drain_event(&drainer, &event(), None).await;
    assert!(matches!(handled, spot_drainer::Handled::Single(Ok(_))));
    assert_eq!(publish.num_calls(), 1, "one summary, published once, as the rule matched it");
}

/// An instance whose tag names one group, `HEALTHY`.
fn ec2_in_one_group() -> aws_sdk_ec2::Client {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        let tag = Tag::builder().key("loadBalancerTargetGroup").value(HEALTHY).build();
        let instance =
            Instance::builder().instance_id(INSTANCE).vpc_id("vpc-1").private_ip_address("10.0.0.5").tags(tag).build();
        DescribeInstancesOutput::builder().reservations(Reservation::builder().instances(instance).build()).build()
    });
    mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe])
}

// Paused clock: the describe budget's refill is the only wait.
#[tokio::test(start_paused = true)]
async fn the_drained_groups_facts_are_never_read_past_the_stop_time() {
    use aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute;
    use spot_drainer::Pacing;
    // One describe token at once, then one a second: the search takes the first, so the group's
    // delay could be read a second later at the earliest.
    let pacing = Pacing { describe_rate: 1, describe_burst: 1, ..Pacing::default() };
    let settings = Settings { discovery: Discovery::Tag, pacing, ..Settings::default() };
    for (stop_in, read) in [(Duration::from_millis(500), false), (Duration::from_secs(10), true)] {
        let describe = health_rule(HEALTHY, &[80]);
        let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
            .then_output(|| DeregisterTargetsOutput::builder().build());
        let attributes =
            mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_group_attributes).then_output(|| {
                let delay =
                    TargetGroupAttribute::builder().key("deregistration_delay.timeout_seconds").value("300").build();
                DescribeTargetGroupAttributesOutput::builder().attributes(delay).build()
            });
        let [_, tags] = after_drain();
        let elb = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&describe, &deregister, &attributes, &tags]
        );
        let stop_by = tokio::time::Instant::now() + stop_in;
        let (aws, cache) = (clients(ec2_in_one_group(), &elb), TargetGroupCache::default());
        let drainer = Drainer::new(&aws, &settings, &cache);
        let summary = drain_one(&drainer, &event(), Some(stop_by)).await.expect("drained");
        assert_eq!(summary.count(Outcome::Deregistered), 1, "{summary:?}");
        assert!(tokio::time::Instant::now() <= stop_by, "answered by the stop time ({stop_in:?})");
        assert_eq!(attributes.num_calls(), usize::from(read), "stop in {stop_in:?}");
        // A delay of 300 s outlasts the notice: named only when it could be read.
        assert_eq!(summary.delay_beyond_notice.len(), usize::from(read), "{summary:?}");
    }
}
