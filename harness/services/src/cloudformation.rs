//! The CloudFormation SAM makes of `template.yaml` (samtranslator, in the pinned tools), and
//! reading it as a deploy would: which conditions hold for given parameters, which resources are
//! created, what each refers to, and the statements of a role's inline policies.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use harness_runtime::paths::{venv_bin, workspace_root};

/// The CloudFormation SAM makes of the template (samtranslator, in the pinned tools).
pub fn translated() -> Value {
    let output = Command::new(venv_bin("python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("sam_translate.py"))
        .arg(workspace_root().join("template.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("running samtranslator (run the README's setup): {e}"));
    assert!(output.status.success(), "samtranslator: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("translated template JSON")
}

/// `value` with each `{"Condition": name}` replaced by that condition's own expression.
pub fn expand_conditions(value: &Value, conditions: &Value) -> Value {
    match value {
        Value::Object(map) => match map.get("Condition").and_then(|c| c.as_str()) {
            Some(name) if map.len() == 1 => expand_conditions(&conditions[name], conditions),
            _ => map.iter().map(|(k, v)| (k.clone(), expand_conditions(v, conditions))).collect(),
        },
        Value::Array(items) => items.iter().map(|v| expand_conditions(v, conditions)).collect(),
        other => other.clone(),
    }
}

/// The statements of an explicit role's inline policies; a policy under `Fn::If` counts with its
/// "true" branch (the one that grants more).
pub fn role_statements(template: &Value, role: &str) -> Vec<Value> {
    let policies = template["Resources"][role]["Properties"]["Policies"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{role} has policies"));
    policies
        .iter()
        .flat_map(|p| {
            let policy = if p.get("Fn::If").is_some() { p["Fn::If"][1].clone() } else { p.clone() };
            policy["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default()
        })
        .collect()
}

/// `value` as a deploy with `given` parameters sees it: each `Fn::If` replaced by the branch taken,
/// and what resolves to `AWS::NoValue` left out of its object or list.
pub fn resolved(template: &Value, given: &Value, value: &Value) -> Value {
    let no_value = |v: &Value| v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue");
    match value {
        Value::Object(map) if map.contains_key("Fn::If") => {
            let branches = &map["Fn::If"];
            let taken =
                if named_condition(template, given, branches[0].as_str()) { &branches[1] } else { &branches[2] };
            resolved(template, given, taken)
        }
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| (k.clone(), resolved(template, given, v))).filter(|(_, v)| !no_value(v)).collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| resolved(template, given, v)).filter(|v| !no_value(v)).collect())
        }
        other => other.clone(),
    }
}

/// A statement's actions, whether one or a list.
pub fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
        _ => vec![],
    }
}

/// The statement with `Sid` `sid`; panics if there is none.
pub fn by_sid(statements: &[Value], sid: &str) -> Value {
    statements.iter().find(|s| s["Sid"] == sid).cloned().unwrap_or_else(|| panic!("statement {sid}: {statements:?}"))
}

/// Parameters as a deploy with `given` (and every other default) would see them.
fn parameter(template: &Value, given: &Value, name: &str) -> Value {
    given.get(name).cloned().unwrap_or_else(|| template["Parameters"][name]["Default"].clone())
}

/// A condition's value for a deploy with `given` parameters. Takes the intrinsics the
/// template's conditions use.
pub fn holds(template: &Value, given: &Value, condition: &Value) -> bool {
    let eval = |v: &Value| scalar(template, given, v);
    match condition {
        Value::Object(map) if map.contains_key("Condition") => {
            holds(template, given, &template["Conditions"][map["Condition"].as_str().expect("name")])
        }
        Value::Object(map) if map.contains_key("Fn::Not") => !holds(template, given, &map["Fn::Not"][0]),
        Value::Object(map) if map.contains_key("Fn::And") => {
            map["Fn::And"].as_array().expect("and").iter().all(|c| holds(template, given, c))
        }
        Value::Object(map) if map.contains_key("Fn::Or") => {
            map["Fn::Or"].as_array().expect("or").iter().any(|c| holds(template, given, c))
        }
        Value::Object(map) if map.contains_key("Fn::Equals") => {
            eval(&map["Fn::Equals"][0]) == eval(&map["Fn::Equals"][1])
        }
        other => panic!("unexpected condition {other}"),
    }
}

fn scalar(template: &Value, given: &Value, value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Object(map) if map.contains_key("Ref") => {
            match parameter(template, given, map["Ref"].as_str().expect("ref")) {
                Value::String(s) => s,
                other => other.to_string(),
            }
        }
        Value::Object(map) if map.contains_key("Fn::Join") => scalar(template, given, &map["Fn::Join"][1]),
        // `Fn::Select` over `Fn::Split`: a field of a parameter (PollRate's unit and number).
        Value::Object(map) if map.contains_key("Fn::Select") => {
            let index = map["Fn::Select"][0].as_u64().expect("a literal index") as usize;
            let list = &map["Fn::Select"][1];
            let [separator, source] = [&list["Fn::Split"][0], &list["Fn::Split"][1]];
            let text = scalar(template, given, source);
            let separator = separator.as_str().expect("a literal separator");
            text.split(separator)
                .nth(index)
                .unwrap_or_else(|| panic!("Fn::Select {index} of {text:?} split on {separator:?}: a deploy would fail"))
                .to_owned()
        }
        other => panic!("unexpected value in a condition: {other}"),
    }
}

/// Whether the condition `name` holds for a deploy with `given` parameters; no name always holds.
pub fn named_condition(template: &Value, given: &Value, name: Option<&str>) -> bool {
    name.is_none_or(|name| holds(template, given, &template["Conditions"][name]))
}

/// The resources a deploy with `given` parameters creates.
pub fn deployed(template: &Value, given: &Value) -> BTreeSet<String> {
    let resources = template["Resources"].as_object().expect("resources");
    resources
        .iter()
        .filter(|(_, r)| named_condition(template, given, r["Condition"].as_str()))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Every resource `value` refers to (Ref, Fn::GetAtt, ${Name} in Fn::Sub), skipping the branch of
/// each Fn::If the deploy does not take.
pub fn references(template: &Value, given: &Value, value: &Value, found: &mut BTreeSet<String>) {
    let resources = template["Resources"].as_object().expect("resources");
    match value {
        Value::Object(map) => {
            if let Some(branches) = map.get("Fn::If") {
                let taken =
                    if named_condition(template, given, branches[0].as_str()) { &branches[1] } else { &branches[2] };
                return references(template, given, taken, found);
            }
            if let Some(Value::String(name)) = map.get("Ref") {
                found.insert(name.clone());
            }
            if let Some(name) = map.get("Fn::GetAtt").and_then(|g| g[0].as_str()) {
                found.insert(name.to_owned());
            }
            if let Some(sub) = map.get("Fn::Sub") {
                let text = if sub.is_array() { sub[0].as_str() } else { sub.as_str() }.unwrap_or_default();
                for name in resources.keys() {
                    if text.contains(&format!("${{{name}}}")) || text.contains(&format!("${{{name}.")) {
                        found.insert(name.clone());
                    }
                }
            }
            map.values().for_each(|v| references(template, given, v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(template, given, v, found)),
        _ => {}
    }
    found.retain(|name| resources.contains_key(name));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A template of the shape SAM writes: a parameter that turns a queue off, and a condition
    /// built of every intrinsic the evaluator takes (`Fn::Join` over a list parameter's `Ref`).
    fn template() -> Value {
        json!({
            "Parameters": {
                "DeployQueue": {"Type": "String", "Default": "true"},
                "Endpoint": {"Type": "String", "Default": ""}
            },
            "Conditions": {
                "QueueDeployed": {"Fn::Equals": [{"Ref": "DeployQueue"}, "true"]},
                "EndpointGiven": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Endpoint"}]}, ""]}]},
                "Polling": {"Fn::And": [
                    {"Condition": "QueueDeployed"},
                    {"Fn::Or": [{"Condition": "EndpointGiven"}, {"Fn::Equals": [{"Ref": "Endpoint"}, "always"]}]}
                ]}
            },
            "Resources": {
                "Function": {"Type": "AWS::Lambda::Function", "Properties": {
                    "Environment": {"Variables": {
                        "QUEUE": {"Fn::If": ["QueueDeployed", {"Ref": "Queue"}, {"Ref": "AWS::NoValue"}]},
                        "TOPIC": {"Fn::Sub": "arn:${Topic}"}
                    }},
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]}
                }},
                "Queue": {"Type": "AWS::SQS::Queue", "Condition": "QueueDeployed"},
                "Schedule": {"Type": "AWS::Events::Rule", "Condition": "Polling"},
                "Topic": {"Type": "AWS::SNS::Topic"},
                "Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [
                    {"PolicyDocument": {"Statement": [{"Sid": "Read", "Action": "sqs:ReceiveMessage"}]}},
                    {"Fn::If": ["QueueDeployed",
                        {"PolicyDocument": {"Statement": [
                            {"Sid": "Delete", "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes"]}
                        ]}},
                        {"Ref": "AWS::NoValue"}]}
                ]}}
            }
        })
    }

    #[test]
    fn conditions_resources_references_and_statements_follow_the_parameters() {
        let template = template();
        let defaults = json!({});
        let polling = json!({"Endpoint": "stomp://b:61613"});
        let off = json!({"DeployQueue": "false", "Endpoint": "stomp://b:61613"});
        let schedule = json!({"Condition": "Polling"});
        assert!(!holds(&template, &defaults, &schedule), "no endpoint by default");
        assert!(holds(&template, &polling, &schedule));
        assert!(!holds(&template, &off, &schedule));
        assert!(named_condition(&template, &off, None), "no condition always holds");

        let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(deployed(&template, &polling), names(&["Function", "Queue", "Role", "Schedule", "Topic"]));
        assert_eq!(deployed(&template, &off), names(&["Function", "Role", "Topic"]));

        let function = &template["Resources"]["Function"];
        let mut found = BTreeSet::new();
        references(&template, &polling, function, &mut found);
        assert_eq!(found, names(&["Queue", "Role", "Topic"]), "Ref, Fn::GetAtt and ${{Name}} in Fn::Sub");
        let mut found = BTreeSet::new();
        references(&template, &off, function, &mut found);
        assert_eq!(found, names(&["Role", "Topic"]), "the Fn::If branch not taken is skipped");

        let expanded = expand_conditions(&template["Conditions"]["Polling"], &template["Conditions"]).to_string();
        assert!(
            expanded.contains("DeployQueue") && expanded.contains("Endpoint") && !expanded.contains("\"Condition\"")
        );

        let statements = role_statements(&template, "Role");
        assert_eq!(statements.len(), 2, "the Fn::If policy counts with its true branch");
        assert_eq!(actions(&by_sid(&statements, "Read")), ["sqs:ReceiveMessage"]);
        assert_eq!(actions(&by_sid(&statements, "Delete")), ["sqs:DeleteMessage", "sqs:GetQueueAttributes"]);
    }
}
