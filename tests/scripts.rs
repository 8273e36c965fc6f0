//! The scripts a person runs: sourcing their shared functions leaves the caller's shell as it
//! was, `scripts/dev-env` only prints variables for the caller to take, and the architecture
//! check scripts/sam-local makes before invoking reads an ELF header right; the RDS roots
//! secret-rotation ships are what scripts/update-rds-ca-bundle builds from its pinned package.

use std::process::Command;

use harness_runtime::paths::workspace_root;

/// Runs `script` in a fresh bash; returns its stdout, or panics with its stderr.
fn bash(script: &str) -> String {
    let output =
        Command::new("bash").arg("-c").arg(script).current_dir(workspace_root()).output().expect("running bash");
    assert!(output.status.success(), "bash failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn sourcing_lib_sh_changes_no_shell_option_directory_or_trap() {
    let state = r#"printf '%s|%s|%s\n' "$(set +o | sort | tr '\n' ';')" "$PWD" "$(trap -p | tr '\n' ';')""#;
    let script = format!(
        "cd /tmp; trap 'echo bye' EXIT; {state}; source '{}/scripts/lib.sh'; {state}",
        workspace_root().display()
    );
    let output = bash(&script);
    let lines: Vec<&str> = output.lines().filter(|l| l.contains('|')).collect();
    assert_eq!(lines.len(), 2, "{output}");
    assert_eq!(lines[0], lines[1], "sourcing lib.sh changed the shell");
    // A failing command after sourcing does not end the shell.
    let survived = bash(&format!("source '{}/scripts/lib.sh'; false; echo still-here", workspace_root().display()));
    assert!(survived.contains("still-here"));
}

#[test]
fn dev_env_prints_only_variables_for_eval() {
    let output = bash("scripts/dev-env");
    assert!(!output.trim().is_empty());
    for line in output.lines() {
        assert!(line.starts_with("export "), "dev-env printed something other than a variable: {line:?}");
    }
    // Taking them puts the project's tools first on PATH.
    let path = bash(r#"eval "$(scripts/dev-env)"; command -v cargo-lambda"#);
    assert_eq!(
        path.trim(),
        workspace_root().join(".venv/bin/cargo-lambda").canonicalize().expect("venv").display().to_string()
    );
}

#[test]
fn elf_architecture_names_the_machine_sam_local_checks_before_invoking() {
    let lib = format!("source '{}/scripts/lib.sh'", workspace_root().display());
    let dir = std::env::temp_dir().join(format!("ops-suite-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // An ELF header of an aarch64 binary (e_machine 183 at offset 18), and a text file.
    let mut arm = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    arm.resize(18, 0);
    arm.extend_from_slice(&183u16.to_le_bytes());
    arm.resize(64, 0);
    std::fs::write(dir.join("arm64"), &arm).expect("writing");
    std::fs::write(dir.join("text"), "#!/bin/sh\necho hi\n").expect("writing");
    let this = std::env::current_exe().expect("this test binary");
    let output = bash(&format!(
        "{lib}; elf_architecture '{}'; elf_architecture '{}'; elf_architecture '{}'",
        this.display(),
        dir.join("arm64").display(),
        dir.join("text").display()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let expected = if cfg!(target_arch = "x86_64") { "x86_64" } else { "arm64" };
    assert_eq!(output.lines().collect::<Vec<_>>(), [expected, "arm64", "not-elf"]);
}

#[test]
fn the_shipped_rds_bundle_is_what_the_script_builds_from_the_pinned_package() {
    let out = std::env::temp_dir().join(format!("ops-suite-rds-bundle-{}.pem", std::process::id()));
    let status = Command::new("bash")
        .arg("scripts/update-rds-ca-bundle")
        .env("RDS_CA_BUNDLE_OUT", &out)
        .current_dir(workspace_root())
        .status()
        .expect("running the script");
    assert!(status.success(), "scripts/update-rds-ca-bundle failed");
    let built = std::fs::read(&out).expect("the built bundle");
    let _ = std::fs::remove_file(&out);
    let shipped = std::fs::read(workspace_root().join("functions/secret-rotation/certs/rds-ca-bundle.pem"))
        .expect("the shipped bundle");
    assert!(built == shipped, "the shipped bundle differs from what the script builds: run it and commit the file");
}
