//! The SAM template passes both linters a deploy would meet: cfn-lint and `sam validate --lint`.

use std::process::Command;

use harness_runtime::paths::{venv_bin, workspace_root};

fn run(tool: &str, args: &[&str]) {
    let output = Command::new(venv_bin(tool))
        .args(args)
        .current_dir(workspace_root())
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| panic!("running {tool} (run the README's setup): {e}"));
    assert!(
        output.status.success(),
        "{tool} {args:?} found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn cfn_lint_is_clean() {
    run("cfn-lint", &["template.yaml"]);
}

#[test]
fn sam_validate_lint_is_clean() {
    run("sam", &["validate", "--lint", "--template", "template.yaml", "--region", "us-east-1"]);
}

/// `value` with each `{"Condition": name}` replaced by that condition's own expression.
fn expand_conditions(value: &serde_json::Value, conditions: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => match map.get("Condition").and_then(|c| c.as_str()) {
            Some(name) if map.len() == 1 => expand_conditions(&conditions[name], conditions),
            _ => map.iter().map(|(k, v)| (k.clone(), expand_conditions(v, conditions))).collect(),
        },
        serde_json::Value::Array(items) => items.iter().map(|v| expand_conditions(v, conditions)).collect(),
        other => other.clone(),
    }
}

/// The CloudFormation SAM makes of the template (samtranslator, in the pinned tools).
fn translated() -> serde_json::Value {
    let output = Command::new(venv_bin("python"))
        .arg(workspace_root().join("tests/sam_translate.py"))
        .arg(workspace_root().join("template.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("running samtranslator (run the README's setup): {e}"));
    assert!(output.status.success(), "samtranslator: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("translated template JSON")
}

#[test]
fn the_poll_schedule_is_off_unless_a_broker_is_configured_and_no_event_source_takes_the_queue() {
    let template = translated();
    let rule = &template["Resources"]["MqPollerFunctionPoll"];
    assert_eq!(rule["Type"], "AWS::Events::Rule");
    // SAM ignores `Enabled: !If` on a Schedule event and writes ENABLED; `State` passes through.
    assert_eq!(rule["Properties"]["State"], serde_json::json!({"Fn::If": ["MqPollScheduled", "ENABLED", "DISABLED"]}), "{rule}");
    let condition = expand_conditions(&template["Conditions"]["MqPollScheduled"], &template["Conditions"]).to_string();
    for needed in ["BrokerUrl", "BrokerSecretArn", "MqBrokerArn"] {
        assert!(condition.contains(needed), "MqPollScheduled depends on {needed}: {condition}");
    }
    // The event source mapping waits for the policy that lets it read the broker.
    let mapping = &template["Resources"]["MqEventSourceMapping"];
    let depends = mapping["DependsOn"].to_string();
    assert!(depends.contains("MqEventSourcePolicy"), "{mapping}");
}

#[test]
fn every_function_keeps_its_report_lines_in_a_log_group_that_expires() {
    let template = translated();
    let resources = template["Resources"].as_object().expect("resources");
    let functions: Vec<_> = resources.iter().filter(|(_, r)| r["Type"] == "AWS::Lambda::Function").collect();
    assert_eq!(functions.len(), 4);
    for (name, function) in functions {
        let logging = &function["Properties"]["LoggingConfig"];
        // Lambda writes START/REPORT (Init Duration, Max Memory Used) at INFO.
        assert_eq!(logging["SystemLogLevel"], "INFO", "{name}");
        assert_eq!(logging["LogFormat"], "JSON", "{name}");
        let group = logging["LogGroup"]["Ref"].as_str().unwrap_or_else(|| panic!("{name} names its log group"));
        assert_eq!(resources[group]["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(resources[group]["Properties"]["RetentionInDays"], serde_json::json!({"Ref": "LogRetentionDays"}), "{name}");
    }
    assert_eq!(template["Parameters"]["LogRetentionDays"]["Default"], 30);
}

#[test]
fn the_messages_table_survives_a_stack_deletion_or_replacement() {
    let template = translated();
    let table = &template["Resources"]["MqMessagesTable"];
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    assert_eq!(table["Properties"]["DeletionProtectionEnabled"], true);
}

#[test]
fn spot_drainer_may_deregister_only_from_target_groups_and_is_granted_each_action_once() {
    let template = translated();
    let policies = template["Resources"]["SpotDrainerFunctionRole"]["Properties"]["Policies"].as_array().expect("policies").clone();
    let statements: Vec<serde_json::Value> =
        policies.iter().flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default()).collect();
    let actions = |s: &serde_json::Value| -> Vec<String> {
        match &s["Action"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
            _ => vec![],
        }
    };
    let deregister: Vec<_> = statements.iter().filter(|s| actions(s).iter().any(|a| a == "elasticloadbalancing:DeregisterTargets")).collect();
    assert_eq!(deregister.len(), 1, "{deregister:?}");
    assert!(deregister[0]["Resource"].to_string().contains(":targetgroup/"), "{}", deregister[0]);
    let sends = statements.iter().filter(|s| actions(s).iter().any(|a| a.starts_with("sqs:SendMessage"))).count();
    assert_eq!(sends, 1, "one grant to the failure queue (SAM's, for the OnFailure destination)");
}

#[test]
fn rotation_may_change_only_secrets_that_name_it_and_only_read_master_secrets() {
    let template = translated();
    let function = &template["Resources"]["SecretRotationFunction"]["Properties"];
    assert_eq!(function["FunctionName"], serde_json::json!({"Fn::Sub": "${AWS::StackName}-secret-rotation"}));
    let policies = template["Resources"]["SecretRotationFunctionRole"]["Properties"]["Policies"].to_string();
    let statements: serde_json::Value = serde_json::from_str(&policies).expect("policies");
    let all: Vec<serde_json::Value> = statements
        .as_array()
        .expect("policies")
        .iter()
        .flat_map(|p| {
            // A conditional policy is {"Fn::If": [cond, policy, NoValue]}.
            let policy = if p.get("Fn::If").is_some() { p["Fn::If"][1].clone() } else { p.clone() };
            policy["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default()
        })
        .collect();
    let by_sid = |sid: &str| all.iter().find(|s| s["Sid"] == sid).cloned().unwrap_or_else(|| panic!("statement {sid}: {all:?}"));
    let rotate = by_sid("RotateTheSecrets");
    let own_arn = rotate["Condition"]["StringEquals"]["secretsmanager:resource/AllowRotationLambdaArn"].to_string();
    assert!(own_arn.contains("function:${AWS::StackName}-secret-rotation"), "{rotate}");
    let master = by_sid("ReadMasterSecrets");
    assert_eq!(
        master["Action"],
        serde_json::json!(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]),
        "master secrets are read only: {master}"
    );
    let rds = by_sid("FindRdsManagedMasters");
    assert_eq!(rds["Action"], serde_json::json!(["rds:DescribeDBInstances", "rds:DescribeDBClusters"]), "{rds}");
    let resources = rds["Resource"].to_string();
    assert!(resources.contains(":db:*") && resources.contains(":cluster:*") && !resources.contains("\"*\""), "{rds}");
    assert!(by_sid("SecretsKey")["Condition"]["StringEquals"]["kms:ViaService"].to_string().contains("secretsmanager"));
    let permission = &template["Resources"]["SecretRotationInvokePermission"]["Properties"];
    assert!(permission["SourceArn"].to_string().contains("secretsmanager"), "{permission}");
    assert_eq!(permission["SourceAccount"], serde_json::json!({"Ref": "AWS::AccountId"}));
}
