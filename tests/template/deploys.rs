//! Deploys: every function published as a version behind the alias `live`, which CodeDeploy
//! moves (a canary for hello-api, the PreTraffic hook for every function), everything that
//! invokes a function naming the alias, and tracing on.

use serde_json::{json, Value};

use harness_services::cloudformation::{actions, by_sid, role_statements, translated};

use crate::FUNCTIONS;

fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    template["Resources"].as_object().expect("resources").iter().filter(|(_, r)| r["Type"] == kind).collect()
}

/// The logical id of `function`'s alias `live`.
fn alias_of(template: &Value, function: &str) -> String {
    let aliases: Vec<_> = of_type(template, "AWS::Lambda::Alias")
        .into_iter()
        .filter(|(_, a)| a["Properties"]["FunctionName"] == json!({"Ref": function}))
        .collect();
    assert_eq!(aliases.len(), 1, "{function}: {aliases:?}");
    assert_eq!(aliases[0].1["Properties"]["Name"], "live", "{function}");
    aliases[0].0.clone()
}

#[test]
fn every_function_deploys_behind_its_alias_through_codedeploy_with_the_pretraffic_hook() {
    let template = translated();
    let resources = &template["Resources"];
    for function in FUNCTIONS {
        let alias = alias_of(&template, function);
        let update = &resources[&alias]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"];
        assert_eq!(update["BeforeAllowTrafficHook"], json!({"Ref": "PreTrafficHookFunction"}), "{function}");
        let group = &resources[update["DeploymentGroupName"]["Ref"].as_str().expect("a deployment group")];
        // The group takes the function's condition: left out with the function.
        assert_eq!(group["Condition"], resources[function]["Condition"], "{function}");
        let config = group["Properties"]["DeploymentConfigName"].to_string();
        if function == "HelloApiFunction" {
            assert!(
                config.contains("CodeDeployDefault.Lambda") && config.contains("\"Canary10Percent5Minutes\""),
                "{config}"
            );
            assert_eq!(
                group["Properties"]["AlarmConfiguration"]["Alarms"],
                json!([{"Name": {"Ref": "HelloApiErrorsAlarm"}}]),
                "the canary rolls back on hello-api's errors"
            );
        } else {
            assert!(
                config.contains("CodeDeployDefault.Lambda") && config.contains("\"AllAtOnce\""),
                "{function}: {config}"
            );
        }
    }
    // The hook is invoked by CodeDeploy's role, which may invoke only CodeDeployHook_* functions,
    // and has no deployment of its own.
    let hook = &resources["PreTrafficHookFunction"]["Properties"];
    assert_eq!(hook["FunctionName"], json!({"Fn::Sub": "CodeDeployHook_${AWS::StackName}-pretraffic"}));
    let hook_alias = alias_of(&template, "PreTrafficHookFunction");
    assert!(resources[&hook_alias].get("UpdatePolicy").is_none(), "the hook would wait for itself");
}

#[test]
fn whatever_invokes_a_function_names_its_alias() {
    let template = translated();
    let resources = &template["Resources"];
    let aliases: Vec<String> = FUNCTIONS.iter().map(|f| alias_of(&template, f)).collect();
    let names_an_alias = |value: &Value| aliases.iter().any(|a| value.to_string().contains(&format!("\"{a}\"")));
    for (name, mapping) in of_type(&template, "AWS::Lambda::EventSourceMapping") {
        assert!(names_an_alias(&mapping["Properties"]["FunctionName"]), "{name}: {mapping}");
    }
    for (name, permission) in of_type(&template, "AWS::Lambda::Permission") {
        assert!(names_an_alias(&permission["Properties"]["FunctionName"]), "{name}: {permission}");
    }
    for (name, rule) in of_type(&template, "AWS::Events::Rule") {
        for target in rule["Properties"]["Targets"].as_array().expect("targets") {
            let arn = target["Arn"].to_string();
            if FUNCTIONS.iter().any(|f| arn.contains(f)) {
                assert!(names_an_alias(&target["Arn"]), "{name} targets a bare function: {arn}");
            }
        }
    }
    let rest = resources["ServerlessRestApi"]["Properties"]["Body"].to_string();
    assert!(rest.contains(&aliases[0]), "the REST API integrates the alias: {rest}");
    for (name, integration) in of_type(&template, "AWS::ApiGatewayV2::Integration") {
        assert!(names_an_alias(&integration["Properties"]), "{name}");
    }
    let http = resources["ServerlessHttpApi"]["Properties"]["Body"].to_string();
    assert!(http.contains(&aliases[0]), "the HTTP API integrates the alias: {http}");
    // Secrets are pointed at the alias, and the rotation role allows exactly that ARN.
    let output = &template["Outputs"]["SecretRotationFunctionArn"]["Value"];
    assert_eq!(output, &json!({"Ref": alias_of(&template, "SecretRotationFunction")}));
    let rotate = by_sid(&role_statements(&template, "SecretRotationRole"), "RotateTheSecrets");
    let allowed = &rotate["Condition"]["StringEquals"]["secretsmanager:resource/AllowRotationLambdaArn"];
    assert_eq!(
        allowed,
        &json!({"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-secret-rotation:live"})
    );
    // The lifecycle twin's retries and failure destination belong to the alias.
    let configs = of_type(&template, "AWS::Lambda::EventInvokeConfig");
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0].1["Properties"]["Qualifier"], "live");
}

#[test]
fn the_pretraffic_hook_invokes_the_new_versions_and_may_do_nothing_else() {
    let template = translated();
    let resources = &template["Resources"];
    let variables = &resources["PreTrafficHookFunction"]["Properties"]["Environment"]["Variables"];
    for (variable, function, condition) in [
        ("HELLO_API_VERSION", "HelloApiFunction", "DeployHelloApi"),
        ("SPOT_DRAINER_VERSION", "SpotDrainerFunction", "DeploySpotDrainer"),
        ("SPOT_DRAINER_LIFECYCLE_VERSION", "SpotDrainerLifecycleFunction", "SpotLifecycleHooks"),
        ("SECRET_ROTATION_VERSION", "SecretRotationFunction", "DeploySecretRotation"),
        ("MQ_POLLER_VERSION", "MqPollerFunction", "DeployMqPoller"),
    ] {
        let branches = &variables[variable]["Fn::If"];
        assert_eq!((&branches[0], &branches[2]), (&json!(condition), &json!("")), "{variable}");
        let version = branches[1]["Ref"].as_str().expect("a version");
        assert_eq!(resources[version]["Type"], "AWS::Lambda::Version", "{variable}");
        assert_eq!(resources[version]["Properties"]["FunctionName"], json!({"Ref": function}), "{variable}");
    }
    let statements = role_statements(&template, "PreTrafficHookRole");
    let granted: Vec<String> = statements.iter().flat_map(actions).collect();
    assert_eq!(
        granted,
        [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "lambda:InvokeFunction",
            "codedeploy:PutLifecycleEventHookExecutionStatus"
        ]
    );
    let invoke = by_sid(&statements, "InvokeNewVersions");
    for arn in invoke["Resource"].as_array().expect("a list") {
        let arn = arn["Fn::Sub"].as_str().expect("an ARN");
        assert!(
            arn.contains(":function:${AWS::StackName}-") && arn.ends_with(":*"),
            "versions of the suite only: {arn}"
        );
    }
    let report = by_sid(&statements, "ReportVerdicts");
    assert!(
        report["Resource"].to_string().contains(":deploymentgroup:${ServerlessDeploymentApplication}/*"),
        "{report}"
    );
}

#[test]
fn tracing_is_on_for_every_function_and_the_rest_api_and_every_role_may_write_traces() {
    let template = translated();
    let resources = &template["Resources"];
    for (name, function) in of_type(&template, "AWS::Lambda::Function") {
        assert_eq!(function["Properties"]["TracingConfig"], json!({"Mode": "Active"}), "{name}");
        let role = function["Properties"]["Role"]["Fn::GetAtt"][0].as_str().expect("an explicit role");
        let writes: Vec<String> = role_statements(&template, role).iter().flat_map(actions).collect();
        assert!(
            writes.contains(&"xray:PutTraceSegments".to_owned())
                && writes.contains(&"xray:PutTelemetryRecords".to_owned()),
            "{role} cannot write {name}'s traces"
        );
    }
    assert_eq!(resources["ServerlessRestApiProdStage"]["Properties"]["TracingEnabled"], true);
}
