//! Benchmark: spot-drainer in `scan` mode against moto, for 10, 100 and 500 target groups, at
//! concurrency 1 and at the default (8). Prints API calls per event and wall time, as a table,
//! and writes it to bench-results/spot-drainer.md.
//!
//! Wall time here is dominated by moto (a Python server on this machine), so read it for the
//! effect of concurrency, not as what AWS would take.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use harness_runtime::paths::{publish_bench_table, read_event};
use harness_services::call_counter::CallCounter;
use harness_services::ec2::{create_group, launch, register, vpc_with_subnet};
use harness_services::moto::Moto;
use spot_drainer::settings::Pacing;
use spot_drainer::{drain_instance, AwsClients, Discovery, Settings};

const GROUP_COUNTS: [usize; 3] = [10, 100, 500];
const CONCURRENCIES: [usize; 2] = [1, 8];
const RUNS: usize = 3;

struct Row {
    groups: usize,
    concurrency: usize,
    calls: std::collections::BTreeMap<String, usize>,
    median: Duration,
    spread: (Duration, Duration),
}

#[tokio::main]
async fn main() {
    let mut rows = Vec::new();
    for groups in GROUP_COUNTS {
        let moto = Moto::start();
        let config = moto.sdk_config().await;
        let counter = CallCounter::default();
        let ec2 = aws_sdk_ec2::Client::from_conf(aws_sdk_ec2::config::Builder::from(&config).interceptor(counter.clone()).build());
        let elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(&config).interceptor(counter.clone()).build(),
        );
        let aws = AwsClients { ec2: ec2.clone(), elb: elb.clone(), autoscaling: aws_sdk_autoscaling::Client::new(&config) };
        let (vpc_id, subnet_id) = vpc_with_subnet(&ec2, "10.0").await;
        let instance_id = launch(&ec2, &subnet_id, &[]).await.id;
        let mut arns = Vec::with_capacity(groups);
        for i in 0..groups {
            arns.push(create_group(&elb, &vpc_id, &format!("bench-{i}"), TargetTypeEnum::Instance).await);
        }
        let mut event = read_event("spot-interruption-warning.json");
        event["detail"]["instance-id"] = serde_json::json!(instance_id);

        for concurrency in CONCURRENCIES {
            // Unpaced: this bench measures calls and the effect of concurrency against moto; the
            // function's own ELB budgets (pacing) would make the wall time theirs.
            let unpaced = Pacing { describe_rate: u32::MAX, describe_burst: u32::MAX, deregister_rate: u32::MAX, deregister_burst: u32::MAX };
            let settings = Settings { discovery: Discovery::Scan, scan_concurrency: concurrency, pacing: unpaced, ..Settings::default() };
            let mut times = Vec::with_capacity(RUNS);
            let mut calls = Default::default();
            for _ in 0..RUNS {
                for arn in &arns {
                    register(&elb, arn, &instance_id, 8080).await;
                }
                counter.reset();
                let start = Instant::now();
                let summary = drain_instance(&aws, &settings, &event).await.expect("drain");
                times.push(start.elapsed());
                assert_eq!(summary.registrations.len(), groups, "every group drained");
                calls = counter.snapshot();
            }
            times.sort();
            rows.push(Row { groups, concurrency, calls, median: times[RUNS / 2], spread: (times[0], times[RUNS - 1]) });
            eprintln!("measured {groups} groups at concurrency {concurrency}");
        }
    }

    let mut table = String::new();
    let _ = writeln!(table, "spot-drainer, scan mode, against moto ({RUNS} runs each; one instance registered in every group)\n");
    let _ = writeln!(table, "| target groups | concurrency | API calls per event | of which | wall time median | min..max |");
    let _ = writeln!(table, "|---:|---:|---:|---|---:|---|");
    for row in &rows {
        let total: usize = row.calls.values().sum();
        let detail: Vec<String> = row.calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {:.0} ms | {:.0}..{:.0} ms |",
            row.groups,
            row.concurrency,
            total,
            detail.join(", "),
            row.median.as_secs_f64() * 1e3,
            row.spread.0.as_secs_f64() * 1e3,
            row.spread.1.as_secs_f64() * 1e3
        );
    }
    publish_bench_table("spot-drainer", &table);
}
