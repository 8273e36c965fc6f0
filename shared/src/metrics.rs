//! The functions' own CloudWatch metrics, as Embedded Metric Format (EMF) lines on stdout.
//! CloudWatch Logs turns each line into metric data points, so a function publishes metrics
//! without a `PutMetricData` call, an SDK client or any added latency.
//!
//! Written here rather than through an EMF crate: the ones on crates.io sit behind the `metrics`
//! facade and a global recorder (init work, a flush to arrange), for what is one JSON line.
//!
//! A line is a top-level JSON object (not a field inside the tracing layer's output), written
//! only when INFO is enabled: an application log level above INFO drops metrics with the logs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::tracing::{self, Level};
use serde_json::{json, Map, Value};

/// The CloudWatch namespace of every metric of the suite.
pub const NAMESPACE: &str = "OpsSuite";

/// The dimension every metric carries: the Lambda function's name, as the alarms name it.
pub const FUNCTION_DIMENSION: &str = "FunctionName";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF record: values that share one set of dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    dimensions: Vec<(&'static str, String)>,
    /// Fields of the line that are neither dimensions nor metrics: searchable in the logs.
    properties: Vec<(&'static str, String)>,
    values: Vec<(&'static str, Unit, f64)>,
}

impl Metrics {
    /// A record for `function` (the Lambda function name).
    pub fn for_function(function: impl Into<String>) -> Metrics {
        Metrics { dimensions: vec![(FUNCTION_DIMENSION, function.into())], properties: Vec::new(), values: Vec::new() }
    }

    /// A record for the running function: `AWS_LAMBDA_FUNCTION_NAME`, as Lambda sets it.
    pub fn for_this_function() -> Metrics {
        Metrics::for_function(std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned()))
    }

    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Metrics {
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn property(mut self, name: &'static str, value: impl Into<String>) -> Metrics {
        self.properties.push((name, value.into()));
        self
    }

    pub fn count(mut self, name: &'static str, value: u64) -> Metrics {
        self.values.push((name, Unit::Count, value as f64));
        self
    }

    pub fn duration(mut self, name: &'static str, unit: Unit, value: Duration) -> Metrics {
        let amount = match unit {
            Unit::Seconds => value.as_secs_f64(),
            Unit::Milliseconds | Unit::Count => value.as_secs_f64() * 1000.0,
        };
        self.values.push((name, unit, amount));
        self
    }

    /// The EMF line, stamped `timestamp_ms` (epoch milliseconds).
    pub fn to_line(&self, timestamp_ms: u64) -> String {
        let mut root = Map::new();
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(name, _)| *name).collect();
        let definitions: Vec<Value> =
            self.values.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit.name()})).collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dimension_names], "Metrics": definitions}]
            }),
        );
        for (name, value) in self.dimensions.iter().chain(&self.properties) {
            root.insert((*name).into(), Value::String(value.clone()));
        }
        for (name, _, value) in &self.values {
            root.insert((*name).into(), json!(value));
        }
        Value::Object(root).to_string()
    }

    /// Writes the line to stdout, where Lambda sends it to CloudWatch Logs, with the
    /// invocation's X-Ray trace id (`_X_AMZN_TRACE_ID`, which lambda_runtime sets per
    /// invocation) as a property, as every other log line of the invocation carries it.
    pub fn emit(&self) {
        if self.values.is_empty() || !tracing::enabled!(Level::INFO) {
            return;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let line = match std::env::var("_X_AMZN_TRACE_ID") {
            Ok(trace) if !trace.is_empty() => self.clone().property("xrayTraceId", trace).to_line(now),
            _ => self.to_line(now),
        };
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_emf_object_with_its_values_at_the_top() {
        let line = Metrics::for_function("fn-1")
            .dimension("Engine", "postgres")
            .property("Step", "setSecret")
            .count("StepsSucceeded", 1)
            .duration("PollDuration", Unit::Milliseconds, Duration::from_millis(1500))
            .to_line(1_700_000_000_000);
        let value: Value = serde_json::from_str(&line).unwrap();
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["FunctionName", "Engine"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "StepsSucceeded", "Unit": "Count"}, {"Name": "PollDuration", "Unit": "Milliseconds"}])
        );
        assert_eq!((value["FunctionName"].as_str(), value["Engine"].as_str()), (Some("fn-1"), Some("postgres")));
        assert_eq!(value["Step"], "setSecret", "a property, not a dimension");
        assert_eq!((value["StepsSucceeded"].as_f64(), value["PollDuration"].as_f64()), (Some(1.0), Some(1500.0)));
        assert!(!line.contains('\n'));
    }
}
