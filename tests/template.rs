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
