//! Drain summaries to the notices topic (`NOTICES_TOPIC_ARN`), so its subscribers learn what
//! happened, not only that a warning came. A failed publish is logged, never fatal: the drain
//! itself is done, and retrying it for a notice would only repeat it.
//!
//! `PublishBatch` takes 10 entries and 256 KiB in all per call, so batches are cut by both; a
//! summary too large to publish alone (thousands of registrations) is sent shortened, with
//! counts instead of lists, and says so. A drain that went badly is exactly when the summary is
//! long and must still reach the operators.

use std::collections::BTreeMap;

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde::Serialize;

use crate::drainer::Notices;
use crate::event::Action;
use crate::settings::Discovery;
use crate::summary::DrainSummary;

/// PublishBatch's limits: entries per call, and bytes of all messages and attributes together.
const ENTRIES_PER_CALL: usize = 10;
const BYTES_PER_CALL: usize = 256 * 1024;
/// Room kept in each entry for its subject and attribute (both short) and for the call's
/// accounting of them.
const ENTRY_OVERHEAD: usize = 512;

pub async fn publish_summaries(Notices { sns, topic_arn }: Notices<'_>, summaries: &[DrainSummary]) {
    for chunk in batches(summaries.iter().map(notice).collect()) {
        let entries: Vec<PublishBatchRequestEntry> = chunk
            .into_iter()
            .enumerate()
            .filter_map(|(i, notice)| {
                let attribute =
                    MessageAttributeValue::builder().data_type("String").string_value(notice.outcome).build().ok()?;
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .subject(notice.subject)
                    .message(notice.message)
                    .message_attributes("outcome", attribute)
                    .build()
                    .ok()
            })
            .collect();
        match sns.publish_batch().topic_arn(topic_arn).set_publish_batch_request_entries(Some(entries)).send().await {
            Ok(output) if output.failed().is_empty() => {}
            Ok(output) => tracing::warn!(failed = output.failed().len(), "some drain summaries were not published"),
            Err(e) => tracing::warn!(error = %DisplayErrorContext(&e), "drain summaries were not published"),
        }
    }
}

/// One summary as it is published.
struct Notice {
    subject: String,
    message: String,
    outcome: &'static str,
}

impl Notice {
    fn bytes(&self) -> usize {
        self.message.len() + self.subject.len() + ENTRY_OVERHEAD
    }
}

fn notice(summary: &DrainSummary) -> Notice {
    let outcome = if summary.failures() == 0 { "drained" } else { "incomplete" };
    let subject = format!("spot-drainer: {} {outcome}", summary.instance_id);
    let whole = serde_json::to_string(summary).unwrap_or_default();
    let message = if whole.len() + subject.len() + ENTRY_OVERHEAD <= BYTES_PER_CALL {
        whole
    } else {
        serde_json::to_string(&Shortened::of(summary)).unwrap_or_default()
    };
    Notice { subject, message, outcome }
}

/// The notices in calls of at most 10 entries and 256 KiB.
fn batches(notices: Vec<Notice>) -> Vec<Vec<Notice>> {
    let mut batches: Vec<Vec<Notice>> = Vec::new();
    let mut bytes = 0;
    for notice in notices {
        let full =
            batches.last().is_none_or(|b| b.len() == ENTRIES_PER_CALL || bytes + notice.bytes() > BYTES_PER_CALL);
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += notice.bytes();
        if let Some(batch) = batches.last_mut() {
            batch.push(notice);
        }
    }
    batches
}

/// A summary with counts instead of lists, for one too large to publish whole.
#[derive(Serialize)]
struct Shortened<'s> {
    instance_id: &'s str,
    action: Action,
    discovery: Discovery,
    #[serde(skip_serializing_if = "Option::is_none")]
    discovered_by: Option<Discovery>,
    instance_found: bool,
    /// Registrations by outcome (`deregistered`, `failed`, ...).
    registrations: BTreeMap<String, usize>,
    /// Groups that could not be searched, by outcome.
    group_problems: BTreeMap<String, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_since_warning: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifecycle: Option<&'s str>,
    /// Drained groups whose delay outlasts the notice, and groups a controller manages.
    delay_beyond_notice: usize,
    managed_by: usize,
    /// Always true: the lists were too long for one notice; the function's log has them whole.
    shortened: bool,
}

impl<'s> Shortened<'s> {
    fn of(summary: &'s DrainSummary) -> Self {
        let mut registrations = BTreeMap::new();
        for r in &summary.registrations {
            *registrations.entry(name(&r.outcome)).or_default() += 1;
        }
        let mut group_problems = BTreeMap::new();
        for g in &summary.group_problems {
            *group_problems.entry(name(&g.outcome)).or_default() += 1;
        }
        Shortened {
            instance_id: &summary.instance_id,
            action: summary.action,
            discovery: summary.discovery,
            discovered_by: summary.discovered_by,
            instance_found: summary.instance_found,
            registrations,
            group_problems,
            seconds_since_warning: summary.seconds_since_warning,
            lifecycle: summary.lifecycle.as_deref(),
            delay_beyond_notice: summary.delay_beyond_notice.len(),
            managed_by: summary.managed_by.len(),
            shortened: true,
        }
    }
}

/// The name an outcome is written with in the summary (its serde name).
fn name(outcome: &impl Serialize) -> String {
    serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::{Outcome, Registration, RegistrationOutcome};

    fn summary_with(registrations: usize) -> DrainSummary {
        let mut summary = DrainSummary::new("i-0123456789abcdef0", Action::Terminate, Discovery::Scan);
        for i in 0..registrations {
            summary.registrations.push(RegistrationOutcome {
                registration: Registration {
                    target_group_arn: format!(
                        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/g{i}/0123456789abcdef"
                    ),
                    target_id: "i-0123456789abcdef0".into(),
                    port: Some(8080),
                    availability_zone: None,
                },
                outcome: if i % 2 == 0 { Outcome::Deregistered } else { Outcome::Failed },
                error: (i % 2 == 1).then(|| "Throttling: Rate exceeded".into()),
            });
        }
        summary
    }

    #[test]
    fn batches_hold_ten_entries_and_256_kib_at_most() {
        // About 60 KB each: four fit a call, so ten go in three.
        let notices: Vec<Notice> = (0..10).map(|_| notice(&summary_with(300))).collect();
        assert!(notices[0].bytes() > 50_000, "{}", notices[0].bytes());
        let batches = batches(notices);
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 10);
        assert!(batches.iter().all(|b| b.len() <= 10 && b.iter().map(Notice::bytes).sum::<usize>() <= BYTES_PER_CALL));
        assert_eq!(batches.len(), 3);
        let small = batches_of_small(25);
        assert_eq!(small.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    }

    #[tokio::test]
    async fn ten_large_summaries_are_all_published_within_the_calls_limits() {
        use aws_sdk_sns::operation::publish_batch::PublishBatchOutput;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let publish = mock!(aws_sdk_sns::Client::publish_batch)
            .match_requests(move |r| {
                let entries = r.publish_batch_request_entries();
                let bytes: usize =
                    entries.iter().map(|e| e.message().len() + e.subject().unwrap_or_default().len()).sum();
                recorded.lock().unwrap().push((entries.len(), bytes));
                true
            })
            .then_output(|| PublishBatchOutput::builder().build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]);
        let summaries: Vec<DrainSummary> = (0..10).map(|_| summary_with(300)).collect();
        publish_summaries(Notices { sns: &sns, topic_arn: "arn:aws:sns:us-east-1:123456789012:notices" }, &summaries)
            .await;
        let calls = seen.lock().unwrap().clone();
        assert_eq!(calls.iter().map(|c| c.0).sum::<usize>(), 10, "every summary published: {calls:?}");
        assert!(calls.iter().all(|(n, bytes)| *n <= 10 && *bytes <= BYTES_PER_CALL), "{calls:?}");
        assert_eq!(publish.num_calls(), calls.len());
    }

    fn batches_of_small(n: usize) -> Vec<Vec<Notice>> {
        batches((0..n).map(|_| notice(&summary_with(1))).collect())
    }

    #[test]
    fn a_summary_too_large_alone_is_shortened_and_says_so() {
        let huge = summary_with(3000);
        let notice = notice(&huge);
        assert!(notice.bytes() <= BYTES_PER_CALL);
        let message: serde_json::Value = serde_json::from_str(&notice.message).unwrap();
        assert_eq!(message["shortened"], true);
        assert_eq!(message["registrations"]["deregistered"], 1500);
        assert_eq!(message["registrations"]["failed"], 1500);
        assert_eq!(notice.outcome, "incomplete");
    }
}
