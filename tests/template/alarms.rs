//! Alarms on the suite's own promises: a warning drained inside its two-minute notice, no
//! function throttled or cut off at its timeout, a poll schedule that keeps polling, and a
//! broker queue that does not pile up.

use serde_json::{json, Value};

use harness_services::cloudformation::{holds, translated};

use crate::FUNCTIONS;

fn alarms(template: &Value) -> Vec<(&String, &Value)> {
    let resources = template["Resources"].as_object().expect("resources");
    resources.iter().filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm").collect()
}

/// The alarms on `metric` whose first dimension is `dimension`.
fn watching<'a>(template: &'a Value, metric: &str, dimension: &Value) -> Vec<&'a Value> {
    alarms(template)
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| a["Properties"]["MetricName"] == metric && &a["Properties"]["Dimensions"][0]["Value"] == dimension)
        .collect()
}

fn only<'a>(found: Vec<&'a Value>, what: &str) -> &'a Value {
    assert_eq!(found.len(), 1, "{what}: {found:?}");
    found[0]
}

#[test]
fn a_warning_waiting_a_minute_of_its_notice_is_an_alarm() {
    let template = translated();
    let queue = json!({"Fn::GetAtt": ["SpotWarningsQueue", "QueueName"]});
    let alarm = &only(watching(&template, "ApproximateAgeOfOldestMessage", &queue), "oldest warning")["Properties"];
    assert_eq!(
        (&alarm["Namespace"], &alarm["Statistic"], &alarm["Threshold"], &alarm["ComparisonOperator"]),
        (&json!("AWS/SQS"), &json!("Maximum"), &json!(60), &json!("GreaterThanThreshold"))
    );
    assert!(alarm["Period"].as_i64().is_some_and(|p| p <= 60), "{alarm}");
}

#[test]
fn every_function_throttled_or_close_to_its_timeout_is_an_alarm() {
    let template = translated();
    let resources = &template["Resources"];
    for function in FUNCTIONS {
        let own = json!({"Ref": function});
        let throttles = &only(watching(&template, "Throttles", &own), function)["Properties"];
        assert_eq!((&throttles["Threshold"], &throttles["Statistic"]), (&json!(0), &json!("Sum")), "{function}");
        let alarm = watching(&template, "Throttles", &own)[0];
        assert_eq!(alarm["Condition"], resources[function]["Condition"], "{function}: left out with its function");
    }
    for function in ["SpotDrainerFunction", "SpotDrainerLifecycleFunction", "MqPollerFunction"] {
        let timeout_ms = resources[function]["Properties"]["Timeout"].as_i64().expect("a timeout") * 1000;
        let duration = &only(watching(&template, "Duration", &json!({"Ref": function})), function)["Properties"];
        assert_eq!(duration["Statistic"], "Maximum", "{function}");
        assert_eq!(duration["Threshold"], json!(timeout_ms * 8 / 10), "{function}: 80% of its timeout");
    }
}

#[test]
fn the_dead_man_alarm_fires_when_the_schedule_stops_and_is_sized_to_the_poll_rate() {
    let template = translated();
    let alarm = only(watching(&template, "Invocations", &json!({"Ref": "MqPollerFunction"})), "dead man");
    let properties = &alarm["Properties"];
    assert_eq!(properties["TreatMissingData"], "breaching", "no invocation is no data");
    assert_eq!((&properties["ComparisonOperator"], &properties["Threshold"]), (&json!("LessThanThreshold"), &json!(1)));
    let polling = json!({"BrokerUrl": "stomp+ssl://b-1.mq.us-east-1.amazonaws.com:61614",
        "BrokerSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:broker"});
    let condition = json!({"Condition": alarm["Condition"]});
    // For a rate: whether it is watched, and how long silence must last to fire.
    let window = |rate: &str| -> Option<i64> {
        let mut given = polling.clone();
        given["PollRate"] = json!(rate);
        if !holds(&template, &given, &condition) {
            return None;
        }
        let pick = |value: &Value| pick_number(&template, &given, value);
        let (period, periods, needed) = (
            pick(&properties["Period"]),
            pick(&properties["EvaluationPeriods"]),
            pick(&properties["DatapointsToAlarm"]),
        );
        assert_eq!(periods, needed, "{rate}: every period of the window must be silent");
        assert!(period * periods <= 86_400, "{rate}: CloudWatch looks back a day at most");
        Some(period * periods)
    };
    for (rate, interval) in [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(10 minutes)", 600),
        ("rate(11 minutes)", 660),
        ("rate(60 minutes)", 3600),
        ("rate(1 hour)", 3600),
        ("rate(23 hours)", 82_800),
    ] {
        let window = window(rate).unwrap_or_else(|| panic!("{rate} is watched"));
        // Silence for longer than one interval (a slow schedule never fires it), and for at
        // least 15 minutes.
        assert!(window > interval && window >= 900, "{rate}: window {window} s");
        if interval <= 600 {
            assert_eq!(window, 900, "{rate}: fast schedules are told within 15 minutes");
        }
    }
    for unwatched in ["rate(1 day)", "rate(3 days)", "cron(0 12 * * ? *)"] {
        assert_eq!(window(unwatched), None, "{unwatched}");
    }
    // No schedule, no alarm: without a broker, or with the event source taking the queue.
    let mut event_source = polling.clone();
    event_source["MqBrokerArn"] = json!("arn:aws:mq:us-east-1:123456789012:broker:orders:b-1234");
    for given in [json!({}), event_source] {
        assert!(!holds(&template, &given, &condition), "{given}");
    }
    // The parameter refuses what the alarm cannot be sized for.
    let pattern = template["Parameters"]["PollRate"]["AllowedPattern"].as_str().expect("a pattern");
    assert!(pattern.contains("[1-5][0-9]|60) minutes?") && pattern.contains("2[0-3]) hours?"), "{pattern}");
}

/// A number of the alarm, through the `Fn::If`s a deploy with `given` takes.
fn pick_number(template: &Value, given: &Value, value: &Value) -> i64 {
    match value.get("Fn::If") {
        Some(branches) => {
            let taken = if holds(template, given, &json!({"Condition": branches[0]})) { 1 } else { 2 };
            pick_number(template, given, &branches[taken])
        }
        None => value.as_i64().expect("a number"),
    }
}

#[test]
fn with_a_broker_arn_the_queue_backlog_is_watched_by_its_engines_metric() {
    let template = translated();
    let broker_name = json!({"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "MqBrokerArn"}]}]});
    let activemq = only(watching(&template, "QueueSize", &broker_name), "ActiveMQ backlog");
    let rabbitmq = only(watching(&template, "MessageCount", &broker_name), "RabbitMQ backlog");
    let dimensions = |alarm: &Value| -> Vec<String> {
        alarm["Properties"]["Dimensions"]
            .as_array()
            .expect("dimensions")
            .iter()
            .map(|d| d["Name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(dimensions(activemq), ["Broker", "Queue"]);
    assert_eq!(dimensions(rabbitmq), ["Broker", "VirtualHost", "Queue"]);
    for alarm in [activemq, rabbitmq] {
        assert_eq!(alarm["Properties"]["Namespace"], "AWS/AmazonMQ");
        assert_eq!(alarm["Properties"]["Threshold"], json!({"Ref": "MqBacklogThreshold"}));
    }
    // The ARN's seventh field is the broker's name, which is what the metric's dimension holds.
    let arn = "arn:aws:mq:us-east-1:123456789012:broker:orders:b-1234";
    assert_eq!(arn.split(':').nth(6), Some("orders"));
    let subscribed = |engine: &str| {
        json!({"MqBrokerArn": arn, "MqEngine": engine,
               "BrokerSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:broker"})
    };
    let on = |alarm: &Value, given: &Value| holds(&template, given, &json!({"Condition": alarm["Condition"]}));
    assert!(on(activemq, &subscribed("ActiveMQ")) && !on(rabbitmq, &subscribed("ActiveMQ")));
    assert!(on(rabbitmq, &subscribed("RabbitMQ")) && !on(activemq, &subscribed("RabbitMQ")));
    assert!(!on(activemq, &json!({})) && !on(rabbitmq, &json!({})), "no broker ARN, no backlog alarm");
}
