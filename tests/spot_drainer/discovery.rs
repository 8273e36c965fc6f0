//! How the doomed instance's target groups are found (the tag, a scan of its VPC, or auto), and
//! how long a warm environment keeps the VPC's group list.

use std::time::Duration;

use aws_sdk_ec2::types::Tag;
use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use harness_fixtures::spot_drainer::{
    asg_scene, assert_drained, drain_instance, fleet, interruption, registrations, settings, TAG_KEY,
};
use harness_services::ec2::{create_group, register, vpc_with_subnet};
use harness_services::moto::Moto;
use spot_drainer::Discovery;
use spot_drainer::Outcome;

// --- The tag, a scan, or auto --------------------------------------------------------------------

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

// --- The VPC's group list, kept by a warm environment --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_environment_reuses_the_vpcs_group_list_for_a_while() {
    use spot_drainer::TargetGroupCache;
    let scene = asg_scene().await;
    let settings = settings(Discovery::Scan);
    for (ttl, listings) in [(Duration::from_secs(60), 1), (Duration::ZERO, 2)] {
        let cache = TargetGroupCache::new(ttl);
        scene.counter.reset();
        for id in &scene.instances {
            spot_drainer::drain_one(
                &spot_drainer::Drainer::new(&scene.aws, &settings, &cache),
                &interruption(id),
                None,
            )
            .await
            .expect("drained");
        }
        assert_eq!(scene.counter.snapshot().get("DescribeTargetGroups"), Some(&listings), "cache of {ttl:?}");
    }
}
