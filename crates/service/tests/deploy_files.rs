//! The Dockerfile and railway.toml reference only files that exist and keep
//! the promises the README makes about them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap()
}

#[test]
fn dockerfile_copies_only_existing_paths_and_runs_as_non_root() {
    let dockerfile = read("Dockerfile");
    let ignored = read(".dockerignore");
    for line in dockerfile.lines().map(str::trim) {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                root().join(source).exists(),
                "Dockerfile copies missing {source}"
            );
            assert!(
                !ignored
                    .lines()
                    .any(|i| Path::new(source).starts_with(i.trim_end_matches('/'))),
                "{source} is excluded by .dockerignore"
            );
        }
    }
    assert!(dockerfile.contains("EXPOSE 8080"));
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/health"));
    assert!(
        dockerfile.contains("USER harpoon"),
        "runs as a non-root user"
    );
    assert!(dockerfile.contains("${PORT"), "health check honours PORT");
    assert!(
        dockerfile.contains("HARPOON__AUTH__MODE=required"),
        "keys are required in the image"
    );
    assert!(
        !dockerfile.contains("SERVICE_PORT="),
        "setting SERVICE_PORT in the image would shadow a platform's PORT"
    );
    assert!(
        dockerfile.matches("FROM ").count() >= 2,
        "multi-stage: build and slim runtime"
    );
}

#[test]
fn railway_builds_the_dockerfile_and_probes_health() {
    let railway = read("railway.toml");
    let path = railway
        .lines()
        .find_map(|l| l.trim().strip_prefix("dockerfilePath = "))
        .expect("dockerfilePath")
        .trim_matches('"');
    assert!(
        root().join(path).is_file(),
        "railway.toml names missing {path}"
    );
    assert!(railway.contains("builder = \"DOCKERFILE\""));
    assert!(railway.contains("healthcheckPath = \"/health\""));
}
