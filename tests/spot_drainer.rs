//! spot-drainer against moto's EC2 and ELBv2: real registrations in, real registrations gone.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ec2::types::Tag;
use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use harness_services::ec2::{create_group, launch, register, vpc_with_subnet, Instance};
use harness_services::moto::Moto;
use serde_json::{json, Value};
use spot_drainer::registration::Outcome;
use spot_drainer::{drain_instance, AwsClients, Discovery, DrainError, Settings};

const TAG_KEY: &str = "loadBalancerTargetGroup";

struct Fleet {
    aws: AwsClients,
    ec2: aws_sdk_ec2::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    vpc_id: String,
    /// The instance to drain and a bystander registered in the same groups.
    doomed: Instance,
    bystander: Instance,
    /// instance-type with a port override; instance-type on the group's port; ip-type.
    /// (moto keys targets by id, so one instance on two ports of one group cannot be staged
    /// here: the mocked test in spot-drainer's own tests covers that case.)
    groups: [String; 3],
}

/// Builds the scene. `tag_groups` decides whether the doomed instance carries the tag.
async fn fleet(moto: &Moto, tag_groups: bool) -> Fleet {
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.20").await;

    let groups = [
        create_group(&elb, &vpc_id, "web-override", TargetTypeEnum::Instance).await,
        create_group(&elb, &vpc_id, "web-default-port", TargetTypeEnum::Instance).await,
        create_group(&elb, &vpc_id, "web-by-ip", TargetTypeEnum::Ip).await,
    ];
    let tag_value = format!("{}, {}\n{}", groups[0], groups[1], groups[2]);
    let tags: Vec<(&str, &str)> = if tag_groups { vec![(TAG_KEY, tag_value.as_str())] } else { vec![] };
    let doomed = launch(&ec2, &subnet_id, &tags).await;
    let bystander = launch(&ec2, &subnet_id, &[]).await;
    for instance in [&doomed, &bystander] {
        register(&elb, &groups[0], &instance.id, 8080).await;
        register(&elb, &groups[1], &instance.id, 80).await;
        register(&elb, &groups[2], &instance.ip, 80).await;
    }
    Fleet { aws: AwsClients::new(&config), ec2, elb, vpc_id, doomed, bystander, groups }
}

/// Every (group, target id, port) registered now.
async fn registrations(fleet: &Fleet) -> Vec<(String, String, Option<i32>)> {
    let mut all = Vec::new();
    for group in &fleet.groups {
        let health =
            fleet.elb.describe_target_health().target_group_arn(group).send().await.expect("describe_target_health");
        for description in health.target_health_descriptions() {
            let target = description.target().expect("target");
            all.push((group.clone(), target.id().unwrap_or_default().to_owned(), target.port()));
        }
    }
    all.sort();
    all
}

fn interruption(instance_id: &str) -> Value {
    let mut event = harness_runtime::paths::read_event("spot-interruption-warning.json");
    event["detail"]["instance-id"] = json!(instance_id);
    event
}

fn settings(discovery: Discovery) -> Settings {
    Settings { discovery, ..Settings::default() }
}

async fn assert_drained(fleet: &Fleet, discovery: Discovery, expect_by: Discovery) {
    let before = registrations(fleet).await;
    assert_eq!(before.len(), 6, "scene: {before:?}");
    let summary = drain_instance(&fleet.aws, &settings(discovery), &interruption(&fleet.doomed.id))
        .await
        .expect("drain succeeds");
    assert_eq!(summary.discovered_by, Some(expect_by));
    assert_eq!(summary.count(Outcome::Deregistered), 3, "{summary:?}");

    let after = registrations(fleet).await;
    let doomed_left: Vec<_> =
        after.iter().filter(|(_, id, _)| *id == fleet.doomed.id || *id == fleet.doomed.ip).collect();
    assert!(doomed_left.is_empty(), "still registered: {doomed_left:?}");
    // The bystander keeps all its registrations, ports included.
    let bystander = |group: &String, id: &str, port| (group.clone(), id.to_owned(), Some(port));
    let expected_bystander = {
        let mut v = vec![
            bystander(&fleet.groups[0], &fleet.bystander.id, 8080),
            bystander(&fleet.groups[1], &fleet.bystander.id, 80),
            bystander(&fleet.groups[2], &fleet.bystander.ip, 80),
        ];
        v.sort();
        v
    };
    assert_eq!(after, expected_bystander);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_mode_removes_every_registration_with_its_port() {
    let moto = Moto::start();
    let fleet = fleet(&moto, true).await;
    assert_drained(&fleet, Discovery::Tag, Discovery::Tag).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_mode_finds_instance_and_ip_groups_in_the_vpc() {
    let moto = Moto::start();
    let fleet = fleet(&moto, false).await;
    // A group in another VPC with a target of the same IP must not be touched.
    let (other_vpc_id, _) = vpc_with_subnet(&fleet.ec2, "10.30").await;
    assert_ne!(other_vpc_id, fleet.vpc_id);
    let elsewhere = create_group(&fleet.elb, &other_vpc_id, "elsewhere", TargetTypeEnum::Ip).await;
    register(&fleet.elb, &elsewhere, &fleet.doomed.ip, 80).await;

    assert_drained(&fleet, Discovery::Scan, Discovery::Scan).await;
    let untouched = fleet.elb.describe_target_health().target_group_arn(&elsewhere).send().await.expect("health");
    assert_eq!(untouched.target_health_descriptions().len(), 1, "the other VPC's group was touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_uses_the_tag_when_present_and_scans_otherwise() {
    let moto = Moto::start();
    let tagged = fleet(&moto, true).await;
    assert_drained(&tagged, Discovery::Auto, Discovery::Tag).await;

    let moto = Moto::start();
    let untagged = fleet(&moto, false).await;
    assert_drained(&untagged, Discovery::Auto, Discovery::Scan).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_twice_succeeds_with_nothing_left_to_do() {
    let moto = Moto::start();
    let fleet = fleet(&moto, true).await;
    let event = interruption(&fleet.doomed.id);
    let first = drain_instance(&fleet.aws, &settings(Discovery::Auto), &event).await.expect("first");
    assert_eq!(first.count(Outcome::Deregistered), 3);
    let second = drain_instance(&fleet.aws, &settings(Discovery::Auto), &event).await.expect("second");
    assert!(second.registrations.is_empty(), "{second:?}");
    assert_eq!(registrations(&fleet).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_instance_and_instance_in_no_group_are_no_ops() {
    let moto = Moto::start();
    let fleet = fleet(&moto, false).await;

    let gone = drain_instance(&fleet.aws, &settings(Discovery::Auto), &interruption("i-0123456789abcdef0"))
        .await
        .expect("a vanished instance is not an error");
    assert!(!gone.instance_found);

    let subnet = fleet.ec2.describe_subnets().send().await.expect("subnets");
    let subnet_id = subnet
        .subnets()
        .iter()
        .find(|s| s.vpc_id() == Some(fleet.vpc_id.as_str()))
        .and_then(|s| s.subnet_id())
        .expect("subnet")
        .to_owned();
    let loner = launch(&fleet.ec2, &subnet_id, &[]).await;
    let alone = drain_instance(&fleet.aws, &settings(Discovery::Auto), &interruption(&loner.id))
        .await
        .expect("an instance in no group is not an error");
    assert!(alone.instance_found && alone.registrations.is_empty());
    assert_eq!(registrations(&fleet).await.len(), 6, "nothing else was touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_naming_a_deleted_group_is_skipped_and_the_rest_drained() {
    let moto = Moto::start();
    let fleet = fleet(&moto, true).await;
    let deleted = create_group(&fleet.elb, &fleet.vpc_id, "deleted-soon", TargetTypeEnum::Instance).await;
    fleet.elb.delete_target_group().target_group_arn(&deleted).send().await.expect("delete");
    let tag_value = format!("{deleted},{}", fleet.groups.join(","));
    fleet
        .ec2
        .create_tags()
        .resources(&fleet.doomed.id)
        .tags(Tag::builder().key(TAG_KEY).value(tag_value).build())
        .send()
        .await
        .expect("create_tags");

    let summary = drain_instance(&fleet.aws, &settings(Discovery::Tag), &interruption(&fleet.doomed.id))
        .await
        .expect("a deleted group is nothing to drain");
    assert_eq!(summary.count(Outcome::Deregistered), 3);
    assert_eq!(summary.group_problems.len(), 1);
    assert_eq!(summary.group_problems[0].target_group_arn, deleted);
    assert_eq!(registrations(&fleet).await.len(), 3);
}

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

/// A VPC with three instance-type groups, two of them attached to an Auto Scaling group of two
/// instances and one not; every instance registered in all three.
struct AsgScene {
    _moto: Moto,
    aws: AwsClients,
    counter: harness_services::call_counter::CallCounter,
    instances: Vec<String>,
    attached: Vec<String>,
    unattached: String,
}

async fn asg_scene() -> AsgScene {
    use harness_services::call_counter::CallCounter;
    use harness_services::ec2::auto_scaling_group;
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let counter = CallCounter::default();
    let aws = AwsClients {
        ec2: aws_sdk_ec2::Client::new(&config),
        elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(&config).interceptor(counter.clone()).build(),
        ),
        autoscaling: aws_sdk_autoscaling::Client::new(&config),
    };
    let (vpc_id, subnet_id) = vpc_with_subnet(&aws.ec2, "10.40").await;
    let attached = vec![
        create_group(&aws.elb, &vpc_id, "asg-web", TargetTypeEnum::Instance).await,
        create_group(&aws.elb, &vpc_id, "asg-api", TargetTypeEnum::Instance).await,
    ];
    let unattached = create_group(&aws.elb, &vpc_id, "by-hand", TargetTypeEnum::Instance).await;
    let instances = auto_scaling_group(&aws.autoscaling, "web-fleet", &subnet_id, 2, &attached).await;
    assert_eq!(instances.len(), 2);
    for group in attached.iter().chain([&unattached]) {
        for id in &instances {
            register(&aws.elb, group, id, 8080).await;
        }
    }
    AsgScene { _moto: moto, aws, counter, instances, attached, unattached }
}

async fn targets_in(elb: &aws_sdk_elasticloadbalancingv2::Client, group: &str) -> BTreeSet<String> {
    let health = elb.describe_target_health().target_group_arn(group).send().await.expect("describe_target_health");
    health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_finds_the_auto_scaling_groups_target_groups_without_a_scan() {
    let scene = asg_scene().await;
    let (doomed, survivor) = (&scene.instances[0], &scene.instances[1]);
    scene.counter.reset();
    let summary = drain_instance(&scene.aws, &settings(Discovery::Auto), &interruption(doomed)).await.expect("drained");
    let calls = scene.counter.snapshot();
    assert_eq!(summary.discovered_by, Some(Discovery::Asg));
    assert_eq!(summary.count(Outcome::Deregistered), 2, "{summary:?}");
    for group in &scene.attached {
        assert_eq!(
            targets_in(&scene.aws.elb, group).await,
            BTreeSet::from([survivor.clone()]),
            "only the doomed instance left {group}"
        );
    }
    assert_eq!(calls.get("DescribeTargetGroups"), None, "no scan: {calls:?}");
    assert_eq!(calls.get("DescribeTargetHealth"), Some(&2), "only the attached groups are described: {calls:?}");
    // The documented trade-off: a group not attached to the Auto Scaling group is not searched
    // in auto mode (scan mode finds it).
    assert!(targets_in(&scene.aws.elb, &scene.unattached).await.contains(doomed));
    let scanned = drain_instance(&scene.aws, &settings(Discovery::Scan), &interruption(doomed)).await.expect("scan");
    assert_eq!(scanned.count(Outcome::Deregistered), 1);
    assert!(!targets_in(&scene.aws.elb, &scene.unattached).await.contains(doomed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detaching_from_the_auto_scaling_group_keeps_its_desired_capacity() {
    let scene = asg_scene().await;
    let doomed = &scene.instances[0];
    let settings = Settings { detach_from_asg: true, ..settings(Discovery::Asg) };
    let summary = drain_instance(&scene.aws, &settings, &interruption(doomed)).await.expect("drained");
    assert_eq!(summary.detached_from.as_deref(), Some("web-fleet"));
    let groups = scene
        .aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("web-fleet")
        .send()
        .await
        .expect("describe");
    let group = &groups.auto_scaling_groups()[0];
    assert_eq!(group.desired_capacity(), Some(2), "a replacement is launched, not the capacity lowered");
    assert!(group.instances().iter().all(|i| i.instance_id() != Some(doomed.as_str())), "detached");
    assert!(!targets_in(&scene.aws.elb, &scene.attached[0]).await.contains(doomed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_environment_reuses_the_vpcs_group_list_for_a_while() {
    use spot_drainer::TargetGroupCache;
    let scene = asg_scene().await;
    let settings = settings(Discovery::Scan);
    for (ttl, listings) in [(Duration::from_secs(60), 1), (Duration::ZERO, 2)] {
        let cache = TargetGroupCache::new(ttl);
        scene.counter.reset();
        for id in &scene.instances {
            spot_drainer::drain_instance_by(&scene.aws, &settings, &cache, &interruption(id), None)
                .await
                .expect("drained");
        }
        assert_eq!(scene.counter.snapshot().get("DescribeTargetGroups"), Some(&listings), "cache of {ttl:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_drained_together_share_one_search_and_one_deregistration_per_group() {
    let scene = asg_scene().await;
    let requests: Vec<spot_drainer::event::DrainRequest> = scene
        .instances
        .iter()
        .map(|id| spot_drainer::event::DrainRequest::notice(id, spot_drainer::event::Action::Terminate))
        .collect();
    scene.counter.reset();
    let results = spot_drainer::drain_requests(
        &scene.aws,
        &settings(Discovery::Scan),
        &spot_drainer::TargetGroupCache::default(),
        &requests,
        None,
    )
    .await;
    let calls = scene.counter.snapshot();
    for (result, id) in results.iter().zip(&scene.instances) {
        let summary = result.as_ref().expect("drained");
        assert_eq!((summary.instance_id.as_str(), summary.count(Outcome::Deregistered)), (id.as_str(), 3));
    }
    for group in scene.attached.iter().chain([&scene.unattached]) {
        assert!(targets_in(&scene.aws.elb, group).await.is_empty());
    }
    assert_eq!(
        (calls.get("DescribeTargetHealth"), calls.get("DeregisterTargets")),
        (Some(&3), Some(&3)),
        "once per group for both: {calls:?}"
    );
    assert_eq!(calls.get("DescribeTargetGroups"), Some(&1), "the VPC listed once for both: {calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_instance_terminated_removes_its_instance_targets_and_leaves_ip_targets() {
    let moto = Moto::start();
    let fleet = fleet(&moto, false).await;
    fleet.ec2.terminate_instances().instance_ids(&fleet.doomed.id).send().await.expect("terminate");
    let summary =
        drain_instance(&fleet.aws, &settings(Discovery::Scan), &interruption(&fleet.doomed.id)).await.expect("drained");
    assert!(summary.addresses_released, "{summary:?}");
    // Registrations by instance id are its own still: none is left (moto may drop them itself).
    for group in &fleet.groups[..2] {
        assert!(!targets_in(&fleet.elb, group).await.contains(&fleet.doomed.id), "{summary:?}");
    }
    assert!(summary.registrations.iter().all(|r| r.registration.target_id == fleet.doomed.id), "{summary:?}");
    // Its address may already be another instance's: the ip target is left to the health checks.
    assert!(targets_in(&fleet.elb, &fleet.groups[2]).await.contains(&fleet.doomed.ip));
}

/// An SQS event as Lambda's event source delivers it (the record of events/, one per body).
fn sqs_batch(bodies: &[(String, String)]) -> Value {
    let fixture = harness_runtime::paths::read_event("spot-warnings-sqs-batch.json");
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            let mut record = fixture["Records"][0].clone();
            record["messageId"] = json!(id);
            record["body"] = json!(body);
            record
        })
        .collect();
    json!({"Records": records})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_warnings_is_drained_in_one_search_and_only_the_bad_record_is_retried() {
    use spot_drainer::{handle_event, Handled, TargetGroupCache};
    let scene = asg_scene().await;
    let mut bodies: Vec<(String, String)> =
        scene.instances.iter().enumerate().map(|(i, id)| (format!("m-{i}"), interruption(id).to_string())).collect();
    bodies.push(("m-bad".into(), "{\"not\": \"an EventBridge event\"}".into()));
    // The same warning twice (EventBridge delivers at least once): one drain.
    bodies.push(("m-again".into(), interruption(&scene.instances[0]).to_string()));
    scene.counter.reset();
    let handled = handle_event(
        &scene.aws,
        None,
        &settings(Discovery::Scan),
        &TargetGroupCache::default(),
        &sqs_batch(&bodies),
        None,
    )
    .await;
    let calls = scene.counter.snapshot();
    let Handled::Batch { response, results } = handled else { panic!("an SQS event is a batch") };
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["m-bad"]);
    assert_eq!(results.len(), 4);
    assert!(matches!(results[2], Err(DrainError::MalformedEvent(_))));
    for group in scene.attached.iter().chain([&scene.unattached]) {
        assert!(targets_in(&scene.aws.elb, group).await.is_empty(), "both instances drained from {group}");
    }
    assert_eq!((calls.get("DescribeTargetHealth"), calls.get("DeregisterTargets")), (Some(&3), Some(&3)), "{calls:?}");
    let answer = serde_json::to_value(&response).expect("json");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m-bad"}]}),
        "the shape Lambda's SQS source reads"
    );
}

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
