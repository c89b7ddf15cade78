//! Tenants, keys, quotas and the usage ledger through the real binary with
//! `auth.mode: required`, and durability across SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use common::Service;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const REQUIRED: (&str, &str) = ("HARPOON__AUTH__MODE", "required");

/// Runs `service admin …` on a data directory and returns its JSON.
fn admin(data: &std::path::Path, args: &[&str]) -> Value {
    let out = common::command()
        .env("HARPOON__STORAGE__DATA_DIR", data)
        .arg("admin")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A data directory with an admin tenant and key, made with the CLI.
fn bootstrapped() -> (tempfile::TempDir, String) {
    let data = tempfile::tempdir().unwrap();
    admin(data.path(), &["tenant", "create", "ops"]);
    let key = admin(
        data.path(),
        &["key", "create", "--tenant", "ops", "--scope", "admin"],
    );
    (data, key["key"].as_str().unwrap().to_owned())
}

async fn code(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

struct Api {
    http: reqwest::Client,
    svc: Service,
}

impl Api {
    fn new(svc: Service) -> Self {
        Self {
            http: reqwest::Client::new(),
            svc,
        }
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.svc.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.svc.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// Creates a tenant and a tenant-scoped key for it; returns (tenant id, key).
    async fn tenant(&self, admin_key: &str, name: &str, quota: Value) -> (String, String) {
        let t = self
            .post(
                admin_key,
                "/v2/admin/tenants",
                json!({"name": name, "quota": quota}),
            )
            .await;
        assert_eq!(t.status(), StatusCode::CREATED);
        let id = t.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let k = self
            .post(
                admin_key,
                &format!("/v2/admin/tenants/{id}/keys"),
                json!({}),
            )
            .await;
        assert_eq!(k.status(), StatusCode::CREATED);
        let key = k.json::<Value>().await.unwrap()["key"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, key)
    }
}

/// A deploy with no shell (Railway) gets its first key from the environment:
/// with `HARPOON_ADMIN_KEY` a fresh data directory serves the admin API at
/// once; changing the variable replaces the key; a malformed one stops
/// start-up naming the setting.
#[tokio::test]
async fn harpoon_admin_key_bootstraps_a_fresh_deploy_and_rotates() {
    let generated = || {
        admin(tempfile::tempdir().unwrap().path(), &["key", "generate"])["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (first, second) = (generated(), generated());
    assert_ne!(first, second);
    let port = common::free_port();
    let data = tempfile::tempdir().unwrap();
    let api = Api::new(Service::start_in(
        data,
        port,
        &[REQUIRED, ("HARPOON_ADMIN_KEY", first.as_str())],
    ));
    let (_, tenant_key) = api.tenant(&first, "team-a", json!({})).await;
    assert_eq!(
        api.get(&tenant_key, "/v2/usage").await.status(),
        StatusCode::OK
    );

    // Restarted on the same data with another key: the old one is revoked.
    let mut svc = api.svc;
    svc.terminate();
    svc.wait_exit(Duration::from_secs(20));
    let data = std::mem::replace(&mut svc.data, tempfile::tempdir().unwrap());
    drop(svc);
    let api = Api::new(Service::start_in(
        data,
        port,
        &[REQUIRED, ("HARPOON_ADMIN_KEY", second.as_str())],
    ));
    let (status, code_) = code(api.get(&first, "/v2/admin/tenants").await).await;
    assert_eq!(
        (status, code_.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
    assert_eq!(
        api.get(&second, "/v2/admin/tenants").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        api.get(&tenant_key, "/v2/usage").await.status(),
        StatusCode::OK,
        "tenants' keys stay"
    );

    let bad = common::command()
        .env("HARPOON_ADMIN_KEY", "hk_short")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("auth.admin_key"));
}

#[tokio::test]
async fn key_lifecycle_and_the_401_403_paths() {
    let (data, admin_key) = bootstrapped();
    // hosted·ai configured (at a panel that is not there): `/v2/pools` exists.
    let hosted = [
        ("HOSTED_AI_BASE_URL", "http://127.0.0.1:9"),
        ("HOSTED_AI_API_KEY", "panel-key"),
        ("HOSTED_AI_TEAM_ID", "team-1"),
    ];
    let api = Api::new(Service::start_in(
        data,
        common::free_port(),
        &[REQUIRED, hosted[0], hosted[1], hosted[2]],
    ));
    let (tenant_id, key) = api.tenant(&admin_key, "acme", json!({})).await;

    // Probes and the API description need no key.
    for path in ["/health", "/ready", "/openapi.json", "/metrics"] {
        let r = api.http.get(api.svc.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let none = api.http.get(api.svc.url("/v2/usage")).send().await.unwrap();
    assert_eq!(
        code(none).await,
        (StatusCode::UNAUTHORIZED, "missing_api_key".into())
    );
    let wrong = api
        .get("hk_not_a_real_key_at_all_0000000000", "/v2/usage")
        .await;
    assert_eq!(
        code(wrong).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".into())
    );

    let ok = api.get(&key, "/v2/usage").await;
    assert_eq!(ok.status(), StatusCode::OK);
    let x_api_key = api
        .http
        .get(api.svc.url("/v2/usage"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(x_api_key.status(), StatusCode::OK, "X-API-Key works too");

    let not_admin = api.get(&key, "/v2/admin/tenants").await;
    assert_eq!(
        code(not_admin).await,
        (StatusCode::FORBIDDEN, "admin_required".into())
    );
    // The pool view names pod endpoints (which take no key) and team billing.
    let pools = api.get(&key, "/v2/pools").await;
    assert_eq!(
        code(pools).await,
        (StatusCode::FORBIDDEN, "admin_required".into())
    );
    let as_admin = api.get(&admin_key, "/v2/pools").await;
    assert_eq!(as_admin.status(), StatusCode::OK, "the admin sees the view");
    // The deployments view names upstream servers too.
    let deployments = api.get(&key, "/v2/deployments").await;
    assert_eq!(
        code(deployments).await,
        (StatusCode::FORBIDDEN, "admin_required".into())
    );
    let as_admin = api.get(&admin_key, "/v2/deployments").await;
    assert_eq!(as_admin.status(), StatusCode::OK);
    let listed: serde_json::Value = as_admin.json().await.unwrap();
    assert!(listed["models"].as_array().is_some_and(|m| !m.is_empty()));

    // Only a hash is stored: the listing shows the prefix, never the key.
    let listed = api
        .get(&admin_key, &format!("/v2/admin/tenants/{tenant_id}/keys"))
        .await;
    let text = listed.text().await.unwrap();
    assert!(text.contains(&key[..11]) && !text.contains(&key));

    let suspended = api
        .post(
            &admin_key,
            &format!("/v2/admin/tenants/{tenant_id}/suspend"),
            json!({}),
        )
        .await;
    assert_eq!(suspended.status(), StatusCode::OK);
    assert_eq!(
        code(api.get(&key, "/v2/usage").await).await,
        (StatusCode::FORBIDDEN, "tenant_suspended".into())
    );
    api.post(
        &admin_key,
        &format!("/v2/admin/tenants/{tenant_id}/activate"),
        json!({}),
    )
    .await;
    assert_eq!(api.get(&key, "/v2/usage").await.status(), StatusCode::OK);

    let keys: Value = api
        .get(&admin_key, &format!("/v2/admin/tenants/{tenant_id}/keys"))
        .await
        .json()
        .await
        .unwrap();
    let key_id = keys[0]["id"].as_str().unwrap();
    let revoked = api
        .post(
            &admin_key,
            &format!("/v2/admin/keys/{key_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        code(api.get(&key, "/v2/usage").await).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".into())
    );

    let idlike = api
        .post(&admin_key, "/v2/admin/tenants", json!({"name": tenant_id}))
        .await;
    assert_eq!(
        code(idlike).await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "names cannot mimic ids"
    );
    let dup = api
        .post(&admin_key, "/v2/admin/tenants", json!({"name": "acme"}))
        .await;
    assert_eq!(code(dup).await, (StatusCode::CONFLICT, "conflict".into()));
}

#[tokio::test]
async fn request_quota_answers_429_with_retry_after_and_refills() {
    let (data, admin_key) = bootstrapped();
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let (_, key) = api
        .tenant(&admin_key, "small", json!({"requests_per_minute": 60}))
        .await;
    // The bucket holds 60 and refills one a second.
    for _ in 0..60 {
        assert_eq!(api.get(&key, "/v2/usage").await.status(), StatusCode::OK);
    }
    let limited = api.get(&key, "/v2/usage").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(code(limited).await.1, "rate_limited");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        api.get(&key, "/v2/usage").await.status(),
        StatusCode::OK,
        "refilled"
    );
    // Another tenant is not affected.
    assert_eq!(
        api.get(&admin_key, "/v2/usage").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn concurrency_quota_answers_429_while_a_request_is_in_flight() {
    use std::io::Write;
    let (data, admin_key) = bootstrapped();
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let (_, key) = api
        .tenant(&admin_key, "one-at-a-time", json!({"max_concurrent": 1}))
        .await;
    // Hold one request open: headers sent, body not finished.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", api.svc.port)).unwrap();
    write!(
        slow,
        "POST /classify HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: 20\r\n\r\n{{\"text\":"
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = api.post(&key, "/classify", json!({"text": "hi"})).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(second.headers().contains_key("retry-after"));
    drop(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        api.post(&key, "/classify", json!({"text": "hi"}))
            .await
            .status(),
        StatusCode::OK
    );
}

/// The usage report once it counts `requests` requests in all (or after 5 s).
async fn usage_of(api: &Api, key: &str, query: &str, requests: u64) -> Value {
    // Rows are written by a background writer in batches, one batch per
    // tick: a report read between two ticks holds only the first rows.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v: Value = api
            .get(key, &format!("/v2/usage?{query}"))
            .await
            .json()
            .await
            .unwrap();
        let counted: u64 = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g["requests"].as_u64())
            .sum();
        if counted >= requests || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn failed_inference_is_in_the_ledger_and_tenants_cannot_see_each_other() {
    let (data, admin_key) = bootstrapped();
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let (a_id, a_key) = api.tenant(&admin_key, "team-a", json!({})).await;
    let (b_id, b_key) = api.tenant(&admin_key, "team-b", json!({})).await;

    // No engine in this build: 503, and the attempt is still recorded.
    let chat = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        api.post(&a_key, "/v1/chat/completions", chat)
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let unknown = json!({"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        api.post(&a_key, "/v1/chat/completions", unknown)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.post(&a_key, "/run", json!({"text": "hello"}))
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    let report = usage_of(&api, &a_key, "group_by=model", 3).await;
    assert_eq!(report["tenant"], a_id.as_str());
    let groups = report["groups"].as_array().unwrap();
    let by = |m: &str| {
        groups
            .iter()
            .find(|g| g["key"] == m)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by("gemma")["requests"], 2, "{report}");
    assert_eq!(by("gemma")["errors"], 2);
    assert_eq!(by("gpt-17")["requests"], 1);

    // B sees none of A's rows, and A's id does not exist for B.
    let b_report: Value = api.get(&b_key, "/v2/usage").await.json().await.unwrap();
    assert!(b_report["groups"].as_array().unwrap().is_empty());
    let cross = api.get(&b_key, &format!("/v2/usage?tenant={a_id}")).await;
    assert_eq!(
        code(cross).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let own = api.get(&b_key, &format!("/v2/usage?tenant={b_id}")).await;
    assert_eq!(own.status(), StatusCode::OK);
    // An admin may look at any tenant.
    let by_admin = usage_of(&api, &admin_key, &format!("tenant={a_id}&group_by=day"), 3).await;
    assert_eq!(by_admin["groups"][0]["requests"], 3);
    let bad = api.get(&admin_key, "/v2/usage?since=yesterday").await;
    assert_eq!(code(bad).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The dashboard's report once it counts `requests` requests (or after 5 s).
async fn dashboard_of(api: &Api, key: &str, query: &str, requests: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = api.get(key, &format!("/v2/dashboard?{query}")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{query}");
        let v: Value = resp.json().await.unwrap();
        let counted: i64 = v["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["requests"].as_i64())
            .sum();
        if counted >= requests || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_dashboard_shows_a_tenant_key_its_own_tenant_only() {
    let (data, admin_key) = bootstrapped();
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let (a_id, a_key) = api.tenant(&admin_key, "team-a", json!({})).await;
    let (b_id, b_key) = api.tenant(&admin_key, "team-b", json!({})).await;
    // No engine in this build: 503s, recorded in the ledger all the same.
    let chat = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..2 {
        api.post(&a_key, "/v1/chat/completions", chat.clone()).await;
    }
    api.post(&b_key, "/v1/chat/completions", chat.clone()).await;

    let own = dashboard_of(&api, &a_key, "window=1h", 2).await;
    assert_eq!(own["tenant"], "team-a");
    let tenants: Vec<&str> = own["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["team-a"], "{own}");
    assert_eq!(own["buckets"][0]["requests"], 2);
    assert_eq!(own["buckets"][0]["errors"], 2);
    assert!(
        own["timings"].as_array().unwrap().is_empty(),
        "errors have no timings"
    );
    // Naming itself is allowed; naming the other tenant, by id or name, is a 404.
    dashboard_of(&api, &a_key, &format!("tenant={a_id}"), 2).await;
    for path in [
        format!("/v2/dashboard?tenant={b_id}"),
        "/v2/dashboard?tenant=team-b".to_owned(),
        format!("/dashboard/panels?tenant={b_id}"),
    ] {
        let cross = api.get(&a_key, &path).await;
        assert_eq!(
            code(cross).await,
            (StatusCode::NOT_FOUND, "not_found".into()),
            "{path}"
        );
    }
    let panels = api.get(&a_key, "/dashboard/panels?window=7d").await;
    assert_eq!(panels.status(), StatusCode::OK);
    assert_eq!(panels.headers()["cache-control"], "no-store");
    let html = panels.text().await.unwrap();
    assert!(
        html.contains("data-total=\"2\"") && html.contains("team-a"),
        "{html}"
    );
    assert!(
        !html.contains("team-b"),
        "the other tenant is not on the page"
    );

    // The admin key sees every tenant, or the one it names.
    let all = dashboard_of(&api, &admin_key, "window=24h", 3).await;
    assert!(all["tenant"].is_null());
    let names: std::collections::BTreeSet<&str> = all["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["team-a", "team-b"]);
    let one = dashboard_of(&api, &admin_key, "tenant=team-b", 1).await;
    assert_eq!(one["tenant"], "team-b");
    assert_eq!(one["buckets"].as_array().unwrap().len(), 1);

    // A window outside the set is refused naming it; the page is public, its data is not.
    let bad = api.get(&a_key, "/v2/dashboard?window=2h").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["error"]["param"], "window");
    let page = reqwest::get(api.svc.url("/dashboard")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let script = reqwest::get(api.svc.url("/dashboard/assets/dashboard.js"))
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    for path in ["/dashboard/panels", "/v2/dashboard"] {
        let anonymous = reqwest::get(api.svc.url(path)).await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn a_restart_keeps_tenants_keys_and_usage() {
    let (data, admin_key) = bootstrapped();
    let port = common::free_port();
    let mut api = Api::new(Service::start_in(data, port, &[REQUIRED]));
    let (_, key) = api.tenant(&admin_key, "durable", json!({})).await;
    api.post(&key, "/run", json!({"text": "hello"})).await;
    usage_of(&api, &key, "", 1).await;
    api.svc.terminate();
    assert_eq!(api.svc.wait_exit(Duration::from_secs(10)).code(), Some(0));

    let data = std::mem::replace(&mut api.svc.data, tempfile::tempdir().unwrap());
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    assert_eq!(
        api.get(&key, "/v2/usage").await.status(),
        StatusCode::OK,
        "the key survived"
    );
    let report: Value = api.get(&key, "/v2/usage").await.json().await.unwrap();
    assert_eq!(
        report["groups"][0]["requests"], 1,
        "usage survived: {report}"
    );
}

#[tokio::test]
async fn every_acknowledged_tenant_survives_sigkill() {
    let (data, admin_key) = bootstrapped();
    let mut api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let base = api.svc.base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let created = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (base, key, stop) = (base.clone(), admin_key.clone(), stop.clone());
        let created = created.clone();
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let name = format!("w{w}-n{i}");
                let sent = http
                    .post(format!("{base}/v2/admin/tenants"))
                    .bearer_auth(&key)
                    .json(&json!({"name": name}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let t: Value = r.json().await.unwrap_or_default();
                        acknowledged.push((name, t["id"].as_str().unwrap_or_default().to_owned()));
                        created.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => break, // the process is gone
                }
            }
            acknowledged
        }));
    }
    // Kill at a moment that varies from run to run, once enough records
    // exist to judge (a loaded machine may take a while to get there).
    let enough = Instant::now() + Duration::from_secs(30);
    while created.load(std::sync::atomic::Ordering::SeqCst) <= 10 && Instant::now() < enough {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at = (std::process::id() as u64 * 7919) % 700;
    tokio::time::sleep(Duration::from_millis(at)).await;
    api.svc.child.kill().unwrap(); // SIGKILL
    api.svc.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(
        acknowledged.len() > 10,
        "the test created records before the kill"
    );

    let data = std::mem::replace(&mut api.svc.data, tempfile::tempdir().unwrap());
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let listed: Vec<Value> = api
        .get(&admin_key, "/v2/admin/tenants")
        .await
        .json()
        .await
        .unwrap();
    for (name, id) in &acknowledged {
        let found = listed.iter().find(|t| t["name"] == name.as_str());
        let found = found.unwrap_or_else(|| panic!("acknowledged tenant {name} was lost"));
        assert_eq!(found["id"], id.as_str(), "{name} intact");
        assert_eq!(found["status"], "active");
    }
}

#[tokio::test]
async fn metrics_take_their_own_token_when_one_is_set() {
    let svc = Service::start(&[("HARPOON_METRICS_TOKEN", "scrape-me-123")]);
    let http = reqwest::Client::new();
    let without = http.get(svc.url("/metrics")).send().await.unwrap();
    assert_eq!(
        code(without).await,
        (StatusCode::UNAUTHORIZED, "invalid_metrics_token".into())
    );
    let wrong = http
        .get(svc.url("/metrics"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = http
        .get(svc.url("/metrics"))
        .bearer_auth("scrape-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
}

/// A model whose endpoint carries credentials, as an `openai` deployment
/// behind basic auth would be configured.
const REMOTE_SECRET: &str = "hunter2-in-the-url";

#[tokio::test]
async fn public_detailed_health_shows_states_only() {
    let (data, admin_key) = bootstrapped();
    let base_url = format!("http://bob:{REMOTE_SECRET}@127.0.0.1:9/v1");
    let api = Api::new(Service::start_in(
        data,
        common::free_port(),
        &[
            REQUIRED,
            ("HARPOON__MODELS__REMOTE__ENGINE", "openai"),
            ("HARPOON__MODELS__REMOTE__REPO", "remote-model"),
            ("HARPOON__MODELS__REMOTE__BASE_URL", &base_url),
        ],
    ));
    let (_, key) = api.tenant(&admin_key, "acme", json!({})).await;
    let data_dir = api.svc.data.path().to_str().unwrap().to_owned();
    let detailed = |key: Option<&str>| {
        let mut request = api.http.get(api.svc.url("/health?detailed=true"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };

    for (who, key) in [
        ("no key", None),
        ("a tenant key", Some(key.as_str())),
        (
            "an unknown key",
            Some("hk_not_a_real_key_at_all_0000000000"),
        ),
    ] {
        let text = detailed(key).await;
        for leak in [
            REMOTE_SECRET,
            "127.0.0.1:9",
            &data_dir,
            "git_sha",
            "uptime_secs",
        ] {
            assert!(!text.contains(leak), "{who}: {leak:?} in {text}");
        }
        let body: Value = serde_json::from_str(&text).unwrap();
        for (name, c) in body["components"].as_object().unwrap() {
            assert!(c["status"].is_string(), "{who}: {name}: {c}");
            assert!(c["reason"].is_string(), "{who}: {name}: {c}");
            assert!(c.get("detail").is_none(), "{who}: {name}: {c}");
        }
        let remote = body["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "remote")
            .cloned()
            .unwrap();
        assert_eq!(remote["available"], true, "{who}: {remote}");
        assert!(remote.get("detail").is_none(), "{who}: {remote}");
    }

    // An admin sees where things are, still without the URL's password.
    let text = detailed(Some(&admin_key)).await;
    assert!(!text.contains(REMOTE_SECRET), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["build"]["git_sha"].is_string(), "{body}");
    assert!(body["uptime_secs"].is_u64(), "{body}");
    assert!(
        body["components"]["storage"]["detail"]
            .as_str()
            .unwrap()
            .contains(&data_dir),
        "{body}"
    );
    let remote = body["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "remote")
        .cloned()
        .unwrap();
    assert_eq!(
        remote["detail"], "served by http://127.0.0.1:9/v1",
        "{remote}"
    );

    // The upstream is down (port 9): the error a tenant gets names no secret.
    let failed = api
        .http
        .post(api.svc.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "remote", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert!(failed.status().is_server_error(), "{}", failed.status());
    let text = failed.text().await.unwrap();
    assert!(text.contains("127.0.0.1:9"), "the error says where: {text}");
    assert!(!text.contains(REMOTE_SECRET), "{text}");
}

#[tokio::test]
async fn admin_routes_refuse_a_tenant_key_before_reading_the_body() {
    let (data, admin_key) = bootstrapped();
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let (tenant_id, key) = api.tenant(&admin_key, "acme", json!({})).await;
    let keys = api
        .get(&admin_key, &format!("/v2/admin/tenants/{tenant_id}/keys"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();
    let routes = [
        "/v2/admin/tenants".to_owned(),
        format!("/v2/admin/tenants/{tenant_id}/keys"),
        format!("/v2/admin/tenants/{tenant_id}/suspend"),
        format!("/v2/admin/tenants/{tenant_id}/activate"),
        format!("/v2/admin/keys/{key_id}/revoke"),
    ];
    let bodies = [
        (
            "breaks the schema",
            "application/json",
            r#"{"name": 7, "colour": "red"}"#,
        ),
        ("is not JSON", "application/json", "{not json"),
        ("is not declared JSON", "text/plain", "hello"),
    ];
    for route in &routes {
        for (what, content_type, body) in bodies {
            let response = api
                .http
                .post(api.svc.url(route))
                .bearer_auth(&key)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(
                code(response).await,
                (StatusCode::FORBIDDEN, "admin_required".into()),
                "POST {route} with a body that {what}"
            );
        }
    }
    // The admin still gets the body's own errors.
    let bad = api
        .post(&admin_key, "/v2/admin/tenants", json!({"name": 7}))
        .await;
    assert_eq!(code(bad).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_model_name_is_bounded_before_the_ledger_sees_it() {
    let (data, admin_key) = bootstrapped();
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let (_, key) = api.tenant(&admin_key, "acme", json!({})).await;
    let huge = "m".repeat(900_000);
    let messages = json!([{"role": "user", "content": "hi"}]);

    for (what, model) in [
        ("900,000 characters", huge.as_str()),
        ("257 characters", &huge[..257]),
        ("a newline", "gemma\nINJECTED"),
        ("a right-to-left override", "gemma\u{202E}lanretni"),
        ("a line separator", "gemma\u{2028}INJECTED"),
        ("a zero-width space", "gem\u{200B}ma"),
    ] {
        let chat = api
            .post(
                &key,
                "/v1/chat/completions",
                json!({"model": model, "messages": messages}),
            )
            .await;
        assert_eq!(chat.status(), StatusCode::BAD_REQUEST, "chat, {what}");
        let body: Value = chat.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{what}");
        assert_eq!(body["error"]["param"], "model", "{what}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("model: ") && message.len() < 200,
            "{message}"
        );

        let run = api
            .post(&key, "/run", json!({"text": "hi", "model": model}))
            .await;
        let (status, code) = code(run).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
            "run, {what}"
        );
    }
    // 256 characters is a name like any other: unknown, 404, and recorded.
    let longest = "m".repeat(256);
    let unknown = api
        .post(
            &key,
            "/v1/chat/completions",
            json!({"model": longest, "messages": messages}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let report = usage_of(&api, &key, "group_by=model", 1).await;
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(
        groups.len(),
        1,
        "only the valid request is recorded: {report}"
    );
    assert_eq!(groups[0]["key"], longest.as_str());
}

/// One JSON-RPC message to `/mcp` as `key`, in `session` if given.
async fn mcp(
    api: &Api,
    key: &str,
    session: Option<&str>,
    method: reqwest::Method,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = api
        .http
        .request(method, api.svc.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(id) = session {
        request = request.header("mcp-session-id", id);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    tokio::time::timeout(Duration::from_secs(10), request.send())
        .await
        .expect("an answer's headers within 10 s")
        .unwrap()
}

/// Opens an MCP session as `key`; its id.
async fn mcp_session(api: &Api, key: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "tenancy-test", "version": "0"}}});
    let opened = mcp(api, key, None, reqwest::Method::POST, Some(init)).await;
    assert_eq!(opened.status(), StatusCode::OK);
    let id = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = opened.text().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let ack = mcp(
        api,
        key,
        Some(&id),
        reqwest::Method::POST,
        Some(initialized),
    )
    .await;
    assert_eq!(ack.status(), StatusCode::ACCEPTED);
    id
}

#[tokio::test]
async fn an_mcp_session_answers_only_the_key_that_opened_it() {
    let (data, admin_key) = bootstrapped();
    let api = Api::new(Service::start_in(data, common::free_port(), &[REQUIRED]));
    let (a_id, a_key) = api.tenant(&admin_key, "team-a", json!({})).await;
    let (_, b_key) = api.tenant(&admin_key, "team-b", json!({})).await;
    let a_second_key = api
        .post(
            &admin_key,
            &format!("/v2/admin/tenants/{a_id}/keys"),
            json!({}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = mcp_session(&api, &a_key).await;
    let ping = || json!({"jsonrpc": "2.0", "id": 7, "method": "ping"});

    for (who, key) in [
        ("tenant B", &b_key),
        ("another key of tenant A", &a_second_key),
    ] {
        let post = mcp(
            &api,
            key,
            Some(&session),
            reqwest::Method::POST,
            Some(ping()),
        )
        .await;
        assert_eq!(post.status(), StatusCode::NOT_FOUND, "{who}: POST");
        let stream = mcp(&api, key, Some(&session), reqwest::Method::GET, None).await;
        assert_eq!(stream.status(), StatusCode::NOT_FOUND, "{who}: GET stream");
        drop(stream);
        let end = mcp(&api, key, Some(&session), reqwest::Method::DELETE, None).await;
        assert_eq!(end.status(), StatusCode::NOT_FOUND, "{who}: DELETE");
        let body: Value = end.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{who}: {body}");
    }

    // The owner's session outlived all that, and only the owner ends it.
    let alive = mcp(
        &api,
        &a_key,
        Some(&session),
        reqwest::Method::POST,
        Some(ping()),
    )
    .await;
    assert_eq!(alive.status(), StatusCode::OK, "A's session still works");
    let _ = alive.text().await;
    let end = mcp(&api, &a_key, Some(&session), reqwest::Method::DELETE, None).await;
    assert!(
        end.status().is_success(),
        "A ends its own session: {}",
        end.status()
    );
    let gone = mcp(
        &api,
        &a_key,
        Some(&session),
        reqwest::Method::POST,
        Some(ping()),
    )
    .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}
