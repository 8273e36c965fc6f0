//! What the workspace promises about how it is built: the release profile keeps panics
//! reportable, and `rust-version` is what the locked dependencies need.

use std::process::Command;

use harness_runtime::paths::workspace_root;

fn manifest() -> String {
    std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("reading Cargo.toml")
}

/// The `key = value` lines of one `[section]` of the manifest.
fn section(name: &str) -> Vec<(String, String)> {
    let text = manifest();
    let header = format!("[{name}]");
    let mut lines = text.lines().skip_while(|l| l.trim() != header).skip(1);
    let mut found = Vec::new();
    for line in lines.by_ref() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        if let Some((key, value)) = line.split_once('=') {
            if !key.trim().starts_with('#') {
                found.push((key.trim().to_owned(), value.trim().trim_matches('"').to_owned()));
            }
        }
    }
    found
}

fn value(section_name: &str, key: &str) -> Option<String> {
    section(section_name).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn the_release_profile_unwinds_so_lambda_runtime_can_report_a_panic() {
    // Tests run debug builds, which unwind whatever the release profile says: so check it here.
    assert_eq!(value("profile.release", "panic").as_deref(), Some("unwind"));
}

fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn rust_version_is_what_the_locked_dependencies_need() {
    let declared = value("workspace.package", "rust-version").expect("workspace rust-version");
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--filter-platform",
            "x86_64-unknown-linux-gnu",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let needed = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["rust_version"].as_str().map(|v| (version(v), p["name"].as_str().unwrap_or("?").to_owned())))
        .max()
        .expect("some package states a rust-version");
    assert_eq!(version(&declared), needed.0, "rust-version says {declared}; {} needs {:?}", needed.1, needed.0);
    assert!(
        !workspace_root().join("rust-toolchain.toml").exists() && !workspace_root().join("rust-toolchain").exists(),
        "no toolchain file: builds here are offline and cannot fetch a toolchain"
    );
}
