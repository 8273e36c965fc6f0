//! Benchmark: spot-drainer in `scan` mode against moto, for 10, 100 and 500 target groups, at
//! concurrency 1 and at the default (8). Prints API calls per event and wall time, as a table,
//! and writes it to bench-results/spot-drainer.md.
//!
//! Wall time here is dominated by moto (a Python server on this machine), so read it for the
//! effect of concurrency, not as what AWS would take.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription};
use e2e_tests::call_counter::CallCounter;
use e2e_tests::moto::Moto;
use e2e_tests::paths::{read_event, workspace_root};
use spot_drainer::{drain_instance, Discovery, Settings};

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
        let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await.expect("vpc");
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();
        let subnet = ec2.create_subnet().vpc_id(&vpc_id).cidr_block("10.0.1.0/24").send().await.expect("subnet");
        let subnet_id = subnet.subnet().and_then(|s| s.subnet_id()).expect("subnet id").to_owned();
        let run = ec2.run_instances().image_id("ami-12c6146b").min_count(1).max_count(1).subnet_id(&subnet_id).send().await;
        let instance_id = run.expect("run").instances()[0].instance_id().expect("id").to_owned();
        let mut arns = Vec::with_capacity(groups);
        for i in 0..groups {
            let group = elb.create_target_group().name(format!("bench-{i}")).protocol(ProtocolEnum::Http).port(80).vpc_id(&vpc_id);
            let group = group.send().await.expect("target group");
            arns.push(group.target_groups()[0].target_group_arn().expect("arn").to_owned());
        }
        let mut event = read_event("spot-interruption-warning.json");
        event["detail"]["instance-id"] = serde_json::json!(instance_id);

        for concurrency in CONCURRENCIES {
            let settings = Settings { discovery: Discovery::Scan, scan_concurrency: concurrency, ..Settings::default() };
            let mut times = Vec::with_capacity(RUNS);
            let mut calls = Default::default();
            for _ in 0..RUNS {
                for arn in &arns {
                    let target = TargetDescription::builder().id(&instance_id).port(8080).build();
                    elb.register_targets().target_group_arn(arn).targets(target).send().await.expect("register");
                }
                counter.reset();
                let start = Instant::now();
                let summary = drain_instance(&ec2, &elb, &settings, &event).await.expect("drain");
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
    print!("{table}");
    let dir = workspace_root().join("bench-results");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("spot-drainer.md"), &table);
}
