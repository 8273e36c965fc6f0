//! An instance of an Auto Scaling group: its target groups found through the group without a
//! scan, detaching it from the group without lowering the desired capacity, and a reclaim of
//! the whole group looked up once.

use std::collections::BTreeSet;
use std::time::Duration;

use harness_fixtures::spot_drainer::{asg_scene, drain_instance, interruption, settings};
use harness_services::ec2::{describe_group, targets_in};
use spot_drainer::{drain_requests, Action, Discovery, DrainRequest, Drainer, Outcome, Settings, TargetGroupCache};

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
    let group = describe_group(&scene.aws.autoscaling, "web-fleet").await;
    assert_eq!(group.desired_capacity(), Some(2), "a replacement is launched, not the capacity lowered");
    assert!(group.instances().iter().all(|i| i.instance_id() != Some(doomed.as_str())), "detached");
    assert!(!targets_in(&scene.aws.elb, &scene.attached[0]).await.contains(doomed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_recommendation_never_detaches_the_instance() {
    let scene = asg_scene().await;
    let recommended = &scene.instances[0];
    let settings = Settings { detach_from_asg: true, ..settings(Discovery::Asg) };
    let mut recommendation = harness_runtime::paths::read_event("spot-rebalance-recommendation.json");
    recommendation["detail"]["instance-id"] = serde_json::json!(recommended);
    let summary = drain_instance(&scene.aws, &settings, &recommendation).await.expect("drained");
    assert_eq!(summary.detached_from, None, "{summary:?}");
    let group = describe_group(&scene.aws.autoscaling, "web-fleet").await;
    assert!(
        group.instances().iter().any(|i| i.instance_id() == Some(recommended.as_str())),
        "a recommendation may never be followed by an interruption: the instance stays in its group"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaim_of_one_auto_scaling_group_describes_its_instances_and_the_group_once() {
    // A pool reclaim in one batch: every instance of the group warned at once. Looked up one by
    // one, a hundred warnings would be a hundred DescribeInstances and a hundred
    // DescribeAutoScalingGroups calls, throttled by EC2 and Auto Scaling (and a throttled group
    // lookup would fall back to a scan of the VPC).
    let scene = asg_scene().await;
    let warnings: Vec<DrainRequest> =
        scene.instances.iter().map(|id| DrainRequest::notice(id, Action::Terminate)).collect();
    scene.lookups.reset();
    let cache = TargetGroupCache::new(Duration::ZERO);
    let drained = drain_requests(&Drainer::new(&scene.aws, &settings(Discovery::Auto), &cache), &warnings, None).await;
    for summary in drained {
        let summary = summary.expect("drained");
        assert_eq!(
            (summary.discovered_by, summary.count(Outcome::Deregistered)),
            (Some(Discovery::Asg), 2),
            "{summary:?}"
        );
    }
    let lookups = scene.lookups.snapshot();
    assert_eq!(lookups.get("DescribeInstances"), Some(&1), "{lookups:?}");
    assert_eq!(lookups.get("DescribeAutoScalingGroups"), Some(&1), "{lookups:?}");
    for group in &scene.attached {
        assert!(targets_in(&scene.aws.elb, group).await.is_empty(), "{group} still has targets");
    }
}
