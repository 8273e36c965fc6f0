//! Benchmark: spot-drainer against the ELB API's own limits. Its ELB calls go through a front
//! for moto that enforces the account's two buckets and answers `Throttling` beyond them:
//! describe calls 40 at once refilled at 10 a second (AWS's documented figures), deregistrations
//! 20 at once refilled at 4 a second (a conservative figure for the mutating bucket). For 500
//! target groups and 1, 5, 10 and 100 simultaneous warnings, drained together as one batch of
//! the warnings queue, in `scan` mode, and in `auto` mode with an Auto Scaling group attached to
//! 10 of them, it prints the seconds until the last registration is gone, the lower bound the two
//! buckets allow, ELB calls by operation, and the throttled calls. A pool reclaim split by the
//! queue between its two pollers is measured too: 100 warnings as two batches of 50 drained at
//! once, sharing the budget through the budget table (moto's DynamoDB). Writes
//! bench-results/spot-drainer.md.
//!
//! The function runs with its ELB budgets at the API's rates, bursts a quarter short (a
//! deployment that leaves the default half to other callers takes twice as long; the table says
//! so).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use futures::future;
use harness_runtime::paths::publish_bench_table;
use harness_services::aws_front::{ApiBucket, AwsFront};
use harness_services::dynamo::create_table;
use harness_services::ec2::{auto_scaling_group, launch, many_groups, register_all, vpc_with_subnet};
use harness_services::moto::Moto;
use spot_drainer::{
    drain_requests, Action, AwsClients, BudgetTable, Discovery, DrainRequest, Drainer, Pacing, Settings,
    TargetGroupCache,
};
use tokio::time::Instant;

const GROUPS: usize = 500;
const WARNINGS: [usize; 4] = [1, 5, 10, 100];
/// A pool reclaim the queue hands to both its pollers: this many warnings, in two batches.
const SPLIT_RECLAIM: usize = 100;
const BUDGET_TABLE: &str = "elb-budget";
const ASG_GROUPS: usize = 10;
/// The API's buckets, as the front enforces them.
const DESCRIBE: (u32, u32) = (40, 10);
const DEREGISTER: (u32, u32) = (20, 4);

struct Row {
    mode: &'static str,
    warnings: usize,
    batches: usize,
    groups_touched: usize,
    to_last: Duration,
    bound: Duration,
    calls: BTreeMap<String, usize>,
    throttled: BTreeMap<String, usize>,
}

/// The earliest the last deregistration can come: every describe call and every deregistration
/// drawn from its bucket (burst first, then the refill), the last deregistration after its group's
/// describe.
fn lower_bound(describes: usize, deregistrations: usize) -> Duration {
    let after = |calls: usize, (burst, rate): (u32, u32)| calls.saturating_sub(burst as usize) as f64 / f64::from(rate);
    Duration::from_secs_f64(after(describes, DESCRIBE).max(after(deregistrations, DEREGISTER)))
}

/// Drains `batches` at once, each as one invocation of its own (its own group list), drawing on
/// `table` when given; returns the time to the last deregistration and the front's counts.
async fn measure(
    front: &AwsFront,
    aws: &AwsClients,
    settings: &Settings,
    batches: &[&[String]],
    table: Option<BudgetTable<'_>>,
) -> (Duration, BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let requests: Vec<Vec<DrainRequest>> = batches
        .iter()
        .map(|instances| instances.iter().map(|id| DrainRequest::notice(id, Action::Terminate)).collect())
        .collect();
    let caches: Vec<TargetGroupCache> = batches.iter().map(|_| TargetGroupCache::default()).collect();
    let drainers: Vec<Drainer> =
        caches.iter().map(|cache| Drainer { budget_table: table, ..Drainer::new(aws, settings, cache) }).collect();
    front.reset();
    let start = Instant::now();
    let drained =
        future::join_all(drainers.iter().zip(&requests).map(|(drainer, batch)| drain_requests(drainer, batch, None)))
            .await;
    for result in drained.iter().flatten() {
        let summary = result.as_ref().expect("drained");
        assert!(summary.failures() == 0 && !summary.registrations.is_empty(), "{summary:?}");
    }
    let last = front.answered_at("DeregisterTargets").into_iter().max().expect("a deregistration");
    let counts = front.counts();
    (last - start, counts.forwarded, counts.throttled)
}

#[tokio::main]
async fn main() {
    // BENCH_GROUPS: fewer groups for a quick look; the table's figures are for 500.
    let group_count: usize = std::env::var("BENCH_GROUPS").ok().and_then(|v| v.parse().ok()).unwrap_or(GROUPS);
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let direct_elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamodb, BUDGET_TABLE).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let buckets = vec![
        ApiBucket::new(
            "describe",
            &["DescribeTargetGroups", "DescribeTargetHealth", "DescribeTargetGroupAttributes", "DescribeTags"],
            DESCRIBE.0,
            DESCRIBE.1,
        ),
        ApiBucket::new("deregister", &["DeregisterTargets"], DEREGISTER.0, DEREGISTER.1),
    ];
    let front = AwsFront::start(moto.port, Duration::ZERO, buckets).await;
    let aws = AwsClients {
        ec2: ec2.clone(),
        elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(&config).endpoint_url(front.endpoint()).build(),
        ),
        autoscaling: autoscaling.clone(),
    };
    let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.0").await;
    let groups = many_groups(&direct_elb, &vpc_id, "bench", group_count).await;
    let mut loose = Vec::new();
    for _ in 0..WARNINGS[WARNINGS.len() - 1] {
        loose.push(launch(&ec2, &subnet_id, &[]).await.id);
    }
    // The API's rates; bursts a quarter short of its, so calls that reach it bunched (a slow
    // answer, then several at once) still find tokens.
    let whole_budget = Pacing {
        describe_burst: DESCRIBE.0 * 3 / 4,
        describe_rate: DESCRIBE.1,
        deregister_burst: DEREGISTER.0 * 3 / 4,
        deregister_rate: DEREGISTER.1,
        ..Pacing::default()
    };
    let mut rows = Vec::new();

    let scan = Settings { discovery: Discovery::Scan, pacing: whole_budget, ..Settings::default() };
    // One listing page per 400 groups, one DescribeTargetHealth and one DeregisterTargets per
    // group, per batch.
    let scan_bound =
        |batches: usize| lower_bound(batches * (group_count.div_ceil(400) + group_count), batches * group_count);
    for warnings in WARNINGS {
        let instances = &loose[..warnings];
        register_all(&direct_elb, &groups, instances).await;
        let (to_last, calls, throttled) = measure(&front, &aws, &scan, &[instances], None).await;
        let bound = scan_bound(1);
        rows.push(Row {
            mode: "scan",
            warnings,
            batches: 1,
            groups_touched: group_count,
            to_last,
            bound,
            calls,
            throttled,
        });
        eprintln!("measured scan with {warnings} warnings");
    }
    // The same reclaim split between the queue's two pollers: two invocations at once, each a
    // batch of half the warnings, drawing on one budget through the table.
    {
        let instances = &loose[..SPLIT_RECLAIM];
        register_all(&direct_elb, &groups, instances).await;
        let (first, second) = instances.split_at(SPLIT_RECLAIM / 2);
        let table = BudgetTable { dynamodb: &dynamodb, table: BUDGET_TABLE };
        let (to_last, calls, throttled) = measure(&front, &aws, &scan, &[first, second], Some(table)).await;
        let bound = scan_bound(2);
        rows.push(Row {
            mode: "scan, two invocations sharing the budget table",
            warnings: SPLIT_RECLAIM,
            batches: 2,
            groups_touched: group_count,
            to_last,
            bound,
            calls,
            throttled,
        });
        eprintln!("measured scan with {SPLIT_RECLAIM} warnings in two invocations");
    }

    let attached = groups[..ASG_GROUPS].to_vec();
    for warnings in WARNINGS {
        let name = format!("fleet-{warnings}");
        let instances = auto_scaling_group(&autoscaling, &name, &subnet_id, warnings as i32, &attached).await;
        register_all(&direct_elb, &attached, &instances).await;
        let settings = Settings { discovery: Discovery::Auto, pacing: whole_budget, ..Settings::default() };
        let (to_last, calls, throttled) = measure(&front, &aws, &settings, &[&instances], None).await;
        let bound = lower_bound(ASG_GROUPS, ASG_GROUPS);
        rows.push(Row {
            mode: "auto, Auto Scaling group",
            warnings,
            batches: 1,
            groups_touched: ASG_GROUPS,
            to_last,
            bound,
            calls,
            throttled,
        });
        eprintln!("measured auto (ASG) with {warnings} warnings");
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "spot-drainer against moto behind the ELB API's buckets (describe {}+{}/s, deregister {}+{}/s), each batch's warnings drained together, the function's budgets at the API's rates (describe {}+{}/s, deregister {}+{}/s: bursts a quarter short); release build\n",
        DESCRIBE.0, DESCRIBE.1, DEREGISTER.0, DEREGISTER.1,
        whole_budget.describe_burst, whole_budget.describe_rate, whole_budget.deregister_burst, whole_budget.deregister_rate
    );
    let _ = writeln!(table, "| discovery | warnings | batches | groups touched | last registration gone | lower bound | x bound | ELB calls | throttled |");
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---|---:|");
    for row in &rows {
        let listed = |calls: &BTreeMap<String, usize>| {
            calls.iter().map(|(op, n)| format!("{op} {n}")).collect::<Vec<_>>().join(", ")
        };
        let throttled = if row.throttled.is_empty() { "0".to_owned() } else { listed(&row.throttled) };
        let ratio = if row.bound.is_zero() {
            "-".to_owned()
        } else {
            format!("{:.2}", row.to_last.as_secs_f64() / row.bound.as_secs_f64())
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {:.1} s | {:.1} s | {} | {} | {} |",
            row.mode,
            row.warnings,
            row.batches,
            row.groups_touched,
            row.to_last.as_secs_f64(),
            row.bound.as_secs_f64(),
            ratio,
            listed(&row.calls),
            throttled
        );
    }
    let _ = writeln!(
        table,
        "\nThe lower bound: every call drawn from the API's buckets, burst first, then the refill; for a scan, (batches x groups - burst) / rate deregistrations. Drained one by one (an invocation per warning), N warnings would need N times the deregistrations: a lower bound of N x {:.0} s at {group_count} groups. With the default budgets (half the API's) every bound doubles.",
        lower_bound(0, group_count).as_secs_f64()
    );
    publish_bench_table("spot-drainer", &table);
}
