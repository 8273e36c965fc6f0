//! The secrets-cache extension, release build, beside the floor function in one sandbox (the
//! harness's Extensions API), against moto:
//! - start to first `next`: the extension's process start until it first polls for an event,
//!   which it holds until its prefetch is in (1 and 10 secrets);
//! - hit latency: p50 and p99 of GETs of a cached secret over one kept-alive localhost connection;
//! - peak RSS: the extension's VmHWM after those;
//! - a function's init that reads one secret: through the extension (which prefetched it) against
//!   straight from Secrets Manager with the SDK, with 5 and 50 ms added before each AWS request
//!   (the harness's AWS front before moto), with no other init work and with 100 ms of it before
//!   the read, from the first process's start to the end of init;
//! - the layer's zip size per architecture (`scripts/build-lambda-zips`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use harness_runtime::lambda_env::Output;
use harness_runtime::paths::workspace_root;
use harness_runtime::process::free_port;
use harness_runtime::sandbox::Sandbox;
use harness_services::aws_front::AwsFront;

const RUNS: usize = 10;
const HITS: usize = 10_000;
const TOKEN: &str = "bench-session-token";

/// One case of the init comparison.
pub struct InitRow {
    pub latency_ms: u64,
    pub other_work_ms: u64,
    pub through_extension: Vec<Duration>,
    pub sdk_at_init: Vec<Duration>,
}

pub struct Figures {
    pub start_to_next: Vec<(usize, Vec<Duration>)>,
    pub init: Vec<InitRow>,
    pub hit: (Duration, Duration),
    pub rss_kib: u64,
}

async fn sandbox(extension: &Path, floor: &Path, env: &[(String, String)], prefetch: &str, port: u16) -> Sandbox {
    let mut env = env.to_vec();
    env.push(("AWS_SESSION_TOKEN".into(), TOKEN.into()));
    env.push(("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT".into(), port.to_string()));
    env.push(("SECRETS_CACHE_PREFETCH".into(), prefetch.into()));
    Sandbox::start(&[("secrets-cache", extension)], floor, "bench", &env, Output::Discard).await.expect("sandbox")
}

pub async fn measure(extension: &Path, floor: &Path, reader: &Path, moto: (u16, &[(String, String)])) -> Figures {
    let (moto_port, moto_env) = moto;
    let mut start_to_next = Vec::new();
    for count in [1, 10] {
        let prefetch: Vec<String> = (0..count).map(|i| format!("bench-cache-{i}")).collect();
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let sandbox = sandbox(extension, floor, moto_env, &prefetch.join(","), free_port()).await;
            let first = sandbox.api.extensions.list()[0].first_next_at.expect("the extension polled");
            times.push(first.duration_since(sandbox.started_at));
            sandbox.shutdown().await;
        }
        start_to_next.push((count, times));
    }
    let port = free_port();
    let sandbox = sandbox(extension, floor, moto_env, "bench-cache-0", port).await;
    let hit = hit_latency(port);
    let rss_kib = sandbox.extension_pid(0).map(harness_runtime::process::peak_rss_kib).unwrap_or(0);
    sandbox.shutdown().await;
    let mut init = Vec::new();
    for (latency, work) in [(5, 0), (50, 0), (5, 100), (50, 100)] {
        let front = AwsFront::start(moto_port, Duration::from_millis(latency), Vec::new()).await;
        let mut env = moto_env.to_vec();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), front.endpoint()));
        env.push(("READ_AT_INIT".into(), "bench-cache-0".into()));
        env.push(("INIT_WORK_MS".into(), work.to_string()));
        let (mut through, mut direct) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            through.push(init_reading(Some(extension), reader, &env).await);
            direct.push(init_reading(None, reader, &env).await);
        }
        init.push(InitRow {
            latency_ms: latency,
            other_work_ms: work,
            through_extension: through,
            sdk_at_init: direct,
        });
    }
    Figures { start_to_next, init, hit, rss_kib }
}

/// One init of `reader` reading its secret, through `extension` when given (prefetching it), else
/// with the SDK: from the first process's start to the end of init. The read is checked.
async fn init_reading(extension: Option<&Path>, reader: &Path, env: &[(String, String)]) -> Duration {
    let mut env = env.to_vec();
    if extension.is_none() {
        env.push(("READ_AT_INIT_VIA".into(), "sdk".into()));
    }
    let port = free_port();
    let sandbox = match extension {
        Some(extension) => sandbox(extension, reader, &env, "bench-cache-0", port).await,
        None => Sandbox::start(&[], reader, "bench", &env, Output::Discard).await.expect("sandbox"),
    };
    let took = sandbox.init_done_at.expect("init ended").duration_since(sandbox.started_at);
    let answer = sandbox.invoke(&serde_json::json!({"path": "/ping"}), Duration::from_secs(10)).await.response();
    assert_eq!(answer["init"]["status"], 200, "the read at init: {answer}");
    sandbox.shutdown().await;
    took
}

/// GETs of one cached secret over one keep-alive connection: p50, p99 (after 100 to warm up).
fn hit_latency(port: u16) -> (Duration, Duration) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the extension");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let request = format!(
        "GET /secretsmanager/get?secretId=bench-cache-0 HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\n\r\n"
    );
    let mut one = || {
        writer.write_all(request.as_bytes()).expect("request");
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("answer");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().expect("length");
            }
            assert!(!line.starts_with("HTTP/1.1 ") || line.starts_with("HTTP/1.1 200"), "{line}");
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
    };
    for _ in 0..100 {
        one();
    }
    let mut times: Vec<Duration> = (0..HITS)
        .map(|_| {
            let start = Instant::now();
            one();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

/// The layer's zip for `arch`, as `scripts/build-lambda-zips` leaves it.
pub fn layer_zip_size(arch: &str) -> Option<u64> {
    let path = workspace_root().join(format!("target/lambda-{arch}/extensions/secrets-cache.zip"));
    std::fs::metadata(path).ok().map(|m| m.len())
}

pub fn table(figures: &Figures) -> String {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let mut table = String::from(
        "\nsecrets-cache (release, x86_64) beside the floor, against moto; start to first next over 10 runs, median (min..max)\n\n",
    );
    table.push_str("| prefetched secrets | start to first next |\n|---:|---:|\n");
    for (count, times) in &figures.start_to_next {
        let (lo, hi) =
            (times.iter().min().copied().unwrap_or_default(), times.iter().max().copied().unwrap_or_default());
        table.push_str(&format!("| {count} | {} ({}..{}) |\n", ms(crate::median(times)), ms(lo), ms(hi)));
    }
    table.push_str(
        "\na function's init reading one secret, first process start to end of init, 10 runs, median (min..max)\n\n",
    );
    table.push_str("| latency added per AWS request | other init work before the read | through secrets-cache (prefetched) | SDK call at init | saved |\n|---:|---:|---:|---:|---:|\n");
    for InitRow { latency_ms: latency, other_work_ms: work, through_extension: through, sdk_at_init: direct } in
        &figures.init
    {
        let spread = |times: &Vec<Duration>| {
            let (lo, hi) =
                (times.iter().min().copied().unwrap_or_default(), times.iter().max().copied().unwrap_or_default());
            format!("{} ({}..{})", ms(crate::median(times)), ms(lo), ms(hi))
        };
        let (a, b) = (crate::median(through), crate::median(direct));
        let saved = (b.as_secs_f64() - a.as_secs_f64()) / b.as_secs_f64().max(1e-9) * 100.0;
        table.push_str(&format!(
            "| {latency} ms | {work} ms | {} | {} | {saved:.0}% |\n",
            spread(through),
            spread(direct)
        ));
    }
    let size = |arch| layer_zip_size(arch).map(|b| format!("{b} B")).unwrap_or_else(|| "not built".into());
    table.push_str(&format!(
        "\nhit, {HITS} GETs over one localhost connection: p50 {:.1} µs, p99 {:.1} µs; peak RSS {} KiB; layer zip arm64 {}, x86_64 {}\n",
        figures.hit.0.as_secs_f64() * 1e6,
        figures.hit.1.as_secs_f64() * 1e6,
        figures.rss_kib,
        size("arm64"),
        size("x86_64"),
    ));
    table
}
