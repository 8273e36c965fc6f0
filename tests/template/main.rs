//! The SAM template: both linters a deploy would meet (cfn-lint, `sam validate --lint`), checkov,
//! and the CloudFormation SAM makes of it (samtranslator), checked for what an operator relies on.

mod alarms;
mod deploys;
mod publishing;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{json, Value};

use harness_runtime::paths::{venv_bin, workspace_root};
use harness_services::cloudformation::{
    actions, by_sid, deployed, expand_conditions, holds, named_condition, references, resolved, role_statements,
    translated,
};

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

#[test]
fn the_poll_schedule_is_off_unless_a_broker_is_configured_and_no_event_source_takes_the_queue() {
    let template = translated();
    let rule = &template["Resources"]["MqPollerFunctionPoll"];
    assert_eq!(rule["Type"], "AWS::Events::Rule");
    // SAM ignores `Enabled: !If` on a Schedule event and writes ENABLED; `State` passes through.
    assert_eq!(
        rule["Properties"]["State"],
        serde_json::json!({"Fn::If": ["MqPollScheduled", "ENABLED", "DISABLED"]}),
        "{rule}"
    );
    let condition = expand_conditions(&template["Conditions"]["MqPollScheduled"], &template["Conditions"]).to_string();
    for needed in ["BrokerUrl", "BrokerSecretArn", "MqBrokerArn"] {
        assert!(condition.contains(needed), "MqPollScheduled depends on {needed}: {condition}");
    }
    // A customer-managed key for the broker secret: decrypt through Secrets Manager only.
    let key = by_sid(&role_statements(&template, "MqPollerRole"), "BrokerSecretKey");
    assert_eq!(
        (key["Action"].as_str(), &key["Resource"]),
        (Some("kms:Decrypt"), &json!({"Ref": "BrokerSecretKmsKeyArn"}))
    );
    assert!(key["Condition"]["StringEquals"]["kms:ViaService"].to_string().contains("secretsmanager"), "{key}");
    // The event source mapping waits for the policy that lets it read the broker.
    let mapping = &template["Resources"]["MqEventSourceMapping"];
    let depends = mapping["DependsOn"].to_string();
    assert!(depends.contains("MqEventSourcePolicy"), "{mapping}");
}

#[test]
fn the_mq_event_source_takes_a_filter_and_a_batching_window_only_when_given() {
    let template = translated();
    let mapping = &template["Resources"]["MqEventSourceMapping"]["Properties"];
    let defaults = resolved(&template, &json!({}), mapping);
    assert!(
        defaults.get("FilterCriteria").is_none() && defaults.get("MaximumBatchingWindowInSeconds").is_none(),
        "{defaults}"
    );
    let pattern = r#"{"data": [{"prefix": "owner: billing"}]}"#;
    let given = json!({"MqFilterPattern": pattern, "MqBatchingWindowSeconds": "20"});
    let set = resolved(&template, &given, mapping);
    assert_eq!(set["FilterCriteria"], json!({"Filters": [{"Pattern": {"Ref": "MqFilterPattern"}}]}), "{set}");
    assert_eq!(set["MaximumBatchingWindowInSeconds"], json!({"Ref": "MqBatchingWindowSeconds"}), "{set}");
}

#[test]
fn every_function_keeps_its_report_lines_in_a_log_group_that_expires() {
    let template = translated();
    let resources = template["Resources"].as_object().expect("resources");
    let functions: Vec<_> = resources.iter().filter(|(_, r)| r["Type"] == "AWS::Lambda::Function").collect();
    // The four, spot-drainer's lifecycle-hook twin (same binary, longer timeout), and the
    // PreTraffic hook.
    assert_eq!(functions.len(), 6);
    for (name, function) in functions {
        let logging = &function["Properties"]["LoggingConfig"];
        // Lambda writes START/REPORT (Init Duration, Max Memory Used) at INFO.
        assert_eq!(logging["SystemLogLevel"], "INFO", "{name}");
        assert_eq!(logging["LogFormat"], "JSON", "{name}");
        let group = logging["LogGroup"]["Ref"].as_str().unwrap_or_else(|| panic!("{name} names its log group"));
        assert_eq!(resources[group]["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(
            resources[group]["Properties"]["RetentionInDays"],
            serde_json::json!({"Ref": "LogRetentionDays"}),
            "{name}"
        );
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
fn large_bodies_have_a_private_encrypted_bucket_that_outlives_the_stack_and_expires_with_the_items() {
    let template = translated();
    let bucket = &template["Resources"]["MqBodyBucket"];
    assert_eq!(
        (bucket["DeletionPolicy"].as_str(), bucket["UpdateReplacePolicy"].as_str()),
        (Some("Retain"), Some("Retain"))
    );
    let properties = &bucket["Properties"];
    let block = &properties["PublicAccessBlockConfiguration"];
    for setting in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(block[setting], true, "{setting}");
    }
    assert!(properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        ["SSEAlgorithm"]
        .is_string());
    // The expiry is BodyRetentionDays, on the bodies, and the Rules tie it to the table's TTL.
    let lifecycle = properties["LifecycleConfiguration"].to_string();
    assert!(
        lifecycle.contains(r#"{"Ref":"BodyRetentionDays"}"#) && lifecycle.contains(r#""Prefix":"bodies/""#),
        "{lifecycle}"
    );
    let rules = &template["Rules"];
    assert!(rules["BodyRetentionComesWithTheTtl"]["RuleCondition"].to_string().contains("MessageTtlDays"));
    assert!(rules["BodyRetentionComesWithTheTtl"]["Assertions"].to_string().contains("BodyRetentionDays"));
    assert!(rules["BodiesExpireOnlyWithTheirItems"]["Assertions"].to_string().contains("BodyRetentionDays"));
    // The function is told where, and may only put bodies there.
    let variables = &template["Resources"]["MqPollerFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["BODY_BUCKET"], serde_json::json!({"Ref": "MqBodyBucket"}));
    let statements = role_statements(&template, "MqPollerRole");
    let bodies = by_sid(&statements, "StoreLargeBodies");
    assert_eq!(actions(&bodies), ["s3:PutObject"]);
    let resources = bodies["Resource"].to_string();
    assert!(
        resources.contains("/bodies/*") && resources.contains("/parked/*") && !resources.contains("}/*"),
        "{bodies}"
    );
    let s3_actions: Vec<String> = statements.iter().flat_map(actions).filter(|a| a.starts_with("s3:")).collect();
    assert_eq!(s3_actions, ["s3:PutObject"], "no other S3 permission");
    let policy = template["Resources"]["MqBodyBucketPolicy"]["Properties"]["PolicyDocument"].to_string();
    assert!(policy.contains("aws:SecureTransport") && policy.contains("Deny"), "{policy}");
}

fn policies_text(template: &Value) -> String {
    template["Resources"]["SpotDrainerRole"]["Properties"]["Policies"].to_string()
}

#[test]
fn each_function_can_be_left_out_and_nothing_deployed_refers_to_what_was_left_out() {
    let template = translated();
    let everything = deployed(&template, &json!({}));
    assert!(everything.contains("HelloApiFunction") && everything.contains("MqMessagesTable"), "{everything:?}");
    for (parameter, function, own) in [
        ("DeployHelloApi", "HelloApiFunction", &["HelloApi", "ServerlessRestApi", "ServerlessHttpApi"][..]),
        ("DeploySpotDrainer", "SpotDrainerFunction", &["SpotDrainer", "SpotInterruption", "SpotRebalance"][..]),
        ("DeploySecretRotation", "SecretRotationFunction", &["SecretRotation"][..]),
        ("DeployMqPoller", "MqPollerFunction", &["MqPoller", "MqMessages", "MqEventSource"][..]),
    ] {
        let given = json!({parameter: "false", "BrokerUrl": "stomp+ssl://b:61614", "BrokerSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:b",
            "MqBrokerArn": "arn:aws:mq:us-east-1:123456789012:broker:b:b-1", "DrainOnRebalance": "true", "OperatorEmail": "ops@example.com"});
        let left = deployed(&template, &given);
        assert!(!left.contains(function), "{parameter}=false still deploys {function}");
        let strays: Vec<_> = left.iter().filter(|name| own.iter().any(|prefix| name.starts_with(prefix))).collect();
        assert!(strays.is_empty(), "{parameter}=false still deploys {strays:?}");
        for name in &left {
            let mut found = BTreeSet::new();
            references(&template, &given, &template["Resources"][name], &mut found);
            let missing: Vec<_> = found.difference(&left).collect();
            assert!(missing.is_empty(), "with {parameter}=false, {name} refers to {missing:?}, which is not deployed");
        }
        let outputs = template["Outputs"].as_object().expect("outputs");
        for (output, spec) in
            outputs.iter().filter(|(_, o)| named_condition(&template, &given, o["Condition"].as_str()))
        {
            let mut found = BTreeSet::new();
            references(&template, &given, &spec["Value"], &mut found);
            assert!(found.is_subset(&left), "output {output} refers to {found:?} with {parameter}=false");
        }
    }
}

#[test]
fn no_role_gets_vpc_access_without_a_vpc_nor_a_wildcard_its_actions_do_not_need() {
    let template = translated();
    let resources = template["Resources"].as_object().expect("resources");
    // SAM makes no function role of its own: it would attach its VPC policy whenever VpcConfig
    // is there. Its one role is CodeDeploy's, with AWS's managed policy for Lambda deploys only.
    let roles: Vec<&String> = resources
        .iter()
        .filter(|(name, r)| r["Type"] == "AWS::IAM::Role" && name.as_str() != "CodeDeployServiceRole")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(roles.len(), 5, "{roles:?}");
    assert_eq!(
        resources["CodeDeployServiceRole"]["Properties"]["ManagedPolicyArns"],
        json!(["arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"])
    );
    for role in &roles {
        let managed = &resources[role.as_str()]["Properties"]["ManagedPolicyArns"];
        let text = managed.to_string();
        assert!(
            !text.contains("AWSLambdaBasicExecutionRole"),
            "{role}: logs are granted on the function's own group: {managed}"
        );
        if text.contains("AWSLambdaVPCAccessExecutionRole") {
            let condition = managed["Fn::If"][0].as_str().unwrap_or_default();
            assert!(
                condition == "RotationInVpc" || condition == "MqInVpc",
                "{role}: VPC access only with a VPC: {managed}"
            );
        }
        // Resource "*" only where the action supports no resource-level scoping.
        let unscoped = [
            "ec2:DescribeInstances",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTags",
            "autoscaling:DescribeAutoScalingGroups",
            "secretsmanager:GetRandomPassword",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        ];
        for statement in role_statements(&template, role) {
            if statement["Resource"] == "*" {
                for action in actions(&statement) {
                    assert!(unscoped.contains(&action.as_str()), "{role}: {action} on *");
                }
            }
            if actions(&statement).iter().any(|a| a.starts_with("logs:")) {
                assert!(
                    statement["Resource"]["Fn::GetAtt"][0].as_str().is_some_and(|g| g.ends_with("LogGroup")),
                    "{role}: {statement}"
                );
            }
        }
    }
    // With a VPC, its policy is there.
    let with_vpc = holds(
        &template,
        &json!({"RotationSubnetIds": "subnet-1", "RotationSecurityGroupIds": "sg-1"}),
        &json!({"Condition": "RotationInVpc"}),
    );
    assert!(with_vpc && !holds(&template, &json!({}), &json!({"Condition": "RotationInVpc"})));
}

/// The suite's functions (the PreTraffic hook aside).
pub const FUNCTIONS: [&str; 5] = [
    "HelloApiFunction",
    "SpotDrainerFunction",
    "SpotDrainerLifecycleFunction",
    "SecretRotationFunction",
    "MqPollerFunction",
];

/// The SQS source that hands spot-drainer its warnings.
fn warnings_mapping(template: &Value) -> &Value {
    template["Resources"]
        .as_object()
        .expect("resources")
        .values()
        .find(|r| {
            r["Type"] == "AWS::Lambda::EventSourceMapping"
                && r["Properties"]["EventSourceArn"].to_string().contains("SpotWarningsQueue")
        })
        .expect("the queue's mapping")
}

/// The rule that sends Auto Scaling's terminate lifecycle actions to spot-drainer.
fn lifecycle_rule(template: &Value) -> &Value {
    template["Resources"]
        .as_object()
        .expect("resources")
        .values()
        .find(|r| {
            r["Type"] == "AWS::Events::Rule"
                && r["Properties"]["EventPattern"].to_string().contains("EC2 Instance-terminate Lifecycle Action")
        })
        .expect("the lifecycle rule")
}

#[test]
fn spot_drainer_takes_warnings_from_its_queue_in_batches_and_may_deregister_only_from_target_groups() {
    let template = translated();
    let statements = role_statements(&template, "SpotDrainerRole");
    let deregister: Vec<_> = statements
        .iter()
        .filter(|s| actions(s).iter().any(|a| a == "elasticloadbalancing:DeregisterTargets"))
        .collect();
    assert_eq!(deregister.len(), 1, "{deregister:?}");
    assert!(deregister[0]["Resource"].to_string().contains(":targetgroup/"), "{}", deregister[0]);
    let queue_access = by_sid(&statements, "TakeWarnings");
    assert_eq!(queue_access["Resource"], json!({"Fn::GetAtt": ["SpotWarningsQueue", "Arn"]}));
    assert!(!actions(&queue_access).contains(&"sqs:SendMessage".to_owned()));
    // Sending is only for the lifecycle function's failures, to the failed-events queue.
    let sends: Vec<_> = statements.iter().filter(|s| actions(s).contains(&"sqs:SendMessage".to_owned())).collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0]["Resource"], json!({"Fn::GetAtt": ["SpotDrainerFailedEvents", "Arn"]}));
    let lifecycle = by_sid(&statements, "LifecycleActions");
    assert_eq!(
        actions(&lifecycle),
        ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    );
    assert!(policies_text(&template).contains(r#"{"Fn::If":["SpotLifecycleHooks""#));
    // Lifecycle actions: opt-in, their own rule, the longer timeout, failures to the queue.
    let resources = &template["Resources"];
    assert_eq!(resources["SpotDrainerLifecycleFunction"]["Condition"], "SpotLifecycleHooks");
    assert_eq!(resources["SpotDrainerLifecycleFunction"]["Properties"]["Timeout"], 900);
    let rule = lifecycle_rule(&template);
    assert!(rule["Properties"]["Targets"].to_string().contains("SpotDrainerLifecycleFunction"));
    assert_eq!(rule["Condition"], "SpotLifecycleHooks");
    assert_eq!(by_sid(&statements, "DrainSummaries")["Resource"], json!({"Ref": "SpotInterruptionNotices"}));
    // Detaching is granted only with the parameter, and only on Auto Scaling groups.
    let detach = by_sid(&statements, "DetachFromAsg");
    assert!(detach["Resource"].to_string().contains(":autoScalingGroup:"), "{detach}");
    assert!(policies_text(&template).contains(r#"{"Fn::If":["SpotDetachFromAsg""#));

    // EventBridge -> the queue -> the function, batched, with partial batch failures; what keeps
    // failing moves to the failed-events queue, which the operators' alarm watches.
    let resources = &template["Resources"];
    for rule in ["SpotInterruptionRule", "SpotRebalanceRule"] {
        let targets = resources[rule]["Properties"]["Targets"].to_string();
        assert!(targets.contains("SpotWarningsQueue") && !targets.contains("SpotDrainerFunction"), "{rule}: {targets}");
    }
    let mapping = warnings_mapping(&template);
    let properties = &mapping["Properties"];
    assert_eq!(properties["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
    assert_eq!(properties["MaximumBatchingWindowInSeconds"], json!({"Ref": "SpotBatchingWindowSeconds"}));
    assert_eq!(
        (properties["BatchSize"].as_i64(), properties["ScalingConfig"]["MaximumConcurrency"].as_i64()),
        (Some(1000), Some(2))
    );
    // A batch above 10 needs a window of at least a second (Lambda refuses the mapping otherwise).
    let window = &template["Parameters"]["SpotBatchingWindowSeconds"];
    assert_eq!((window["MinValue"].as_i64(), window["Default"].as_i64()), (Some(1), Some(5)), "{window}");
    let longest_window = window["MaxValue"].as_i64().expect("a longest window");
    let queue = &resources["SpotWarningsQueue"]["Properties"];
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        json!({"Fn::GetAtt": ["SpotDrainerFailedEvents", "Arn"]})
    );
    let timeout = resources["SpotDrainerFunction"]["Properties"]["Timeout"].as_i64().expect("timeout");
    assert!(
        queue["VisibilityTimeout"].as_i64().expect("visibility") >= timeout + longest_window,
        "a batch must not be handed out again while its invocation still runs (and Lambda refuses a visibility timeout below the function's)"
    );
    let variables = &resources["SpotDrainerFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["NOTICES_TOPIC_ARN"], json!({"Ref": "SpotInterruptionNotices"}));
    assert!(
        resources.get("SpotDrainerFunctionEventInvokeConfig").is_none(),
        "no asynchronous invocation is left to configure"
    );
    let policy = resources["SpotWarningsQueuePolicy"]["Properties"]["PolicyDocument"].to_string();
    assert!(policy.contains("SpotInterruptionRule") && policy.contains("events.amazonaws.com"), "{policy}");
}

#[test]
fn the_rest_api_has_one_stage_and_every_stage_is_throttled() {
    let template = translated();
    let resources = template["Resources"].as_object().expect("resources");
    // A Deployment naming a StageName of its own is what makes SAM's hidden "Stage" stage.
    for (name, resource) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::ApiGateway::Deployment") {
        assert!(resource["Properties"].get("StageName").is_none(), "{name} creates a stage of its own: {resource}");
    }
    let stages: Vec<_> = resources.iter().filter(|(_, r)| r["Type"] == "AWS::ApiGateway::Stage").collect();
    assert_eq!(stages.len(), 1, "{stages:?}");
    for (name, stage) in stages {
        let settings = stage["Properties"]["MethodSettings"].to_string();
        assert!(settings.contains("ThrottlingRateLimit") && settings.contains("ThrottlingBurstLimit"), "{name}");
    }
}

#[test]
fn both_spot_drainer_functions_draw_on_one_elb_budget_in_a_table_they_may_only_read_and_update() {
    let template = translated();
    let resources = &template["Resources"];
    let table = &resources["SpotDrainerBudgetTable"];
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    assert_eq!(table["Condition"], "DeploySpotDrainer");
    assert_eq!(table["Properties"]["KeySchema"], json!([{"AttributeName": "id", "KeyType": "HASH"}]));
    for function in ["SpotDrainerFunction", "SpotDrainerLifecycleFunction"] {
        let variables = &resources[function]["Properties"]["Environment"]["Variables"];
        assert_eq!(variables["ELB_BUDGET_TABLE"], json!({"Ref": "SpotDrainerBudgetTable"}), "{function}");
    }
    let statements = role_statements(&template, "SpotDrainerRole");
    let budget = by_sid(&statements, "ShareElbBudget");
    assert_eq!(actions(&budget), ["dynamodb:GetItem", "dynamodb:UpdateItem"]);
    assert_eq!(budget["Resource"], json!({"Fn::GetAtt": ["SpotDrainerBudgetTable", "Arn"]}));
    let touching: Vec<_> =
        statements.iter().filter(|s| actions(s).iter().any(|a| a.starts_with("dynamodb:"))).collect();
    assert_eq!(touching.len(), 1, "no other table access: {touching:?}");
}

#[test]
fn spot_drainer_completes_only_its_own_hooks_keeps_healthy_targets_on_rebalance_and_reserves_concurrency() {
    let template = translated();
    let resources = &template["Resources"];
    // The lifecycle rule matches only the hooks named, and both functions know which they are.
    let rule = lifecycle_rule(&template);
    assert_eq!(
        rule["Properties"]["EventPattern"]["detail"]["LifecycleHookName"],
        json!({"Fn::Split": [",", {"Ref": "LifecycleHookNames"}]}),
        "{rule}"
    );
    for function in ["SpotDrainerFunction", "SpotDrainerLifecycleFunction"] {
        let variables = &resources[function]["Properties"]["Environment"]["Variables"];
        assert_eq!(variables["LIFECYCLE_HOOK_NAMES"], json!({"Ref": "LifecycleHookNames"}), "{function}");
    }
    let variables = &resources["SpotDrainerFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["REBALANCE_KEEP_HEALTHY"], json!({"Ref": "RebalanceKeepHealthy"}));
    assert_eq!(template["Parameters"]["LifecycleHookNames"]["Default"], "");
    assert_eq!(template["Parameters"]["RebalanceKeepHealthy"]["Default"], 1);
    // Reserved concurrency for both, above the queue's pollers; 0 leaves it out.
    let reserved = json!({"Fn::If": ["SpotReservesConcurrency", {"Ref": "SpotDrainerReservedConcurrency"}, {"Ref": "AWS::NoValue"}]});
    for function in ["SpotDrainerFunction", "SpotDrainerLifecycleFunction"] {
        assert_eq!(resources[function]["Properties"]["ReservedConcurrentExecutions"], reserved, "{function}");
    }
    let pollers = warnings_mapping(&template)["Properties"]["ScalingConfig"]["MaximumConcurrency"]
        .as_i64()
        .expect("the queue's pollers");
    let default = template["Parameters"]["SpotDrainerReservedConcurrency"]["Default"].as_i64().expect("a number");
    assert!(default > pollers, "reserved {default} must exceed the {pollers} pollers, or the source is throttled");
    // Turning lifecycle actions on without naming a hook is refused at deploy time.
    let rule = &template["Rules"]["LifecycleActionsNeedTheirHooks"];
    assert_eq!(rule["RuleCondition"], json!({"Fn::Equals": [{"Ref": "DrainOnLifecycleHook"}, "true"]}), "{rule}");
    assert!(rule["Assertions"].to_string().contains("LifecycleHookNames"), "{rule}");
}

#[test]
fn rotation_may_change_only_secrets_that_name_it_and_only_read_master_secrets() {
    let template = translated();
    let function = &template["Resources"]["SecretRotationFunction"]["Properties"];
    assert_eq!(function["FunctionName"], json!({"Fn::Sub": "${AWS::StackName}-secret-rotation"}));
    let all = role_statements(&template, "SecretRotationRole");
    let rotate = by_sid(&all, "RotateTheSecrets");
    let own_arn = rotate["Condition"]["StringEquals"]["secretsmanager:resource/AllowRotationLambdaArn"].to_string();
    // Secrets name the alias; a condition naming the bare function would deny every step.
    assert!(own_arn.contains("function:${AWS::StackName}-secret-rotation:live\""), "{rotate}");
    let master = by_sid(&all, "ReadMasterSecrets");
    assert_eq!(
        master["Action"],
        json!(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]),
        "master secrets are read only: {master}"
    );
    let rds = by_sid(&all, "FindRdsManagedMasters");
    assert_eq!(rds["Action"], json!(["rds:DescribeDBInstances", "rds:DescribeDBClusters"]), "{rds}");
    let resources = rds["Resource"].to_string();
    assert!(resources.contains(":db:*") && resources.contains(":cluster:*") && !resources.contains("\"*\""), "{rds}");
    assert!(by_sid(&all, "SecretsKey")["Condition"]["StringEquals"]["kms:ViaService"]
        .to_string()
        .contains("secretsmanager"));
    let permission = &template["Resources"]["SecretRotationInvokePermission"]["Properties"];
    assert!(permission["SourceArn"].to_string().contains("secretsmanager"), "{permission}");
    assert_eq!(permission["SourceAccount"], json!({"Ref": "AWS::AccountId"}));
}

#[test]
fn failures_reach_the_operators_topic() {
    let template = translated();
    let resources = template["Resources"].as_object().expect("resources");
    let alarms: Vec<&Value> = resources.values().filter(|r| r["Type"] == "AWS::CloudWatch::Alarm").collect();
    for alarm in &alarms {
        assert_eq!(alarm["Properties"]["AlarmActions"], json!([{"Ref": "OperatorsTopic"}]), "{alarm}");
        // A failure counted is a failure too many.
        let metric = alarm["Properties"]["MetricName"].as_str().unwrap_or_default();
        if ["Errors", "DrainFailures", "MessagesRejected", "Throttles"].contains(&metric) {
            assert_eq!(alarm["Properties"]["Threshold"], 0, "{alarm}");
            assert_eq!(alarm["Properties"]["ComparisonOperator"], "GreaterThanThreshold", "{alarm}");
        }
    }
    let watching = |namespace: &str, metric: &str, dimension: Value| {
        alarms.iter().any(|a| {
            let p = &a["Properties"];
            p["Namespace"] == namespace && p["MetricName"] == metric && p["Dimensions"][0]["Value"] == dimension
        })
    };
    for function in FUNCTIONS {
        assert!(watching("AWS/Lambda", "Errors", json!({"Ref": function})), "no Errors alarm for {function}");
    }
    assert!(watching(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        json!({"Fn::GetAtt": ["SpotDrainerFailedEvents", "QueueName"]})
    ));
    assert!(watching("OpsSuite", "MessagesRejected", json!({"Ref": "MqPollerFunction"})), "the metric mq-poller emits");
    // A batch's failed records are not failed invocations: the drain's own count is watched.
    assert!(
        watching("OpsSuite", "DrainFailures", json!({"Ref": "SpotDrainerFunction"})),
        "the metric spot-drainer emits"
    );

    let rule = &resources["RotationFailedRule"]["Properties"];
    assert_eq!(rule["EventPattern"]["source"], json!(["aws.secretsmanager"]));
    assert_eq!(rule["EventPattern"]["detail"]["eventName"], json!(["RotationFailed"]));
    assert_eq!(rule["Targets"][0]["Arn"], json!({"Ref": "OperatorsTopic"}));
    // The topic lets this stack's rules and this account's alarms publish.
    let policy = resources["OperatorsTopicPolicy"]["Properties"]["PolicyDocument"].to_string();
    assert!(policy.contains("events.amazonaws.com") && policy.contains("cloudwatch.amazonaws.com"), "{policy}");
    let rule_name = resources["RotationFailedRule"]["Properties"]["Name"]["Fn::Sub"].as_str().expect("name");
    assert!(rule_name.starts_with("${AWS::StackName}-") && policy.contains("rule/${AWS::StackName}-*"), "{policy}");
    assert_eq!(resources["OperatorsEmailSubscription"]["Condition"], "OperatorEmailGiven");
}

#[test]
fn the_dashboard_shows_each_function_and_the_suites_metrics() {
    let template = translated();
    let body = &template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"];
    let text = body[0]
        .as_str()
        .expect("body")
        .replace("${Prefix}", "ops")
        .replace("${AWS::StackName}", "ops")
        .replace("${AWS::Region}", "us-east-1");
    assert_eq!(body[1], json!({"Prefix": {"Ref": "AWS::StackName"}}));
    let dashboard: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the dashboard body is not JSON ({e}):\n{text}"));
    let widgets = dashboard["widgets"].as_array().expect("widgets");
    let all = dashboard.to_string();
    for function in
        ["ops-hello-api", "ops-spot-drainer", "ops-spot-drainer-lifecycle", "ops-secret-rotation", "ops-mq-poller"]
    {
        assert!(all.contains(function), "{function} is not on the dashboard");
        // Each function's name is the one the template gives it.
    }
    for metric in [
        "Invocations",
        "Errors",
        "Duration",
        "RegistrationsRemoved",
        "DrainFailures",
        "DrainSeconds",
        "MessagesReceived",
        "MessagesStored",
        "MessagesRejected",
        "PollDuration",
        "Greetings",
        "BadRequests",
        "ReplicationWaitMs",
        "HostsRotated",
        "ServersRolledBack",
    ] {
        assert!(all.contains(&format!("\"{metric}\"")), "{metric} is not on the dashboard");
    }
    assert!(
        all.contains("StepsSucceeded") || all.contains("{OpsSuite,FunctionName,Engine}"),
        "rotation steps by engine"
    );
    assert!(all.contains("MetricName=\\\"PasswordDowntimeMs\\\""), "the password downtime, by source");
    let log = widgets.iter().find(|w| w["type"] == "log").expect("a Logs Insights widget");
    assert!(
        log["properties"]["query"]
            .as_str()
            .is_some_and(|q| q.contains("initDurationMs") && q.contains("maxMemoryUsedMB")),
        "{log}"
    );
    for (function, name) in
        [("HelloApiFunction", "hello-api"), ("SpotDrainerFunction", "spot-drainer"), ("MqPollerFunction", "mq-poller")]
    {
        assert_eq!(
            template["Resources"][function]["Properties"]["FunctionName"],
            json!({"Fn::Sub": format!("${{AWS::StackName}}-{name}")})
        );
    }
}

#[test]
fn hello_api_is_deployed_on_both_api_kinds_and_throttled() {
    let template = translated();
    let resources = template["Resources"].as_object().expect("resources");
    let rest = &resources["ServerlessRestApiProdStage"]["Properties"];
    assert_eq!(rest["MethodSettings"][0]["ThrottlingRateLimit"], json!({"Ref": "HelloApiThrottleRate"}), "{rest}");
    assert_eq!(rest["MethodSettings"][0]["ThrottlingBurstLimit"], json!({"Ref": "HelloApiThrottleBurst"}), "{rest}");
    assert_eq!(rest["AccessLogSetting"]["Fn::If"][0], "HelloApiRestAccessLogs", "REST access logs are opt-in: {rest}");
    let http = &resources["ServerlessHttpApiApiGatewayDefaultStage"]["Properties"];
    assert_eq!(http["DefaultRouteSettings"]["ThrottlingRateLimit"], json!({"Ref": "HelloApiThrottleRate"}), "{http}");
    assert_eq!(http["AccessLogSettings"]["DestinationArn"], json!({"Fn::GetAtt": ["HelloApiAccessLogGroup", "Arn"]}));
    assert_eq!(resources["ServerlessHttpApi"]["Type"], "AWS::ApiGatewayV2::Api");
    assert!(template["Outputs"]["HelloApiUrl"]["Value"].to_string().contains("${ServerlessRestApi}.execute-api"));
}

#[test]
fn free_form_parameters_fail_early_and_pairs_come_together() {
    let template = translated();
    for (name, parameter) in template["Parameters"].as_object().expect("parameters") {
        match parameter["Type"].as_str() {
            Some("String") => assert!(
                parameter.get("AllowedPattern").is_some() || parameter.get("AllowedValues").is_some(),
                "{name} takes anything"
            ),
            Some("Number") => assert!(
                parameter.get("AllowedValues").is_some() || parameter.get("MinValue").is_some(),
                "{name} takes any number"
            ),
            _ => {}
        }
    }
    let rules = template["Rules"].as_object().expect("Rules");
    for (rule, needs) in [
        ("RotationSubnetsNeedSecurityGroups", "RotationSecurityGroupIds"),
        ("MqSubnetsNeedSecurityGroups", "MqSecurityGroupIds"),
        ("BrokerNeedsItsSecret", "BrokerSecretArn"),
    ] {
        assert!(rules[rule]["Assertions"].to_string().contains(needs), "{rule}: {}", rules[rule]);
    }
    let sar = &template["Metadata"]["AWS::ServerlessRepo::Application"];
    assert!(sar["Name"].is_string() && sar["SemanticVersion"].is_string() && sar["SpdxLicenseId"].is_string(), "{sar}");
}

#[test]
fn checkov_is_clean_and_each_skip_says_why() {
    let checkov = workspace_root().join(".venv-checkov/bin/checkov");
    let output = Command::new(&checkov)
        .args(["-f", "template.yaml", "--framework", "cloudformation", "--compact", "--quiet", "--skip-download"])
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("running {} (run the README's test command): {e}", checkov.display()));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "checkov found problems:\n{report}");
    assert!(report.contains("Failed checks: 0"), "{report}");
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template");
    let lines: Vec<&str> = template.lines().collect();
    let skips: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.trim_start().starts_with("- id: CKV_")).map(|(i, _)| i).collect();
    assert!(!skips.is_empty());
    for i in skips {
        let comment = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or_default();
        assert!(comment.starts_with("comment: ") && comment.len() > 30, "skip without a reason: {}", lines[i]);
    }
}

#[test]
fn by_default_no_role_reads_any_secret_without_a_condition_and_master_secrets_need_their_tag() {
    let template = translated();
    let resources = template["Resources"].as_object().expect("resources");
    let reads_a_wildcard_unconditionally = |given: &Value| -> Vec<String> {
        let mut found = Vec::new();
        for (name, role) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::IAM::Role") {
            let policies = resolved(&template, given, &role["Properties"]["Policies"]);
            for statement in policies
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default())
            {
                let reads = actions(&statement).iter().any(|a| a == "secretsmanager:GetSecretValue");
                let wildcard = statement["Resource"].to_string().contains(":secret:*");
                if reads && wildcard && statement.get("Condition").is_none() {
                    found.push(format!("{name}: {statement}"));
                }
            }
        }
        found
    };
    assert_eq!(reads_a_wildcard_unconditionally(&json!({})), Vec::<String>::new());
    let master = resolved(
        &template,
        &json!({}),
        &by_sid(&role_statements(&template, "SecretRotationRole"), "ReadMasterSecrets"),
    );
    assert_eq!(
        master["Condition"],
        json!({"StringEquals": {"secretsmanager:ResourceTag/ops-suite:rotation-master": "true"}}),
        "{master}"
    );
    // Naming the master secrets replaces the tag with the names.
    let named = json!({"MasterSecretsArnPattern": "arn:aws:secretsmanager:us-east-1:123456789012:secret:masters/*"});
    let master =
        resolved(&template, &named, &by_sid(&role_statements(&template, "SecretRotationRole"), "ReadMasterSecrets"));
    assert_eq!((master.get("Condition"), &master["Resource"]), (None, &json!({"Ref": "MasterSecretsArnPattern"})));
}

#[test]
fn every_function_logs_at_a_level_that_keeps_its_metrics() {
    // The EMF metrics are INFO lines: a higher application log level drops them, and the
    // alarms on them (treating missing data as not breaching) would stay green.
    let template = translated();
    for (name, function) in template["Resources"].as_object().expect("resources") {
        if function["Type"] == "AWS::Lambda::Function" {
            let level = &function["Properties"]["LoggingConfig"]["ApplicationLogLevel"];
            assert!(["INFO", "DEBUG", "TRACE"].contains(&level.as_str().unwrap_or_default()), "{name}: {level}");
        }
    }
}

/// The translated layer whose logical id starts with `name` (SAM adds a content hash to it).
fn layer<'t>(template: &'t Value, name: &str) -> (&'t String, &'t Value) {
    let resources = template["Resources"].as_object().expect("resources");
    let mut found = resources.iter().filter(|(id, r)| id.starts_with(name) && r["Type"] == "AWS::Lambda::LayerVersion");
    let layer = found.next().unwrap_or_else(|| panic!("no layer {name}"));
    assert!(found.next().is_none(), "one layer {name}");
    layer
}

#[test]
fn the_secrets_cache_extension_is_two_layers_one_per_architecture_built_by_its_makefile() {
    let template = translated();
    let script = "import json, sys; from samtranslator.yaml_helper import yaml_parse; print(json.dumps(yaml_parse(open(sys.argv[1]).read())))";
    let raw = Command::new(venv_bin("python"))
        .args(["-c", script])
        .arg(workspace_root().join("template.yaml"))
        .output()
        .expect("reading the template");
    let raw: Value = serde_json::from_slice(&raw.stdout).expect("the template as JSON");
    for (name, architecture, output) in [
        ("SecretsCacheLayerArm64", "arm64", "SecretsCacheLayerArm64Arn"),
        ("SecretsCacheLayerX86", "x86_64", "SecretsCacheLayerX86Arn"),
    ] {
        let (id, layer) = layer(&template, name);
        assert_eq!(layer["Condition"], "DeploySecretsCache", "{layer}");
        assert_eq!(layer["Properties"]["CompatibleArchitectures"], json!([architecture]), "{layer}");
        assert_eq!(layer["Properties"]["Content"]["S3Key"], "layer.zip", "{layer}");
        // SAM CLI reads the build's Metadata from the template itself (the translation drops it).
        let metadata = &raw["Resources"][name]["Metadata"];
        assert_eq!(metadata["BuildMethod"], "makefile", "{metadata}");
        assert_eq!(metadata["BuildArchitecture"], architecture, "{metadata}");
        let out = &template["Outputs"][output];
        assert_eq!((out["Condition"].as_str(), &out["Value"]), (Some("DeploySecretsCache"), &json!({"Ref": id})));
        let makefile = std::fs::read_to_string(workspace_root().join("extensions/secrets-cache/Makefile")).unwrap();
        assert!(makefile.contains(&format!("build-{name}:")), "the Makefile has SAM's target for {name}");
    }
    let without = deployed(&template, &json!({"DeploySecretsCache": "false"}));
    assert!(!without.iter().any(|name| name.starts_with("SecretsCacheLayer")), "{without:?}");
}

#[test]
fn mq_poller_reads_its_broker_secret_through_the_layer_of_its_architecture_when_the_stack_has_both() {
    let template = translated();
    let function = &template["Resources"]["MqPollerFunction"]["Properties"];
    let (arm64, _) = layer(&template, "SecretsCacheLayerArm64");
    let (x86, _) = layer(&template, "SecretsCacheLayerX86");
    let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:broker-AbCdEf";
    let with = resolved(&template, &json!({"BrokerSecretArn": secret}), function);
    assert_eq!(with["Layers"], json!([{"Ref": arm64}]), "{with}");
    // Fetched during init: the first poll's read is served from memory.
    assert_eq!(
        with["Environment"]["Variables"]["SECRETS_CACHE_PREFETCH"],
        json!({"Fn::Sub": "${BrokerSecretArn}@AWSCURRENT"}),
        "with its stage: a name may hold an @"
    );
    let on_x86 = resolved(&template, &json!({"BrokerSecretArn": secret, "Architecture": "x86_64"}), function);
    assert_eq!(on_x86["Layers"], json!([{"Ref": x86}]), "{on_x86}");
    for given in [json!({}), json!({"BrokerSecretArn": secret, "DeploySecretsCache": "false"})] {
        let without = resolved(&template, &given, function);
        assert!(without.get("Layers").is_none_or(|l| l == &json!([])), "{given}: {without}");
        assert!(without["Environment"]["Variables"].get("SECRETS_CACHE_PREFETCH").is_none(), "{given}: {without}");
    }
    // The extension's refresh asks DescribeSecret first (tests/secrets_cache/iam.rs refreshes
    // under exactly this statement).
    let credentials = by_sid(&role_statements(&template, "MqPollerRole"), "BrokerCredentials");
    assert!(actions(&credentials).contains(&"secretsmanager:DescribeSecret".to_owned()), "{credentials}");
}
