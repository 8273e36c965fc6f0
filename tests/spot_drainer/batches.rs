//! Several warnings at once: drained together with one search and one deregistration per
//! group, and an SQS batch of them in which only the bad record is retried.

use harness_fixtures::spot_drainer::{asg_scene, interruption, settings, sqs_batch};
use harness_services::ec2::targets_in;
use serde_json::json;
use spot_drainer::Outcome;
use spot_drainer::{Discovery, DrainError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_drained_together_share_one_search_and_one_deregistration_per_group() {
    let scene = asg_scene().await;
    let requests: Vec<spot_drainer::DrainRequest> = scene
        .instances
        .iter()
        .map(|id| spot_drainer::DrainRequest::notice(id, spot_drainer::Action::Terminate))
        .collect();
    scene.counter.reset();
    let (settings, cache) = (settings(Discovery::Scan), spot_drainer::TargetGroupCache::default());
    let results =
        spot_drainer::drain_requests(&spot_drainer::Drainer::new(&scene.aws, &settings, &cache), &requests, None).await;
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
async fn a_batch_of_warnings_is_drained_in_one_search_and_only_the_bad_record_is_retried() {
    use spot_drainer::{drain_event, Drainer, Handled, TargetGroupCache};
    let scene = asg_scene().await;
    let mut bodies: Vec<(String, String)> =
        scene.instances.iter().enumerate().map(|(i, id)| (format!("m-{i}"), interruption(id).to_string())).collect();
    bodies.push(("m-bad".into(), "{\"not\": \"an EventBridge event\"}".into()));
    // The same warning twice (EventBridge delivers at least once): one drain.
    bodies.push(("m-again".into(), interruption(&scene.instances[0]).to_string()));
    scene.counter.reset();
    let (settings, cache) = (settings(Discovery::Scan), TargetGroupCache::default());
    let handled = drain_event(&Drainer::new(&scene.aws, &settings, &cache), &sqs_batch(&bodies), None).await;
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
async fn a_record_a_strict_type_refuses_fails_alone_and_the_rest_of_the_batch_is_drained() {
    use spot_drainer::{drain_event, Drainer, Handled, TargetGroupCache};
    let scene = asg_scene().await;
    let bodies: Vec<(String, String)> =
        scene.instances.iter().enumerate().map(|(i, id)| (format!("m-{i}"), interruption(id).to_string())).collect();
    let mut batch = sqs_batch(&bodies);
    // An attribute that is not a string: SqsMessage refuses this record, and only this one.
    batch["Records"][1]["attributes"] = json!({"ApproximateReceiveCount": 1});
    let (settings, cache) = (settings(Discovery::Scan), TargetGroupCache::default());
    let handled = drain_event(&Drainer::new(&scene.aws, &settings, &cache), &batch, None).await;
    let Handled::Batch { response, results } = handled else { panic!("an SQS event is a batch") };
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["m-1"]);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    for group in scene.attached.iter().chain([&scene.unattached]) {
        assert!(!targets_in(&scene.aws.elb, group).await.contains(&scene.instances[0]), "m-0 drained from {group}");
    }
}
