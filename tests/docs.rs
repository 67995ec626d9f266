//! The documents promise nothing the code does not hold: every test that SECURITY.md names as
//! the proof of a guarantee exists, and the README's two commands are the ones CI runs.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() && name != "target" && !name.starts_with('.') {
            rust_sources(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_test_security_md_cites_exists() {
    let security = std::fs::read_to_string(repo().join("SECURITY.md")).unwrap();
    let mut sources = Vec::new();
    for dir in ["policy", "devkit", "gateway", "tests", "loadgen"] {
        rust_sources(&repo().join(dir), &mut sources);
    }
    let code: String = sources
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let mut cited = 0;
    for line in security.lines().filter(|l| l.starts_with('|')) {
        let last_cell = line.trim_end_matches('|').rsplit('|').next().unwrap_or("");
        for name in last_cell.split('`').skip(1).step_by(2) {
            let is_test_name = name.contains('_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_test_name {
                cited += 1;
                assert!(
                    code.contains(&format!("fn {name}(")),
                    "SECURITY.md cites `{name}`, but no such test exists"
                );
            }
        }
    }
    assert!(cited >= 30, "SECURITY.md cites {cited} tests");
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(readme.contains("bash tests/run-all.sh"));
    assert!(ci.lines().any(|l| l.trim() == "bash tests/run-all.sh"));
    assert!(readme.contains("cargo run --bin poortwachter -- demo"));
}

fn yaml_documents(path: &str) -> Vec<yaml_rust2::Yaml> {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

#[test]
fn deployment_files_parse_and_keep_their_safety_settings() {
    let compose = &yaml_documents("deploy/compose.yaml")[0];
    for service in ["gateway", "postgres", "otel-collector"] {
        assert!(
            !compose["services"][service].is_badvalue(),
            "compose has the {service} service"
        );
    }
    assert_eq!(
        compose["services"]["gateway"]["read_only"].as_bool(),
        Some(true)
    );

    // The compose PostgreSQL speaks TLS and refuses plaintext from the network; the gateway's
    // URL leaves TLS to the configuration (verify-full).
    let postgres: Vec<&str> = compose["services"]["postgres"]["command"]
        .as_vec()
        .expect("the postgres service has a command")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(postgres.contains(&"ssl=on"), "{postgres:?}");
    assert!(
        postgres.contains(&"hba_file=/etc/postgresql/pg_hba.conf"),
        "{postgres:?}"
    );
    let hba = std::fs::read_to_string(repo().join("deploy/postgres/pg_hba.conf")).unwrap();
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(
        rules
            .iter()
            .all(|r| r.starts_with("local") || r.starts_with("hostssl") || r.ends_with("reject")),
        "only TLS over the network: {rules:?}"
    );
    let url = compose["services"]["gateway"]["environment"]["POORTWACHTER_DATABASE_URL"]
        .as_str()
        .expect("the gateway's database URL");
    assert!(
        !url.contains("ssl"),
        "TLS is set in the configuration, not the URL: {url}"
    );

    let deployment = &yaml_documents("deploy/k8s/deployment.yaml")[0];
    assert_eq!(deployment["kind"].as_str(), Some("Deployment"));
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(2));
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );

    let service = &yaml_documents("deploy/k8s/service.yaml")[0];
    assert_eq!(service["kind"].as_str(), Some("Service"));
    let secrets = yaml_documents("deploy/k8s/secrets.yaml");
    assert_eq!(secrets.len(), 2);
    assert!(secrets.iter().all(|s| s["kind"].as_str() == Some("Secret")));
    let collector = &yaml_documents("deploy/otel-collector.yaml")[0];
    assert!(!collector["receivers"]["otlp"].is_badvalue());

    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("USER nonroot"),
        "the image runs as a non-root user"
    );
    assert!(
        dockerfile.matches("FROM ").count() >= 2,
        "multi-stage build"
    );
}

/// One TLS implementation and one crypto provider: rustls with ring (the PostgreSQL client
/// included), no OpenSSL, no native-tls, no aws-lc.
#[test]
fn the_build_holds_one_tls_stack_rustls_with_ring() {
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    let packages: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"'))
        .collect();
    for other in [
        "aws-lc-rs",
        "aws-lc-sys",
        "openssl",
        "openssl-sys",
        "native-tls",
    ] {
        assert!(!packages.contains(&other), "Cargo.lock holds {other}");
    }
    for needed in ["rustls", "ring", "sqlx-postgres"] {
        assert!(packages.contains(&needed), "Cargo.lock lacks {needed}");
    }
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let sqlx = manifest
        .lines()
        .find(|l| l.starts_with("sqlx = "))
        .expect("sqlx in the workspace manifest");
    assert!(sqlx.contains("\"tls-rustls-ring-webpki\""), "{sqlx}");
}

#[test]
fn the_image_build_copies_every_workspace_member() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = manifest.parse().expect("Cargo.toml parses");
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace members");
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    assert!(!members.is_empty());
    for member in members {
        let member = member.as_str().expect("a path");
        assert!(
            dockerfile
                .lines()
                .any(|l| l.trim() == format!("COPY {member} {member}")),
            "deploy/Dockerfile does not COPY the workspace member {member}: cargo would refuse the build"
        );
    }
}

/// The image's build stage sees only what the Dockerfile copies: copy exactly those paths into an
/// empty directory and ask cargo to load the workspace there (it fails on a missing member, a
/// path dependency outside the copy, or a lock file that no longer fits).
#[test]
fn the_workspace_loads_from_exactly_what_the_dockerfile_copies() {
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let context = tempfile::tempdir().unwrap();
    let mut copied = 0;
    for line in dockerfile.lines().map(str::trim) {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        let (sources, _dest) = parts.split_at(parts.len() - 1);
        for source in sources {
            copy_tree(&repo().join(source), &context.path().join(source));
            copied += 1;
        }
    }
    assert!(
        copied >= 3,
        "the Dockerfile copies too little: {copied} paths"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .current_dir(context.path())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo cannot load the workspace from the Dockerfile's context: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == "target" {
                continue;
            }
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::copy(from, to).unwrap();
    }
}
