//! Drain summaries to the notices topic (`NOTICES_TOPIC_ARN`), so its subscribers learn what
//! happened, not only that a warning came. A failed publish is logged, never fatal: the drain
//! itself is done, and retrying it for a notice would only repeat it.

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use crate::drainer::Notices;
use crate::summary::DrainSummary;

/// PublishBatch's limit.
const ENTRIES_PER_CALL: usize = 10;

pub async fn publish_summaries(Notices { sns, topic_arn }: Notices<'_>, summaries: &[DrainSummary]) {
    for chunk in summaries.chunks(ENTRIES_PER_CALL) {
        let entries: Vec<PublishBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, summary)| {
                let outcome = if summary.failures() == 0 { "drained" } else { "incomplete" };
                let attribute =
                    MessageAttributeValue::builder().data_type("String").string_value(outcome).build().ok()?;
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .subject(format!("spot-drainer: {} {outcome}", summary.instance_id))
                    .message(serde_json::to_string(summary).ok()?)
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
