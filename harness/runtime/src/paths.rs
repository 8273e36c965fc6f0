//! Where the workspace, its binaries and its tools are.

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The project-local virtualenv with the Python tools (`tools/requirements.txt`);
/// `OPS_SUITE_VENV` overrides it.
pub fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var_os("OPS_SUITE_VENV").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv"));
    venv.join("bin").join(tool)
}

/// A function's debug binary, as `cargo build --workspace` left it.
pub fn function_binary(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug").join(name)
}

/// A binary's release build, as `cargo build --release -p <name>` left it (the benches').
pub fn release_binary(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    target.join("release").join(name)
}

pub fn event_file(name: &str) -> PathBuf {
    workspace_root().join("events").join(name)
}

pub fn read_event(name: &str) -> serde_json::Value {
    let path = event_file(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Prints a bench's table and keeps it as `bench-results/<name>.md`.
pub fn publish_bench_table(name: &str, table: &str) {
    print!("{table}");
    let dir = workspace_root().join("bench-results");
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(format!("{name}.md")), table));
    if let Err(e) = written {
        eprintln!("could not write bench-results/{name}.md: {e}");
    }
}
