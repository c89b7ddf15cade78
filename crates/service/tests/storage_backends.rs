//! The same storage lifecycle on SQLite and on a real PostgreSQL
//! (`HARPOON_TEST_DATABASE_URL`, set by `scripts/with-postgres.sh` in `make test`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use service::storage::keys::{KeyRefusal, Scope};
use service::storage::responses::StoredResponse;
use service::storage::tenants::{Quota, TenantStatus};
use service::storage::usage::{GroupBy, UsageRecorder, UsageRow, day_start};
use service::storage::{Storage, StorageError, StorageSettings, now_ms};

fn row(tenant: &str, model: &str, status: i64, tokens: i64, at: i64) -> UsageRow {
    UsageRow {
        tenant_id: tenant.into(),
        route: "/run".into(),
        model: model.into(),
        tier: Some("small".into()),
        prompt_tokens: tokens,
        completion_tokens: tokens,
        latency_ms: 12.5,
        status,
        created_at: at,
        ttft_ms: Some(4.0),
        tokens_per_second: Some(250.0),
    }
}

async fn lifecycle(settings: &StorageSettings) {
    let storage = Storage::open(settings).await.unwrap();
    let suffix = uuid_suffix();
    let name = format!("acme-{suffix}");
    let quota = Quota {
        requests_per_minute: Some(30),
        max_concurrent: None,
        tokens_per_day: Some(1000),
    };
    let t = storage.create_tenant(&name, quota).await.unwrap();
    assert!(matches!(
        storage.create_tenant(&name, Quota::default()).await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(storage.quota(&t.id).await.unwrap(), quota);
    assert_eq!(storage.find_tenant(&name).await.unwrap(), t);

    let (key, rec) = storage.create_key(&t.id, Scope::Tenant).await.unwrap();
    assert!(key.starts_with("hk_") && key.starts_with(&rec.prefix));
    let (found, tenant) = storage.authenticate(&key).await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), tenant.id.as_str()),
        (rec.id.as_str(), t.id.as_str())
    );
    assert_eq!(
        storage.authenticate("hk_nope").await.unwrap().unwrap_err(),
        KeyRefusal::Invalid
    );
    storage
        .set_tenant_status(&t.id, TenantStatus::Suspended)
        .await
        .unwrap();
    assert_eq!(
        storage.authenticate(&key).await.unwrap().unwrap_err(),
        KeyRefusal::Suspended
    );
    storage
        .set_tenant_status(&t.id, TenantStatus::Active)
        .await
        .unwrap();
    let revoked = storage.revoke_key(&rec.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        storage.authenticate(&key).await.unwrap().unwrap_err(),
        KeyRefusal::Invalid
    );

    let now = now_ms();
    let yesterday = day_start(now) - 3_600_000;
    storage
        .insert_usage(&[
            row(&t.id, "gemma", 200, 10, now),
            row(&t.id, "gemma", 503, 0, now),
            row(&t.id, "qwen", 200, 20, yesterday),
        ])
        .await
        .unwrap();
    assert_eq!(
        storage.tokens_since(&t.id, day_start(now)).await.unwrap(),
        20
    );
    let by_model = storage
        .usage_summary(&t.id, 0, now + 1, GroupBy::Model)
        .await
        .unwrap();
    assert_eq!(by_model.len(), 2);
    assert_eq!(
        (
            by_model[0].key.as_str(),
            by_model[0].requests,
            by_model[0].errors
        ),
        ("gemma", 2, 1)
    );
    assert_eq!(by_model[1].completion_tokens, 20);
    let by_day = storage
        .usage_summary(&t.id, 0, now + 1, GroupBy::Day)
        .await
        .unwrap();
    assert_eq!(by_day.len(), 2, "{by_day:?}");
    assert!(by_day[0].key < by_day[1].key && by_day[1].key.len() == 10);

    // The dashboard's window: buckets from `since`, the tenant's name, rows
    // outside the window left out, and the timing columns read back.
    let since = now - 3_600_000;
    let buckets = storage
        .usage_buckets(Some(&t.id), since, now + 1, 300_000)
        .await
        .unwrap();
    assert_eq!(buckets.len(), 1, "yesterday's row is outside: {buckets:?}");
    let b = &buckets[0];
    assert_eq!(
        (b.model.as_str(), b.tenant.as_str(), b.tier.as_str()),
        ("gemma", name.as_str(), "small")
    );
    assert_eq!((b.requests, b.errors, b.completion_tokens), (2, 1, 10));
    assert_eq!((b.start - since) % 300_000, 0);
    assert!(b.start <= now && now < b.start + 300_000);
    let everyone = storage
        .usage_buckets(None, 0, now + 1, 86_400_000)
        .await
        .unwrap();
    assert!(
        everyone
            .iter()
            .any(|b| b.model == "qwen" && b.tenant == name),
        "{everyone:?}"
    );
    let timings = storage
        .usage_timings(Some(&t.id), since, now + 1, 10)
        .await
        .unwrap();
    assert_eq!(timings.len(), 1, "errors have no timings: {timings:?}");
    assert_eq!(timings[0].ttft_ms, Some(4.0));
    assert_eq!(timings[0].tokens_per_second, Some(250.0));
    assert_eq!(
        storage
            .usage_timings(None, 0, now + 1, 1)
            .await
            .unwrap()
            .len(),
        1,
        "the limit holds"
    );

    // Rows handed to the background writer are all committed once the last
    // recorder is gone and the writer has finished: more than one batch, and
    // the clone dropped first must not end the writer early.
    let (recorder, writer) = UsageRecorder::start(storage.clone());
    let other = recorder.clone();
    for i in 0..1_000 {
        let r = if i % 2 == 0 { &recorder } else { &other };
        r.record(row(&t.id, "drained", 200, 1, now));
    }
    drop(other);
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    recorder.record(row(&t.id, "drained", 200, 1, now));
    drop(recorder);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !writer.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer ends by itself once every recorder is dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    writer.finish().await.unwrap();
    let count = |model: &'static str| {
        let storage = storage.clone();
        let tenant = t.id.clone();
        async move {
            let groups = storage
                .usage_summary(&tenant, 0, now + 1, GroupBy::Model)
                .await
                .unwrap();
            groups
                .iter()
                .find(|g| g.key == model)
                .map_or(0, |g| g.requests)
        }
    };
    assert_eq!(count("drained").await, 1_001);

    // A recorder that outlives shutdown (a running strike) does not hold the
    // final drain up: finish() commits what was queued and stops the writer.
    let (recorder, writer) = UsageRecorder::start(storage.clone());
    for _ in 0..10 {
        recorder.record(row(&t.id, "finished", 200, 1, now));
    }
    tokio::time::timeout(std::time::Duration::from_secs(10), writer.finish())
        .await
        .expect("finish() does not wait for the recorder")
        .unwrap();
    assert_eq!(count("finished").await, 10);
    drop(recorder);

    // The daily budget's meter counts a row as soon as it is recorded, before
    // the writer commits it, and reads the ledger again (other replicas'
    // rows) only once its reading is a second old.
    let (recorder, writer) = UsageRecorder::start(storage.clone());
    let before = storage.tokens_since(&t.id, day_start(now)).await.unwrap();
    let today = || recorder.tokens_today(&storage, &t.id, now);
    assert_eq!(today().await.unwrap(), before);
    recorder.record(row(&t.id, "metered", 200, 5, now));
    recorder.record(row(&t.id, "metered", 200, 7, yesterday));
    assert_eq!(
        today().await.unwrap(),
        before + 10,
        "yesterday's row not counted"
    );
    storage
        .insert_usage(&[row(&t.id, "elsewhere", 200, 50, now)])
        .await
        .unwrap();
    assert_eq!(today().await.unwrap(), before + 10, "the reading is reused");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        today().await.unwrap(),
        before + 110,
        "read again: the other replica's row, and ours once, now committed"
    );
    // A read dropped midway (its client left) does not stop the reads after it.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    {
        // Every connection taken, so the read is still waiting when dropped.
        let mut held = Vec::new();
        for _ in 0..settings.max_connections {
            held.push(storage.pool().acquire().await.unwrap());
        }
        let mut read = std::pin::pin!(today());
        assert!(futures_util::poll!(&mut read).is_pending());
    }
    storage
        .insert_usage(&[row(&t.id, "elsewhere", 200, 100, now)])
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(today().await.unwrap(), before + 310);
    writer.finish().await.unwrap();

    let local = storage
        .ensure_tenant(&format!("local-{suffix}"))
        .await
        .unwrap();
    assert_eq!(
        storage.ensure_tenant(&local.name).await.unwrap(),
        local,
        "idempotent"
    );

    // The bootstrap admin key: idempotent for one key, rotated by another.
    let admin_tenant = format!("admin-{suffix}");
    let first = service::storage::keys::generate();
    let second = service::storage::keys::generate();
    let a = storage
        .ensure_bootstrap_key(&admin_tenant, &first)
        .await
        .unwrap();
    assert_eq!(
        storage
            .ensure_bootstrap_key(&admin_tenant, &first)
            .await
            .unwrap()
            .id,
        a.id
    );
    assert!(storage.authenticate(&first).await.unwrap().is_ok());
    storage
        .ensure_bootstrap_key(&admin_tenant, &second)
        .await
        .unwrap();
    assert!(
        storage.authenticate(&first).await.unwrap().is_err(),
        "rotated out"
    );
    assert!(storage.authenticate(&second).await.unwrap().is_ok());

    // Stored Responses belong to their tenant: another tenant finds nothing
    // and deletes nothing.
    let other = storage
        .create_tenant(&format!("globex-{suffix}"), Quota::default())
        .await
        .unwrap();
    let response_id = format!("resp_{suffix}");
    let stored = StoredResponse {
        conversation: r#"[{"role":"user","content":"hi"}]"#.into(),
        body: r#"{"id":"x"}"#.into(),
    };
    storage
        .insert_response(&t.id, &response_id, &stored)
        .await
        .unwrap();
    assert_eq!(storage.response(&t.id, &response_id).await.unwrap(), stored);
    for wrong in [
        storage.response(&other.id, &response_id).await.map(|_| ()),
        storage.delete_response(&other.id, &response_id).await,
    ] {
        assert!(matches!(wrong, Err(StorageError::NotFound("response"))));
    }
    storage.delete_response(&t.id, &response_id).await.unwrap();
    assert!(matches!(
        storage.response(&t.id, &response_id).await,
        Err(StorageError::NotFound("response"))
    ));
    sessions(&storage, settings, &t.id, &suffix).await;
    leases(&storage, &suffix).await;
    storage.close().await;

    // Reopening (and re-running the migrations) keeps everything.
    let again = Storage::open(settings).await.unwrap();
    assert_eq!(again.find_tenant(&t.id).await.unwrap().name, name);
    assert_eq!(again.list_keys(&t.id).await.unwrap().len(), 1);
    again.close().await;
}

/// Sign-in (migration 0006) across two pools, as two replicas: the same
/// cookie-signing key, a session opened on one read and ended on the other,
/// a sign-in attempt claimed once.
async fn sessions(storage: &Storage, settings: &StorageSettings, tenant_id: &str, suffix: &str) {
    use service::signin::config::Role;
    use service::signin::session;
    let replica = Storage::open(settings).await.unwrap();
    let (k1, k2) = (
        session::signing_key(storage).await.unwrap(),
        session::signing_key(&replica).await.unwrap(),
    );
    let signed = session::sign(&k1, session::SESSION_COOKIE, "token");
    assert_eq!(
        session::verify(&k2, session::SESSION_COOKIE, &signed).as_deref(),
        Some("token"),
        "every replica signs with the same key"
    );
    let (token, csrf) = session::create_session(
        storage,
        tenant_id,
        Role::Admin,
        "github",
        "github:octocat",
        60_000,
    )
    .await
    .unwrap();
    let found = session::find_session(&replica, &token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.role, found.csrf_token), (Role::Admin, csrf));
    let state = format!("state-{suffix}");
    let attempt = session::Attempt {
        provider: "github".into(),
        pkce_verifier: "v".into(),
        nonce: String::new(),
        redirect_uri: "http://127.0.0.1:8080/auth/github/callback".into(),
    };
    session::begin_attempt(storage, &state, &attempt)
        .await
        .unwrap();
    assert!(
        session::claim_attempt(&replica, &state)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        session::claim_attempt(storage, &state)
            .await
            .unwrap()
            .is_none(),
        "a callback's attempt is claimed once"
    );
    use service::signin::invitations;
    invitations::invite(storage, "Octocat", tenant_id, Role::Member)
        .await
        .unwrap();
    invitations::invite(&replica, "octocat", tenant_id, Role::Admin)
        .await
        .unwrap();
    let invited = invitations::find(storage, "OCTOCAT")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (invited.github_login.as_str(), invited.role),
        ("octocat", Role::Admin),
        "a second invitation replaces the first"
    );
    assert!(
        invitations::withdraw(&replica, tenant_id, "octocat")
            .await
            .unwrap()
    );
    assert!(
        invitations::find(storage, "octocat")
            .await
            .unwrap()
            .is_none()
    );
    assert!(session::end_session(&replica, &token).await.unwrap());
    assert!(
        session::find_session(storage, &token)
            .await
            .unwrap()
            .is_none()
    );
    replica.close().await;
}

/// Leases go to one holder until they expire (by the database's clock) or
/// are given up; the hosted·ai directory keeps one endpoint and one request per model.
async fn leases(storage: &Storage, suffix: &str) {
    use orchestrator::hosted_ai::EndpointRecord;
    use std::time::Duration;
    let name = format!("hosted_ai:team-{suffix}");
    let long = Duration::from_secs(60);
    assert!(storage.claim_lease(&name, "a", long).await.unwrap());
    assert!(
        !storage.claim_lease(&name, "b", long).await.unwrap(),
        "held by a"
    );
    assert!(
        storage.claim_lease(&name, "a", long).await.unwrap(),
        "a renews"
    );
    storage.release_lease(&name, "b").await.unwrap();
    assert!(
        !storage.claim_lease(&name, "b", long).await.unwrap(),
        "only a gives it up"
    );
    storage.release_lease(&name, "a").await.unwrap();
    assert!(
        storage
            .claim_lease(&name, "b", Duration::from_millis(50))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        storage.claim_lease(&name, "a", long).await.unwrap(),
        "b's lease expired"
    );

    let me = format!("me-{suffix}");
    let other = format!("other-{suffix}");
    let beat = |who: &str| format!("replica:{who}");
    assert!(storage.claim_lease(&beat(&me), &me, long).await.unwrap());
    storage.release_lease(&beat(&other), &other).await.unwrap();
    let alive_before = storage.other_replicas_alive(&me).await.unwrap();
    assert!(
        storage
            .claim_lease(&beat(&other), &other, long)
            .await
            .unwrap()
    );
    assert!(storage.other_replicas_alive(&me).await.unwrap());
    storage.release_lease(&beat(&other), &other).await.unwrap();
    assert_eq!(
        storage.other_replicas_alive(&me).await.unwrap(),
        alive_before
    );
    storage.release_lease(&beat(&me), &me).await.unwrap();

    let team = format!("team-{suffix}");
    let record = EndpointRecord {
        model: "gemma".into(),
        pool_id: "1".into(),
        subscription_id: "100".into(),
        service_id: Some("7".into()),
        vgpus: 1,
        hourly_cost: 2.0,
        endpoint: "http://127.0.0.1:1/v1".into(),
        idle_ms: 0,
    };
    storage
        .publish_hosted_endpoint(&team, &record)
        .await
        .unwrap();
    let listed = storage.hosted_endpoints(&team).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].subscription_id.as_str(),
            listed[0].service_id.as_deref()
        ),
        ("100", Some("7"))
    );
    assert!(listed[0].idle_ms < 5_000, "{}", listed[0].idle_ms);
    storage.touch_hosted_endpoint(&team, "gemma").await.unwrap();
    storage
        .withdraw_hosted_endpoint(&team, "gemma", "99")
        .await
        .unwrap();
    assert_eq!(
        storage.hosted_endpoints(&team).await.unwrap().len(),
        1,
        "another subscription's"
    );
    storage
        .withdraw_hosted_endpoint(&team, "gemma", "100")
        .await
        .unwrap();
    assert!(storage.hosted_endpoints(&team).await.unwrap().is_empty());

    storage
        .ask_hosted_capacity(&team, "gemma", 2, None)
        .await
        .unwrap();
    storage
        .ask_hosted_capacity(&team, "gemma", 2, Some("100"))
        .await
        .unwrap();
    let pending = storage.hosted_requests(&team, None).await.unwrap();
    assert_eq!(pending.len(), 1, "one request per model");
    assert_eq!(pending[0].failed_subscription.as_deref(), Some("100"));
    storage
        .answer_hosted_request(&team, "gemma", Some("full"))
        .await
        .unwrap();
    assert!(
        storage
            .hosted_requests(&team, None)
            .await
            .unwrap()
            .is_empty()
    );
    let answered = storage.hosted_requests(&team, Some("gemma")).await.unwrap();
    assert_eq!(answered[0].error.as_deref(), Some("full"));
    storage
        .answer_hosted_request(&team, "gemma", None)
        .await
        .unwrap();
    assert!(
        storage
            .hosted_requests(&team, Some("gemma"))
            .await
            .unwrap()
            .is_empty()
    );
    storage
        .add_hosted_usage(&team, "gemma", "1", 10.0, 0.5)
        .await
        .unwrap();
    storage
        .add_hosted_usage(&team, "gemma", "1", 5.0, 0.25)
        .await
        .unwrap();
}

fn uuid_suffix() -> String {
    format!("{}-{}", std::process::id(), now_ms())
}

#[tokio::test]
async fn sqlite_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StorageSettings {
        data_dir: dir.path().join("fresh/sub"),
        ..StorageSettings::default()
    };
    lifecycle(&settings).await;
}

#[tokio::test]
async fn postgresql_when_available() {
    let Ok(url) = std::env::var("HARPOON_TEST_DATABASE_URL") else {
        eprintln!(
            "\n**********************************************************************\n\
             POSTGRESQL TEST SKIPPED: HARPOON_TEST_DATABASE_URL is not set.\n\
             `make test` runs this test under scripts/with-postgres.sh.\n\
             **********************************************************************\n"
        );
        return;
    };
    let settings = StorageSettings {
        database_url: Some(orchestrator::Secret::new(url)),
        ..StorageSettings::default()
    };
    lifecycle(&settings).await;
}
