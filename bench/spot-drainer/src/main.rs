//! Benchmark: spot-drainer against the ELB API's own limits. Its ELB calls go through a front
//! for moto that enforces the account's two buckets and answers `Throttling` beyond them:
//! describe calls 40 at once refilled at 10 a second (AWS's documented figures), deregistrations
//! 20 at once refilled at 4 a second (a conservative figure for the mutating bucket). For 500
//! target groups and 1, 5 and 10 simultaneous warnings, drained together as one batch of the
//! warnings queue, in `scan` mode, and in `auto` mode with an Auto Scaling group attached to 10
//! of them, it prints the seconds until the last registration is gone, the lower bound the two
//! buckets allow, ELB calls by operation, and the throttled calls. Writes
//! bench-results/spot-drainer.md.
//!
//! The function runs with its ELB budgets at the API's rates, bursts a quarter short (a
//! deployment that leaves the default half to other callers takes twice as long; the table says
//! so).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};
use harness_runtime::paths::publish_bench_table;
use harness_services::aws_front::{ApiBucket, AwsFront};
use harness_services::ec2::{auto_scaling_group, create_group, launch, vpc_with_subnet};
use harness_services::moto::Moto;
use spot_drainer::{
    drain_requests, Action, AwsClients, Discovery, DrainRequest, Drainer, Pacing, Settings, TargetGroupCache,
};
use tokio::time::Instant;

const GROUPS: usize = 500;
const WARNINGS: [usize; 3] = [1, 5, 10];
const ASG_GROUPS: usize = 10;
/// The API's buckets, as the front enforces them.
const DESCRIBE: (u32, u32) = (40, 10);
const DEREGISTER: (u32, u32) = (20, 4);

struct Row {
    mode: &'static str,
    warnings: usize,
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

/// Registers `instances` in each group on port 8080, one call per group (straight to moto).
async fn register_all(elb: &aws_sdk_elasticloadbalancingv2::Client, groups: &[String], instances: &[String]) {
    for group in groups {
        let mut request = elb.register_targets().target_group_arn(group);
        for id in instances {
            request = request.targets(TargetDescription::builder().id(id).port(8080).build());
        }
        request.send().await.expect("register_targets");
    }
}

async fn measure(
    front: &AwsFront,
    aws: &AwsClients,
    settings: &Settings,
    instances: &[String],
) -> (Duration, BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let requests: Vec<DrainRequest> = instances.iter().map(|id| DrainRequest::notice(id, Action::Terminate)).collect();
    front.reset();
    let start = Instant::now();
    let results = drain_requests(&Drainer::new(aws, settings, &TargetGroupCache::default()), &requests, None).await;
    for result in &results {
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
    let mut groups = Vec::with_capacity(group_count);
    for i in 0..group_count {
        groups.push(create_group(&direct_elb, &vpc_id, &format!("bench-{i}"), TargetTypeEnum::Instance).await);
    }
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
    };
    let mut rows = Vec::new();

    for warnings in WARNINGS {
        let instances = &loose[..warnings];
        register_all(&direct_elb, &groups, instances).await;
        let settings = Settings { discovery: Discovery::Scan, pacing: whole_budget, ..Settings::default() };
        let (to_last, calls, throttled) = measure(&front, &aws, &settings, instances).await;
        // One listing page per 400 groups, one DescribeTargetHealth and one DeregisterTargets per group.
        let bound = lower_bound(group_count.div_ceil(400) + group_count, group_count);
        rows.push(Row { mode: "scan", warnings, groups_touched: group_count, to_last, bound, calls, throttled });
        eprintln!("measured scan with {warnings} warnings");
    }

    let attached = groups[..ASG_GROUPS].to_vec();
    for warnings in WARNINGS {
        let name = format!("fleet-{warnings}");
        let instances = auto_scaling_group(&autoscaling, &name, &subnet_id, warnings as i32, &attached).await;
        register_all(&direct_elb, &attached, &instances).await;
        let settings = Settings { discovery: Discovery::Auto, pacing: whole_budget, ..Settings::default() };
        let (to_last, calls, throttled) = measure(&front, &aws, &settings, &instances).await;
        let bound = lower_bound(ASG_GROUPS, ASG_GROUPS);
        rows.push(Row {
            mode: "auto, Auto Scaling group",
            warnings,
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
        "spot-drainer against moto behind the ELB API's buckets (describe {}+{}/s, deregister {}+{}/s), warnings drained together, the function's budgets at the API's rates (bursts a quarter short); release build\n",
        DESCRIBE.0, DESCRIBE.1, DEREGISTER.0, DEREGISTER.1
    );
    let _ = writeln!(table, "| discovery | warnings | groups touched | last registration gone | lower bound | x bound | ELB calls | throttled |");
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---|---:|");
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
            "| {} | {} | {} | {:.1} s | {:.1} s | {} | {} | {} |",
            row.mode,
            row.warnings,
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
        "\nDrained one by one (an invocation per warning), N warnings would need N times the deregistrations: a lower bound of N x {:.0} s at {group_count} groups. With the default budgets (half the API's) every bound doubles.",
        lower_bound(0, group_count).as_secs_f64()
    );
    publish_bench_table("spot-drainer", &table);
}
