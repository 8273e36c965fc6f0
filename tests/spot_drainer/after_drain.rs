//! After the deregistrations, what the drained groups do next: a deregistration delay longer
//! than the notice's time left keeps connections open when the instance dies, and a group a
//! Kubernetes controller manages may register the target again. Both are named in the summary.

use aws_sdk_elasticloadbalancingv2::types::{Tag, TargetGroupAttribute, TargetTypeEnum};
use harness_fixtures::spot_drainer::{drain_instance, interruption, settings};
use harness_services::ec2::{create_group, launch, register, vpc_with_subnet};
use harness_services::moto::Moto;
use serde_json::json;
use spot_drainer::{AwsClients, Discovery, Outcome};

async fn set_delay(elb: &aws_sdk_elasticloadbalancingv2::Client, group: &str, seconds: u32) {
    elb.modify_target_group_attributes()
        .target_group_arn(group)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value(seconds.to_string())
                .build(),
        )
        .send()
        .await
        .expect("modify_target_group_attributes");
}

/// The interruption warning for `instance_id`, sent now (its notice has two minutes left).
fn warning_now(instance_id: &str) -> serde_json::Value {
    let mut event = interruption(instance_id);
    let now = aws_sdk_ec2::primitives::DateTime::from(std::time::SystemTime::now());
    event["time"] = json!(now.fmt(aws_sdk_ec2::primitives::DateTimeFormat::DateTime).expect("a time"));
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_whose_delay_outlasts_the_notice_and_groups_a_controller_manages_are_named() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.50").await;
    // AWS's default delay (300 s) outlasts the notice; 30 s fits in it.
    let slow = create_group(&elb, &vpc_id, "slow", TargetTypeEnum::Instance).await;
    let quick = create_group(&elb, &vpc_id, "quick", TargetTypeEnum::Instance).await;
    let cluster = create_group(&elb, &vpc_id, "k8s-web", TargetTypeEnum::Instance).await;
    set_delay(&elb, &quick, 30).await;
    set_delay(&elb, &cluster, 30).await;
    elb.add_tags()
        .resource_arns(&cluster)
        .tags(Tag::builder().key("elbv2.k8s.aws/cluster").value("prod-eks").build())
        .send()
        .await
        .expect("add_tags");
    let doomed = launch(&ec2, &subnet_id, &[]).await;
    for group in [&slow, &quick, &cluster] {
        register(&elb, group, &doomed.id, 80).await;
    }
    let aws = AwsClients::new(&config);

    let summary = drain_instance(&aws, &settings(Discovery::Scan), &warning_now(&doomed.id)).await.expect("drained");
    assert_eq!(summary.count(Outcome::Deregistered), 3, "{summary:?}");
    let beyond: Vec<(&str, u64)> = summary
        .delay_beyond_notice
        .iter()
        .map(|d| (d.target_group_arn.as_str(), d.deregistration_delay_seconds))
        .collect();
    assert_eq!(beyond, [(slow.as_str(), 300)], "{summary:?}");
    let left = summary.delay_beyond_notice[0].seconds_left;
    assert!((100..=120).contains(&left), "a notice sent now has about two minutes left: {left}");
    let managed: Vec<(&str, &str)> =
        summary.managed_by.iter().map(|m| (m.target_group_arn.as_str(), m.cluster.as_str())).collect();
    assert_eq!(managed, [(cluster.as_str(), "prod-eks")], "{summary:?}");
    assert_eq!(summary.managed_by[0].controller, "aws-load-balancer-controller");
    // Both go out with the summary.
    let written = serde_json::to_value(&summary).expect("json");
    assert_eq!(written["delay_beyond_notice"][0]["deregistration_delay_seconds"], 300);
    assert_eq!(written["managed_by"][0]["cluster"], "prod-eks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_whose_notice_has_run_out_names_every_group_still_delaying() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.51").await;
    let quick = create_group(&elb, &vpc_id, "quick", TargetTypeEnum::Instance).await;
    set_delay(&elb, &quick, 30).await;
    let doomed = launch(&ec2, &subnet_id, &[]).await;
    register(&elb, &quick, &doomed.id, 80).await;
    let aws = AwsClients::new(&config);
    // The sample's warning is days old: a retry long after the notice.
    let summary = drain_instance(&aws, &settings(Discovery::Scan), &interruption(&doomed.id)).await.expect("drained");
    assert_eq!(summary.delay_beyond_notice.len(), 1, "{summary:?}");
    assert_eq!(summary.delay_beyond_notice[0].seconds_left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_recommendation_has_no_notice_to_outlast() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.52").await;
    let shared = create_group(&elb, &vpc_id, "shared", TargetTypeEnum::Instance).await;
    let doomed = launch(&ec2, &subnet_id, &[]).await;
    let bystander = launch(&ec2, &subnet_id, &[]).await;
    register(&elb, &shared, &doomed.id, 80).await;
    register(&elb, &shared, &bystander.id, 80).await;
    let aws = AwsClients::new(&config);
    let mut recommendation = harness_runtime::paths::read_event("spot-rebalance-recommendation.json");
    recommendation["detail"]["instance-id"] = json!(doomed.id);
    let summary = drain_instance(&aws, &settings(Discovery::Scan), &recommendation).await.expect("drained");
    assert_eq!(summary.count(Outcome::Deregistered), 1, "{summary:?}");
    assert!(summary.delay_beyond_notice.is_empty(), "{summary:?}");
}
