//! Nothing left to do: the same warning twice, an instance already gone or in no group (alone or
//! in a batch), and a retry after the instance terminated.

use std::time::Duration;

use harness_fixtures::spot_drainer::{drain_instance, fleet, interruption, registrations, settings};
use harness_services::ec2::{launch, targets_in};
use harness_services::moto::Moto;
use spot_drainer::{drain_requests, Action, Discovery, DrainRequest, Drainer, Outcome, TargetGroupCache};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_gone_from_a_batch_does_not_hold_up_the_others() {
    // EC2 fails a DescribeInstances naming one unknown id as a whole; the batch's lookup then
    // asks for each instance alone.
    let moto = Moto::start();
    let fleet = fleet(&moto, false).await;
    let warnings = [
        DrainRequest::notice("i-0123456789abcdef0", Action::Terminate),
        DrainRequest::notice(&fleet.doomed.id, Action::Terminate),
    ];
    let cache = TargetGroupCache::new(Duration::ZERO);
    let drained = drain_requests(&Drainer::new(&fleet.aws, &settings(Discovery::Scan), &cache), &warnings, None).await;
    let [gone, doomed] = <[_; 2]>::try_from(drained).expect("two results");
    assert!(!gone.expect("a vanished instance is not an error").instance_found);
    assert_eq!(doomed.expect("drained").count(Outcome::Deregistered), 3);
    let left = registrations(&fleet).await;
    assert!(left.iter().all(|(_, id, _)| *id != fleet.doomed.id && *id != fleet.doomed.ip), "{left:?}");
}
