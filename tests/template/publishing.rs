//! Publishing to the Serverless Application Repository: the metadata the repository's API
//! accepts (its documented lengths and patterns, from botocore's model in the pinned tools),
//! files that exist, a licence the crates carry, and `sam package` uploading code, licence and
//! readme (to moto's S3: the step before `sam publish`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use harness_runtime::paths::{venv_bin, workspace_root};
use harness_services::moto::Moto;

/// The metadata problems the repository's rules find in `template`.
fn metadata_problems(template: &Path) -> (Vec<String>, Value) {
    let script = workspace_root().join("harness/services/sar_metadata.py");
    let output = Command::new(venv_bin("python")).arg(script).arg(template).output().expect("running python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let problems = report["problems"].as_array().expect("a list").iter().map(|p| p.to_string()).collect();
    (problems, report)
}

#[test]
fn the_application_metadata_is_what_the_repository_accepts_and_names_files_that_exist() {
    let root = workspace_root();
    let (problems, report) = metadata_problems(&root.join("template.yaml"));
    assert_eq!(problems, Vec::<String>::new());
    // The rules were read from the model, not assumed.
    assert_eq!(report["documented"], serde_json::json!(["Author", "Labels", "Name", "Description"]));
    let metadata = &report["metadata"];
    for field in ["LicenseUrl", "ReadmeUrl"] {
        let file = metadata[field].as_str().expect(field);
        assert!(root.join(file).is_file(), "{field}: {file} is not in the repository");
    }
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let licence = cargo.lines().find(|l| l.starts_with("license = ")).expect("a licence");
    let id = metadata["SpdxLicenseId"].as_str().expect("an id");
    assert!(licence.split(['"', ' ']).any(|word| word == id), "{id} is not one of the crates' licences: {licence}");
    assert!(std::fs::read_to_string(root.join(metadata["LicenseUrl"].as_str().expect("url")))
        .expect("licence")
        .contains("MIT License"));
}

#[test]
fn the_metadata_check_refuses_an_author_with_a_space_and_a_long_description() {
    // The check itself, on what the first template had.
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template");
    let wrong = template
        .replace("Author: ops-suite-maintainers", "Author: ops-suite maintainers")
        .replace("Labels: [rust,", "Labels: [rust, a, b, c, d, e, f, g, h,");
    let dir = tempdir("sar-metadata");
    let path = dir.join("template.yaml");
    std::fs::write(&path, wrong).expect("write");
    let (problems, _) = metadata_problems(&path);
    assert!(problems.iter().any(|p| p.contains("Author")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("labels, at most 10")), "{problems:?}");
}

#[tokio::test]
async fn sam_package_uploads_the_code_the_licence_and_the_readme() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::new(&config);
    s3.create_bucket().bucket("artifacts").send().await.expect("bucket");
    // The template as it is, but each function's and layer's code a small folder: `sam package`
    // zips CodeUri, and "." is the whole repository (target/ included) until `sam build` has run.
    let dir = tempdir("sam-package");
    let code = dir.join("code");
    std::fs::create_dir_all(&code).expect("code dir");
    std::fs::write(code.join("bootstrap"), b"#!/bin/sh\n").expect("bootstrap");
    let root = workspace_root();
    let template = std::fs::read_to_string(root.join("template.yaml")).expect("template");
    // Layers' ContentUri too (sam build makes their zips).
    let copy = template
        .lines()
        .map(|line| match line.split_once("ContentUri: ").or_else(|| line.split_once("CodeUri: ")) {
            Some((indent, _)) if indent.trim().is_empty() => {
                format!("{indent}{}: code", line.trim().split(':').next().unwrap_or_default())
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("template.yaml"), copy).expect("copy");
    for file in ["README.md", "LICENSE-MIT"] {
        std::fs::copy(root.join(file), dir.join(file)).expect("copy");
    }
    let output = Command::new(venv_bin("sam"))
        .args(["package", "--template-file", "template.yaml", "--s3-bucket", "artifacts"])
        .args(["--output-template-file", "packaged.yaml", "--region", "us-east-1", "--force-upload"])
        .current_dir(&dir)
        .env("SAM_CLI_TELEMETRY", "0")
        .envs(moto.env())
        .output()
        .expect("running sam");
    assert!(output.status.success(), "sam package: {}", String::from_utf8_lossy(&output.stderr));
    let packaged = std::fs::read_to_string(dir.join("packaged.yaml")).expect("packaged");
    assert!(!packaged.contains("CodeUri: code"), "every function's code is uploaded");
    for field in ["LicenseUrl: s3://artifacts/", "ReadmeUrl: s3://artifacts/", "CodeUri: s3://artifacts/"] {
        assert!(packaged.contains(field), "{field} not in the packaged template:\n{packaged}");
    }
    let listed = s3.list_objects_v2().bucket("artifacts").send().await.expect("list");
    assert!(listed.contents().len() >= 3, "code, licence and readme uploaded: {:?}", listed.contents());
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = harness_services::scratch_dir(name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
