//! Cold start, first invocation, peak memory and package size of every function, beside the
//! floor (a bare lambda_runtime echo), plus hello-api's warm latency.
//!
//! Each function's release binary (from its Lambda zip build) is started against a local
//! Runtime API, with its AWS endpoints pointed at moto, and sent one of its sample events:
//! - init: process start until its first `GET .../invocation/next`;
//! - first invocation: event handed over until the response arrives;
//! - peak RSS: the process's VmHWM after that invocation.
//!
//! Repeated RUNS times; the table gives median and min..max, and the ratio to the floor.
//! Then the secrets-cache extension's own figures ([`secrets_cache`]).

mod secrets_cache;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness_runtime::lambda_env::Output;
use harness_runtime::paths::{publish_bench_table, read_event, venv_bin, workspace_root};
use harness_runtime::process::{peak_rss_kib, KillOnDrop};
use harness_runtime::runtime_api::{self, RuntimeApi};
use harness_services::moto::Moto;

const RUNS: usize = 20;
const WARM_INVOCATIONS: usize = 10_000;
const TOKEN: &str = "0bench00-0000-4000-8000-000000000001";

struct Function {
    name: &'static str,
    event: serde_json::Value,
    env: Vec<(String, String)>,
}

#[derive(Default)]
struct Figures {
    init: Vec<Duration>,
    first: Vec<Duration>,
    /// init + first invocation of the same run: what a cold event waits for.
    cold: Vec<Duration>,
    rss_kib: Vec<u64>,
}

pub(crate) fn median<T: Copy + Ord>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn spread<T: Copy + Ord>(values: &[T]) -> (T, T) {
    (*values.iter().min().expect("values"), *values.iter().max().expect("values"))
}

fn spawn(api: &RuntimeApi, binary: &Path, function: &Function) -> KillOnDrop {
    api.spawn_function(binary, function.name, &function.env, Output::Discard)
}

async fn measure(binary: &Path, function: &Function) -> Figures {
    let mut figures = Figures::default();
    for _ in 0..RUNS {
        let api = RuntimeApi::start().await;
        let started = Instant::now();
        let child = spawn(&api, binary, function);
        let ready = loop {
            if let Some(at) = api.first_next_at() {
                break at;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{} never asked for an event", function.name);
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        let sent = Instant::now();
        let answer = api.invoke(&function.event, Duration::from_secs(30)).await;
        let done = Instant::now();
        if let runtime_api::Answer::Error(error) = &answer {
            panic!("{} failed its bench event: {error}", function.name);
        }
        figures.init.push(ready.duration_since(started));
        figures.first.push(done.duration_since(sent));
        figures.cold.push(ready.duration_since(started) + done.duration_since(sent));
        figures.rss_kib.push(peak_rss_kib(child.0.id()));
        drop(child);
    }
    figures
}

fn zip_size(arch: &str, name: &str) -> Option<u64> {
    std::fs::metadata(workspace_root().join(format!("target/lambda-{arch}/{name}/bootstrap.zip"))).ok().map(|m| m.len())
}

/// The `bootstrap` inside the function's x86_64 zip: exactly what Lambda would run.
fn unpacked_bootstrap(name: &str) -> PathBuf {
    let zip = workspace_root().join(format!("target/lambda-x86_64/{name}/bootstrap.zip"));
    assert!(zip.exists(), "{} is missing: run scripts/build-lambda-zips x86_64", zip.display());
    let dir = workspace_root().join(format!("target/lambda-x86_64/{name}/unpacked"));
    let script = "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])";
    let status = Command::new(venv_bin("python")).args(["-c", script]).arg(&zip).arg(&dir).status();
    assert!(status.map(|s| s.success()).unwrap_or(false), "unpacking {}", zip.display());
    let binary = dir.join("bootstrap");
    let _ = Command::new("chmod").arg("+x").arg(&binary).status();
    binary
}

/// The secrets-cache figures: the extension from the x86_64 layer, beside the floor and the
/// secret reader from their zips, against moto on `moto_port`.
async fn measure_secrets_cache(moto_port: u16, moto_env: &[(String, String)]) -> secrets_cache::Figures {
    let extension = workspace_root().join("target/lambda-x86_64/extensions/unpacked/extensions/secrets-cache");
    let floor = unpacked_bootstrap("floor-echo");
    let reader = unpacked_bootstrap("secrets-reader-function");
    secrets_cache::measure(&unpacked_layer(&extension), &floor, &reader, (moto_port, moto_env)).await
}

/// The extension inside the x86_64 layer zip, unpacked to `binary`'s place.
fn unpacked_layer(binary: &Path) -> PathBuf {
    let zip = workspace_root().join("target/lambda-x86_64/extensions/secrets-cache.zip");
    assert!(zip.exists(), "{} is missing: run scripts/build-lambda-zips x86_64", zip.display());
    let dir = workspace_root().join("target/lambda-x86_64/extensions/unpacked");
    let script = "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])";
    let status = Command::new(venv_bin("python")).args(["-c", script]).arg(&zip).arg(&dir).status();
    assert!(status.map(|s| s.success()).unwrap_or(false), "unpacking {}", zip.display());
    let _ = Command::new("chmod").arg("+x").arg(binary).status();
    binary.to_owned()
}

/// p50 and p99 of WARM_INVOCATIONS invocations of one warm process (after 100 to warm up).
async fn warm_latency(function: &Function) -> (Duration, Duration) {
    let api = RuntimeApi::start().await;
    let _child = spawn(&api, &unpacked_bootstrap(function.name), function);
    let body = serde_json::to_vec(&function.event).expect("event");
    for _ in 0..100 {
        api.invoke_bytes(body.clone().into(), Duration::from_secs(10)).await;
    }
    let mut times = Vec::with_capacity(WARM_INVOCATIONS);
    for _ in 0..WARM_INVOCATIONS {
        let start = Instant::now();
        api.invoke_bytes(body.clone().into(), Duration::from_secs(10)).await;
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    // moto for the functions that call AWS.
    let moto = Moto::start();
    let seeded = Command::new(venv_bin("python"))
        .arg(workspace_root().join("bench/cold-start/seed_moto.py"))
        .args([&moto.endpoint, TOKEN])
        .output()
        .expect("seeding moto");
    assert!(seeded.status.success(), "seeding moto: {}", String::from_utf8_lossy(&seeded.stderr));
    let secret_arn = String::from_utf8_lossy(&seeded.stdout).trim().to_owned();
    let aws_env = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = moto.env();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    };

    let functions = [
        Function { name: "floor-echo", event: read_event("hello-rest-api.json"), env: vec![] },
        Function { name: "hello-api", event: read_event("hello-rest-api.json"), env: vec![] },
        // The instance is unknown to moto: one DescribeInstances, then a logged no-op.
        Function { name: "spot-drainer", event: read_event("spot-interruption-warning.json"), env: aws_env(&[]) },
        // testSecret of a generic secret: DescribeSecret and GetSecretValue.
        Function {
            name: "secret-rotation",
            event: serde_json::json!({"Step": "testSecret", "SecretId": secret_arn, "ClientRequestToken": TOKEN}),
            env: aws_env(&[]),
        },
        // An event-source batch of two messages: one BatchWriteItem.
        Function {
            name: "mq-poller",
            event: read_event("mq-activemq-event-source.json"),
            env: aws_env(&[("TABLE_NAME", "bench-mq")]),
        },
    ];

    // BENCH_ONLY=secrets-cache: the extension's figures alone (its layer and the floor built).
    if std::env::var("BENCH_ONLY").is_ok_and(|only| only == "secrets-cache") {
        let cache = measure_secrets_cache(moto.port, &aws_env(&[])).await;
        publish_bench_table("secrets-cache", &secrets_cache::table(&cache));
        return;
    }
    let mut rows = Vec::new();
    for function in &functions {
        let binary = unpacked_bootstrap(function.name);
        let figures = measure(&binary, function).await;
        eprintln!("measured {}", function.name);
        rows.push((function.name, figures));
    }

    // Warm: one process, WARM_INVOCATIONS events in a row, for hello-api and for the floor (which
    // shows what the Runtime API round trip itself costs on this machine).
    let hello_warm = warm_latency(&functions[1]).await;
    let floor_warm = warm_latency(&functions[0]).await;
    let cache = measure_secrets_cache(moto.port, &aws_env(&[])).await;
    drop(moto);

    let floor = &rows[0].1;
    let (floor_init, floor_first, floor_cold, floor_rss) =
        (median(&floor.init), median(&floor.first), median(&floor.cold), median(&floor.rss_kib));
    let ratio = |value: Duration, floor: Duration| value.as_secs_f64() / floor.as_secs_f64();
    let with_spread = |values: &[Duration]| {
        let (lo, hi) = spread(values);
        format!("{} ({}..{})", ms(median(values)), ms(lo), ms(hi))
    };
    // What the binaries were built with, when the caller says (scripts/bench-cold-start does).
    let variant = std::env::var("BENCH_VARIANT").map(|v| format!(" [{v}]")).unwrap_or_default();
    let mut table = String::new();
    table.push_str(&format!(
        "Cold start and size{variant}, x86_64 release binaries against a local Runtime API (AWS calls to moto), {RUNS} runs each; median (min..max) and ratio to the floor\n\n"
    ));
    table.push_str("| function | zip arm64 | zip x86_64 | init | x floor | first invocation | x floor | init + first | x floor | peak RSS | x floor |\n");
    table.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (name, f) in &rows {
        let rss = median(&f.rss_kib);
        let size = |arch| zip_size(arch, name).map(|b| format!("{b} B")).unwrap_or_else(|| "not built".into());
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {:.2} | {} | {:.2} | {} | {:.2} | {} KiB | {:.2} |\n",
            size("arm64"),
            size("x86_64"),
            with_spread(&f.init),
            ratio(median(&f.init), floor_init),
            with_spread(&f.first),
            ratio(median(&f.first), floor_first),
            with_spread(&f.cold),
            ratio(median(&f.cold), floor_cold),
            rss,
            rss as f64 / floor_rss as f64,
        ));
    }
    for (name, (p50, p99)) in [("hello-api", hello_warm), ("floor-echo", floor_warm)] {
        table.push_str(&format!(
            "\n{name} warm, {WARM_INVOCATIONS} invocations through the Runtime API: p50 {:.1} µs, p99 {:.1} µs",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        ));
    }
    table.push('\n');
    table.push_str(&secrets_cache::table(&cache));
    publish_bench_table("cold-start", &table);
}
