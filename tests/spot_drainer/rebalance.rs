//! A rebalance recommendation leaves each group its last healthy targets; the interruption
//! warning that may follow drains them.

use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use harness_fixtures::spot_drainer::{drain_instance, interruption, settings};
use harness_services::ec2::{create_group, launch, register, targets_in, vpc_with_subnet};
use harness_services::moto::Moto;
use serde_json::json;
use spot_drainer::{AwsClients, Discovery, Outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_that_would_empty_a_group_is_deferred_and_the_warning_drains_it() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.30").await;
    let alone = create_group(&elb, &vpc_id, "only-target", TargetTypeEnum::Instance).await;
    let shared = create_group(&elb, &vpc_id, "shared", TargetTypeEnum::Instance).await;
    let doomed = launch(&ec2, &subnet_id, &[]).await;
    let bystander = launch(&ec2, &subnet_id, &[]).await;
    register(&elb, &alone, &doomed.id, 80).await;
    register(&elb, &shared, &doomed.id, 80).await;
    register(&elb, &shared, &bystander.id, 80).await;
    let aws = AwsClients::new(&config);

    let mut recommendation = harness_runtime::paths::read_event("spot-rebalance-recommendation.json");
    recommendation["detail"]["instance-id"] = json!(doomed.id);
    let summary = drain_instance(&aws, &settings(Discovery::Scan), &recommendation).await.expect("a deferral succeeds");
    assert_eq!(summary.count(Outcome::Deferred), 1, "{summary:?}");
    assert_eq!(summary.count(Outcome::Deregistered), 1, "the shared group keeps the bystander: {summary:?}");
    assert!(targets_in(&elb, &alone).await.contains(&doomed.id), "the group's only healthy target was kept");
    assert!(!targets_in(&elb, &shared).await.contains(&doomed.id), "a group with other healthy targets drained");

    let summary = drain_instance(&aws, &settings(Discovery::Scan), &interruption(&doomed.id)).await.expect("drained");
    assert_eq!(summary.count(Outcome::Deferred), 0);
    assert!(targets_in(&elb, &alone).await.is_empty(), "the warning drains what the recommendation kept");
    assert_eq!(targets_in(&elb, &shared).await, [bystander.id.clone()].into());
}
