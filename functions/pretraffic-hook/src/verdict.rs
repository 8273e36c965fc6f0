//! Invoking each new version with its probes, and judging the answers. Only `errorType`s,
//! statuses and record ids are compared and reported: an answer's messages and bodies are not
//! copied into the verdict or the log.

use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;

use crate::probes::{probes_for, Expected, Probe};
use crate::settings::Target;

/// A probe a version did not answer as a good version does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeFailure {
    pub version_arn: String,
    pub probe: &'static str,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub probes_run: usize,
    pub failures: Vec<ProbeFailure>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// First wait after Lambda throttled a probe; it doubles up to [`MOST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MOST_BACKOFF: Duration = Duration::from_secs(2);

/// Runs the targets at once, each target's probes one after another (each waits at most
/// `timeout`), and collects the failures. One probe at a time per version: every function's
/// deployment runs this hook, all at once, and spot-drainer's reserved concurrency is small and
/// shared with its live pollers.
pub async fn check_versions(lambda: &aws_sdk_lambda::Client, targets: &[Target], timeout: Duration) -> Verdict {
    let per_target = join_all(targets.iter().map(|target| async move {
        let mut failures = Vec::new();
        let probes = probes_for(target.kind);
        for probe in &probes {
            if let Err(why) = run_probe(lambda, &target.version_arn, probe, timeout).await {
                failures.push(ProbeFailure { version_arn: target.version_arn.clone(), probe: probe.name, why });
            }
        }
        (probes.len(), failures)
    }))
    .await;
    let probes_run = per_target.iter().map(|(run, _)| run).sum();
    Verdict { probes_run, failures: per_target.into_iter().flat_map(|(_, failures)| failures).collect() }
}

async fn run_probe(
    lambda: &aws_sdk_lambda::Client,
    version: &str,
    probe: &Probe,
    timeout: Duration,
) -> Result<(), String> {
    let payload = serde_json::to_vec(&probe.event).map_err(|e| format!("writing the probe: {e}"))?;
    // Throttling says nothing of the build: wait and invoke again, within the probe's time.
    let invoked = tokio::time::timeout(timeout, async {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match lambda.invoke().function_name(version).payload(Blob::new(payload.clone())).send().await {
                Err(error) if error.code() == Some("TooManyRequestsException") => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MOST_BACKOFF);
                }
                other => return other,
            }
        }
    })
    .await;
    let output = match invoked {
        Err(_) => return Err(format!("no answer within {} s", timeout.as_secs())),
        // The version could not be invoked at all (denied, not found): not a pass. Only the
        // error's code and message: the raw response is not copied into the verdict.
        Ok(Err(error)) => {
            let code = error.code().unwrap_or("no error code");
            return Err(format!("not invoked: {code}: {}", error.message().unwrap_or("no message")));
        }
        Ok(Ok(output)) => output,
    };
    let answer: Value = output
        .payload()
        .map(|blob| serde_json::from_slice(blob.as_ref()))
        .transpose()
        .map_err(|_| "answered with something that is not JSON".to_owned())?
        .unwrap_or(Value::Null);
    judge(&probe.expected, output.function_error(), &answer)
}

/// Compares one answer with what a good version answers.
pub fn judge(expected: &Expected, function_error: Option<&str>, answer: &Value) -> Result<(), String> {
    let error_type = answer.get("errorType").and_then(Value::as_str);
    match (expected, function_error) {
        (Expected::ErrorType(wanted), Some(_)) => match error_type {
            Some(got) if got == *wanted => Ok(()),
            Some(got) => Err(format!("answered errorType {got:?}, expected {wanted:?}")),
            None => Err(format!("failed without an errorType, expected {wanted:?}")),
        },
        (Expected::ErrorType(wanted), None) => Err(format!("succeeded, expected errorType {wanted:?}")),
        (_, Some(_)) => Err(format!("failed with errorType {:?}, expected a success", error_type.unwrap_or("none"))),
        (Expected::HttpAnswer { status, body }, None) => {
            let got_status = answer.get("statusCode").and_then(Value::as_u64);
            let got_body = answer.get("body").and_then(Value::as_str);
            if got_status != Some(u64::from(*status)) {
                Err(format!("answered status {got_status:?}, expected {status}"))
            } else if got_body != Some(*body) {
                Err(format!("answered status {status} without the expected body"))
            } else {
                Ok(())
            }
        }
        (Expected::Field { name, value }, None) => match answer.get(*name).and_then(Value::as_str) {
            Some(got) if got == *value => Ok(()),
            got => Err(format!("answered {name} {got:?}, expected {value:?}")),
        },
        (Expected::FailedRecords(ids), None) => {
            let got: Option<Vec<&str>> = answer.get("batchItemFailures").and_then(Value::as_array).map(|failures| {
                failures.iter().filter_map(|f| f.get("itemIdentifier").and_then(Value::as_str)).collect()
            });
            match got {
                Some(got) if got == *ids => Ok(()),
                Some(got) => Err(format!("named failed records {got:?}, expected {ids:?}")),
                None => Err("answered without batchItemFailures".to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_error_type_must_be_the_documented_one() {
        let malformed = Expected::ErrorType("MalformedEvent");
        let answer = |kind: &str| json!({"errorType": kind, "errorMessage": "whatever the message says"});
        assert_eq!(judge(&malformed, Some("Unhandled"), &answer("MalformedEvent")), Ok(()));
        let wrong = judge(&malformed, Some("Unhandled"), &answer("DescribeInstanceFailed")).expect_err("wrong type");
        assert!(wrong.contains("DescribeInstanceFailed") && !wrong.contains("whatever"), "{wrong}");
        assert!(judge(&malformed, None, &json!({"instanceId": "i-1"})).is_err(), "a success is no refusal");
        assert!(judge(&malformed, Some("Unhandled"), &json!("crashed")).is_err());
    }

    #[test]
    fn a_greeting_needs_its_status_and_body_and_no_error() {
        let hello = Expected::HttpAnswer { status: 200, body: "Hello Paul" };
        assert_eq!(judge(&hello, None, &json!({"statusCode": 200, "body": "Hello Paul"})), Ok(()));
        assert!(judge(&hello, None, &json!({"statusCode": 200, "body": "Hello"})).is_err());
        assert!(judge(&hello, None, &json!({"statusCode": 500, "body": "Hello Paul"})).is_err());
        assert!(judge(&hello, Some("Unhandled"), &json!({"errorType": "Internal"})).is_err());
    }

    #[test]
    fn a_batch_answer_must_name_exactly_the_bad_records() {
        let expected = Expected::FailedRecords(&["probe"]);
        let answer = |ids: &[&str]| json!({"batchItemFailures": ids.iter().map(|id| json!({"itemIdentifier": id})).collect::<Vec<_>>()});
        assert_eq!(judge(&expected, None, &answer(&["probe"])), Ok(()));
        assert!(judge(&expected, None, &answer(&[])).is_err(), "a record that is no warning must fail");
        assert!(judge(&expected, None, &json!({})).is_err());
    }
}
