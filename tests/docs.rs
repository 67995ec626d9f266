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
    for dir in ["policy", "gateway", "tests", "loadgen"] {
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
