//! Alarms on the suite's own promises: a warning drained inside its two-minute notice, no
//! function throttled or cut off at its timeout, a poll schedule that keeps polling, and a
//! broker queue that does not pile up.

use serde_json::{json, Value};

use harness_services::cloudformation::{holds, resolved, translated};

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
        let pick = |value: &Value| resolved(&template, &given, value).as_i64().expect("a number");
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
        ("rate(2 hours)", 7200),
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
}

#[test]
fn with_a_broker_arn_the_queue_backlog_is_watched_by_its_engines_metric() {
    let template = translated();
    let resources = &template["Resources"];
    let name = json!({"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "MqBrokerArn"}]}]});
    // ActiveMQ: QueueSize by Broker and Queue, where Broker is the instance, <name>-1 (and -2
    // for active/standby): the larger of the two.
    let activemq = &resources["MqBacklogActiveMqAlarm"];
    let metrics = activemq["Properties"]["Metrics"].as_array().expect("metric math");
    let expression = metrics.iter().find(|m| m.get("Expression").is_some()).expect("an expression");
    assert_eq!(expression["Expression"], "MAX([first, second])");
    for (id, suffix) in [("first", "${Name}-1"), ("second", "${Name}-2")] {
        let stat = &metrics.iter().find(|m| m["Id"] == id).expect(id)["MetricStat"]["Metric"];
        assert_eq!((&stat["Namespace"], &stat["MetricName"]), (&json!("AWS/AmazonMQ"), &json!("QueueSize")));
        assert_eq!(stat["Dimensions"][0]["Name"], "Broker");
        assert_eq!(stat["Dimensions"][0]["Value"], json!({"Fn::Sub": [suffix, {"Name": name}]}), "{id}");
        assert_eq!(stat["Dimensions"][1], json!({"Name": "Queue", "Value": {"Ref": "QueueName"}}));
    }
    // RabbitMQ: MessageCount by Broker (the broker's name), VirtualHost and Queue.
    let rabbitmq = only(watching(&template, "MessageCount", &name), "RabbitMQ backlog");
    let dimensions: Vec<&str> = rabbitmq["Properties"]["Dimensions"]
        .as_array()
        .expect("dimensions")
        .iter()
        .map(|d| d["Name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(dimensions, ["Broker", "VirtualHost", "Queue"]);
    assert_eq!(rabbitmq["Properties"]["Namespace"], "AWS/AmazonMQ");
    for alarm in [activemq, rabbitmq] {
        assert_eq!(alarm["Properties"]["Threshold"], json!({"Ref": "MqBacklogThreshold"}));
    }
    let arn = "arn:aws:mq:us-east-1:123456789012:broker:orders:b-1234";
    let subscribed = |engine: &str| {
        json!({"MqBrokerArn": arn, "MqEngine": engine,
               "BrokerSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:broker"})
    };
    let on = |alarm: &Value, given: &Value| holds(&template, given, &json!({"Condition": alarm["Condition"]}));
    assert!(on(activemq, &subscribed("ActiveMQ")) && !on(rabbitmq, &subscribed("ActiveMQ")));
    assert!(on(rabbitmq, &subscribed("RabbitMQ")) && !on(activemq, &subscribed("RabbitMQ")));
    assert!(!on(activemq, &json!({})) && !on(rabbitmq, &json!({})), "no broker ARN, no backlog alarm");
}

#[test]
fn failure_alarms_watch_the_alias_so_the_pretraffic_probes_do_not_count() {
    let template = translated();
    for function in FUNCTIONS {
        for metric in ["Errors", "Throttles"] {
            let alarm = only(watching(&template, metric, &json!({"Ref": function})), function);
            assert_eq!(
                alarm["Properties"]["Dimensions"][1],
                json!({"Name": "Resource", "Value": {"Fn::Sub": format!("${{{function}}}:live")}}),
                "{function} {metric}"
            );
        }
    }
}

#[test]
fn poll_rates_are_those_eventbridge_takes() {
    let template = translated();
    let pattern = template["Parameters"]["PollRate"]["AllowedPattern"].as_str().expect("a pattern").to_owned();
    let accepted = |rate: &str| -> bool {
        let output = std::process::Command::new(harness_runtime::paths::venv_bin("python"))
            .args([
                "-c",
                "import re, sys; sys.exit(0 if re.fullmatch(sys.argv[1], sys.argv[2]) else 1)",
                &pattern,
                rate,
            ])
            .output()
            .expect("python");
        output.status.success()
    };
    for good in [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(60 minutes)",
        "rate(1 hour)",
        "rate(23 hours)",
        "rate(1 day)",
        "rate(3 days)",
        "cron(0 12 * * ? *)",
    ] {
        assert!(accepted(good), "{good} is refused");
    }
    // EventBridge refuses a plural for 1 and a singular otherwise; the alarm cannot size
    // minutes above 60 or hours above 23.
    for bad in [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(1 hours)",
        "rate(2 hour)",
        "rate(61 minutes)",
        "rate(24 hours)",
        "rate(0 days)",
        "cron(x)",
        "rate(5 minutes) ",
    ] {
        assert!(!accepted(bad), "{bad} is accepted");
    }
}
