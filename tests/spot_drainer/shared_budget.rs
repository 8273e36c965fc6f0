//! The account's ELB budget, shared by every invocation through a DynamoDB table (moto's):
//! two invocations draw on one burst, two drains at once stay inside the API's bucket, and a
//! table that is gone leaves the drain to pace itself.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use harness_fixtures::spot_drainer::{fleet, interruption, registrations};
use harness_services::aws_front::{ApiBucket, AwsFront};
use harness_services::dynamo::create_table;
use harness_services::ec2::{launch, many_groups, register_all, targets_in, vpc_with_subnet};
use harness_services::moto::Moto;
use spot_drainer::{
    drain_one, drain_requests, Action, AwsClients, BudgetTable, Discovery, DrainRequest, Drainer, Outcome, Pacing,
    Settings, TargetGroupCache, TokenBucket,
};
use tokio::time::Instant;

const TABLE: &str = "elb-budget";
/// For the tests of sharing: moto on a loaded two-core machine may answer slower than the
/// function's default 250 ms, which would count as a failed table.
const PATIENT: Duration = Duration::from_secs(3);

/// Takes up to `tries` tokens, each refused when it would come later than 300 ms from now.
async fn take_soon(bucket: &TokenBucket, tries: usize) -> usize {
    let mut taken = 0;
    for _ in 0..tries {
        if bucket.take_by(Some(Instant::now() + Duration::from_millis(300))).await {
            taken += 1;
        }
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_invocations_draw_on_one_burst() {
    let moto = Moto::start();
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_table(&dynamodb, TABLE).await;
    let table = BudgetTable { dynamodb: &dynamodb, table: TABLE };
    // A burst of 4, refilled at one a second: no fifth token within 300 ms.
    // A table timeout no loaded machine reaches: this test is of the sharing, not of a failure.
    let first = TokenBucket::shared(1, 4, table, "elb-deregister", PATIENT);
    let second = TokenBucket::shared(1, 4, table, "elb-deregister", PATIENT);
    let (a, b) = tokio::join!(take_soon(&first, 3), take_soon(&second, 3));
    assert_eq!(a + b, 4, "each alone would have taken 3: {a} + {b}");
    let item = dynamodb
        .get_item()
        .table_name(TABLE)
        .key("id", AttributeValue::S("elb-deregister".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item");
    let seq = item.item().and_then(|i| i.get("seq")).and_then(|v| v.as_n().ok()).cloned();
    assert_eq!(seq.as_deref(), Some("4"), "one write per token taken: {item:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drains_at_once_stay_inside_the_accounts_bucket() {
    const GROUPS: usize = 20;
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let (ec2, direct_elb) = (aws_sdk_ec2::Client::new(&config), aws_sdk_elasticloadbalancingv2::Client::new(&config));
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamodb, TABLE).await;
    // The API's deregistration bucket: 4 at once, 8 a second; describe calls unmetered.
    let bucket = ApiBucket::new("deregister", &["DeregisterTargets"], 4, 8);
    let front = AwsFront::start(moto.port, Duration::ZERO, vec![bucket]).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(&config).endpoint_url(front.endpoint()).build(),
    );
    let aws = AwsClients { ec2: ec2.clone(), elb, autoscaling: aws_sdk_autoscaling::Client::new(&config) };
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.60").await;
    let groups = many_groups(&direct_elb, &vpc_id, "shared", GROUPS).await;
    // Each invocation may spend the API's whole rate, its burst one short.
    let pacing = Pacing {
        describe_rate: 100,
        describe_burst: 100,
        deregister_rate: 8,
        deregister_burst: 3,
        budget_table_timeout: PATIENT,
    };
    let settings = Settings { discovery: Discovery::Scan, pacing, ..Settings::default() };
    let (cache_a, cache_b) = (TargetGroupCache::default(), TargetGroupCache::default());

    // Two invocations, a warning each, every group to leave: first each paced alone, then
    // sharing the table.
    for shared in [false, true] {
        let (a, b) = (launch(&ec2, &subnet_id, &[]).await.id, launch(&ec2, &subnet_id, &[]).await.id);
        register_all(&direct_elb, &groups, &[a.clone(), b.clone()]).await;
        front.reset();
        let table = shared.then_some(BudgetTable { dynamodb: &dynamodb, table: TABLE });
        let first = Drainer { budget_table: table, ..Drainer::new(&aws, &settings, &cache_a) };
        let second = Drainer { budget_table: table, ..Drainer::new(&aws, &settings, &cache_b) };
        let (warn_a, warn_b) =
            ([DrainRequest::notice(&a, Action::Terminate)], [DrainRequest::notice(&b, Action::Terminate)]);
        let (drained_a, drained_b) =
            tokio::join!(drain_requests(&first, &warn_a, None), drain_requests(&second, &warn_b, None));
        let throttled = front.counts().throttled;
        if !shared {
            // The scene is one where two budgets of one invocation each overrun the account's.
            assert!(throttled.contains_key("DeregisterTargets"), "{:?}", front.counts());
            continue;
        }
        assert!(throttled.is_empty(), "sharing the table, nothing is throttled: {throttled:?}");
        for drained in drained_a.into_iter().chain(drained_b) {
            let summary = drained.expect("drained");
            assert_eq!(summary.count(Outcome::Deregistered), GROUPS, "{summary:?}");
        }
        for group in &groups {
            let left = targets_in(&direct_elb, group).await;
            assert!(!left.contains(&a) && !left.contains(&b), "{group}: {left:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_table_that_is_gone_or_slow_leaves_the_drain_to_pace_itself_in_time() {
    for slow in [false, true] {
        let moto = Moto::start();
        let config = moto.sdk_config().await;
        let fleet = fleet(&moto, false).await;
        // The table's endpoint drops every connection unanswered, or answers after 2 s.
        let table_front = AwsFront::start(moto.port, Duration::from_secs(if slow { 2 } else { 0 }), Vec::new()).await;
        if !slow {
            table_front.cut();
        }
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config).endpoint_url(table_front.endpoint()).build(),
        );
        // The own bucket starts from what the item held, here nothing: it refills at the rate.
        let pacing = Pacing { describe_rate: 20, deregister_rate: 20, ..Pacing::default() };
        let settings = Settings { discovery: Discovery::Scan, pacing, ..Settings::default() };
        let cache = TargetGroupCache::new(Duration::ZERO);
        let table = BudgetTable { dynamodb: &dynamodb, table: TABLE };
        let drainer = Drainer { budget_table: Some(table), ..Drainer::new(&fleet.aws, &settings, &cache) };
        // Every take of the search waits on the table at once; each that waited its turn must not
        // then try the table again, or the groups are not reached by the stop time.
        let stop_by = Instant::now() + Duration::from_secs(4);
        let summary = drain_one(&drainer, &interruption(&fleet.doomed.id), Some(stop_by))
            .await
            .unwrap_or_else(|e| panic!("drained without the table (slow: {slow}): {e}"));
        assert_eq!(summary.count(Outcome::Deregistered), 3, "slow: {slow}: {summary:?}");
        let left = registrations(&fleet).await;
        assert!(left.iter().all(|(_, id, _)| *id != fleet.doomed.id && *id != fleet.doomed.ip), "{left:?}");
        assert_eq!(left.len(), 3, "the bystander keeps its registrations: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_fails_half_way_leaves_no_fresh_burst_behind() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let table_front = AwsFront::start(moto.port, Duration::ZERO, Vec::new()).await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config).endpoint_url(table_front.endpoint()).build(),
    );
    create_table(&dynamodb, TABLE).await;
    let table = BudgetTable { dynamodb: &dynamodb, table: TABLE };
    // The account's burst of 4 spent through the table, then the table goes away.
    let bucket = TokenBucket::shared(1, 4, table, "elb-deregister", Duration::from_millis(250));
    assert_eq!(take_soon(&bucket, 4).await, 4);
    table_front.cut();
    // A second later the item would hold one token: the take finds the table gone, and its own
    // bucket goes on from that one token, not from a full burst of 4.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(bucket.take_by(Some(Instant::now() + Duration::from_secs(2))).await, "taken from its own bucket");
    assert_eq!(take_soon(&bucket, 3).await, 0, "a fallback must not spend a second burst");
}
