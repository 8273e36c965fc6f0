//! What the workspace promises about how it is built: the release profile keeps panics
//! reportable, `rust-version` is what the locked dependencies need, and every test file under
//! `tests/` is a test target, and no crate's modules name each other in a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
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

/// The `path`s of the `[[test]]` targets in `tests/Cargo.toml`.
fn test_target_paths(manifest: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut in_test = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_test = line == "[[test]]";
        } else if let Some((key, value)) = line.split_once('=') {
            if in_test && key.trim() == "path" {
                paths.insert(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    paths
}

#[test]
fn every_test_file_under_tests_is_a_target_and_every_target_exists() {
    // `tests/` is a package root, so cargo discovers no target there (and `autotests = false`
    // says so): a file or directory-module not listed in tests/Cargo.toml would never run.
    let tests = workspace_root().join("tests");
    let manifest = std::fs::read_to_string(tests.join("Cargo.toml")).expect("reading tests/Cargo.toml");
    let targets = test_target_paths(&manifest);
    assert!(!targets.is_empty(), "no [[test]] target in tests/Cargo.toml");
    let mut found = BTreeSet::new();
    let mut undeclared = Vec::new();
    for entry in std::fs::read_dir(&tests).expect("reading tests/") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a UTF-8 name").to_owned();
        if path.is_file() && name.ends_with(".rs") {
            found.insert(name);
        } else if path.is_dir() {
            // A directory-module: its main.rs is the target, and it declares each file beside it.
            let main = std::fs::read_to_string(path.join("main.rs")).unwrap_or_default();
            let mut sources = 0;
            for module in std::fs::read_dir(&path).expect("reading a directory under tests/") {
                let file = module.expect("a directory entry").file_name().to_string_lossy().into_owned();
                if let Some(stem) = file.strip_suffix(".rs") {
                    sources += 1;
                    if stem != "main" && !main.lines().any(|l| l.trim() == format!("mod {stem};")) {
                        undeclared.push(format!("{name}/{file}"));
                    }
                }
            }
            if path.join("main.rs").is_file() {
                found.insert(format!("{name}/main.rs"));
            } else if sources > 0 {
                found.insert(format!("{name}/ (Rust files, no main.rs)"));
            }
        }
    }
    let not_targets: Vec<&String> = found.difference(&targets).collect();
    assert!(
        not_targets.is_empty(),
        "not the path of a [[test]] target in tests/Cargo.toml, so never run: {not_targets:?}"
    );
    let absent: Vec<&String> = targets.iter().filter(|path| !tests.join(path).is_file()).collect();
    assert!(absent.is_empty(), "[[test]] targets in tests/Cargo.toml whose file does not exist: {absent:?}");
    assert!(undeclared.is_empty(), "files of a directory-module its main.rs does not declare (mod): {undeclared:?}");
}

/// The modules of one crate (by their top-level name) and the ones each names through `crate::`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    fn walk(dir: &Path, top: Option<&str>, graph: &mut BTreeMap<String, BTreeSet<String>>) {
        for entry in std::fs::read_dir(dir).expect("reading src").flatten() {
            let path = entry.path();
            let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let module = top.map(str::to_owned).unwrap_or(name);
            if path.is_dir() {
                walk(&path, Some(&module), graph);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || ["lib", "main"].contains(&module.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("reading a module");
            let used = graph.entry(module.clone()).or_default();
            // Comments may name modules without using them.
            for line in text.lines().map(|l| l.split("//").next().unwrap_or_default()) {
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                        .collect();
                    if !name.is_empty() && name != module {
                        used.insert(name);
                    }
                }
            }
        }
    }
    let mut graph = BTreeMap::new();
    walk(src, None, &mut graph);
    graph
}

/// A cycle through `start`, if any, as the modules on it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == start {
                return Some([path.clone(), vec![start.to_owned()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn no_crate_has_a_module_cycle() {
    let crates = [
        "shared",
        "functions/hello-api",
        "functions/spot-drainer",
        "functions/secret-rotation",
        "functions/mq-poller",
        "extensions/secrets-cache",
    ];
    let mut cycles = Vec::new();
    for krate in crates {
        let graph = module_graph(&workspace_root().join(krate).join("src"));
        assert!(graph.len() > 1 || krate.ends_with("hello-api"), "{krate}: no modules read");
        cycles
            .extend(graph.keys().filter_map(|m| cycle_from(&graph, m)).map(|c| format!("{krate}: {}", c.join(" -> "))));
    }
    assert!(cycles.is_empty(), "module cycles: {cycles:#?}");
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("settings".to_owned(), BTreeSet::from(["broker".to_owned()])),
        ("broker".to_owned(), BTreeSet::from(["settings".to_owned()])),
        ("store".to_owned(), BTreeSet::new()),
    ]
    .into();
    assert_eq!(cycle_from(&graph, "settings"), Some(vec!["settings".into(), "broker".into(), "settings".into()]));
    assert_eq!(cycle_from(&graph, "store"), None);
}
