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

/// `${NAME}` and `${NAME:?message}` references in `text`.
fn references(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .map(|inner| inner.split([':', '-']).next().unwrap_or(inner).to_owned())
        .collect()
}

#[test]
fn the_compose_file_references_what_exists_and_its_settings_load() {
    use yaml_rust2::{Yaml, YamlLoader};
    let text = read("deploy/compose/compose.yaml");
    let compose = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let dir = root().join("deploy/compose");
    let services = compose["services"].as_hash().unwrap();
    let s = |v: &Yaml| v.as_str().unwrap_or_default().to_owned();

    // Three replicas of the image, with settings the service accepts.
    let replicas: Vec<(&Yaml, &Yaml)> = services
        .iter()
        .filter(|(_, svc)| !svc["build"].is_badvalue())
        .collect();
    assert_eq!(replicas.len(), 3, "three replicas");
    for (name, svc) in &replicas {
        let context = dir.join(s(&svc["build"]["context"]));
        assert!(context.join(s(&svc["build"]["dockerfile"])).is_file());
        let mut env = std::collections::HashMap::new();
        for (k, v) in svc["environment"].as_hash().unwrap() {
            let value = match s(k).as_str() {
                "DATABASE_URL" => "postgres://harpoon:secret@postgres:5432/harpoon".to_owned(),
                "HARPOON_ADMIN_KEY" => format!("hk_{}", "A1b2".repeat(10)),
                _ => s(v),
            };
            env.insert(s(k), value);
        }
        let loaded = service::settings::Settings::load(None, &env)
            .unwrap_or_else(|e| panic!("{}: {e}", s(name)));
        let service = &loaded.settings.service;
        assert!(
            service.drain_delay_secs > 0,
            "replicas drain before closing"
        );
        // Quotas are shared through the Valkey service of this file.
        let redis = loaded.settings.cluster.redis_url.as_ref().map(|u| {
            url::Url::parse(u.expose())
                .unwrap()
                .host_str()
                .unwrap()
                .to_owned()
        });
        let redis = redis.unwrap_or_else(|| panic!("{}: no REDIS_URL", s(name)));
        assert!(
            services.contains_key(&Yaml::String(redis.clone())),
            "REDIS_URL names the service {redis}, which is not in the file"
        );
        assert!(
            !svc["depends_on"][redis.as_str()].is_badvalue(),
            "replicas wait for {redis}"
        );
        let stop_grace = s(&svc["stop_grace_period"]);
        let stop_grace: u64 = stop_grace.trim_end_matches('s').parse().unwrap();
        assert!(
            stop_grace > service.drain_delay_secs + service.shutdown_grace_secs,
            "compose waits for the drain and the grace period before SIGKILL"
        );
    }

    // HAProxy: its configuration file exists, and every address it reads
    // from the environment is set, pointing at a replica's port.
    let haproxy = &compose["services"]["haproxy"];
    let volume = s(&haproxy["volumes"][0]);
    let source = volume.split(':').next().unwrap();
    let cfg = std::fs::read_to_string(dir.join(source)).unwrap();
    assert!(
        cfg.contains("option httpchk GET /ready"),
        "it probes /ready"
    );
    for var in references(&cfg) {
        let value = s(&haproxy["environment"][var.as_str()]);
        assert!(!value.is_empty(), "{var} is not set for HAProxy");
        if let Some(replica) = var.strip_prefix("HARPOON_REPLICA_") {
            let host = value.split(':').next().unwrap();
            assert!(
                replicas.iter().any(|(n, _)| s(n) == host) && value.ends_with(":8080"),
                "HARPOON_REPLICA_{replica}={value} is a replica on the image's port"
            );
        }
    }
    // Every variable the compose file needs from its user is named in the docs.
    let docs = read("docs/scale-out.md");
    for var in references(&text) {
        assert!(
            docs.contains(&var),
            "docs/scale-out.md does not mention {var}"
        );
    }
}
