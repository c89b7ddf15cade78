//! Security issue 14, finding 4: one tenant's slow remote must not stall
//! another tenant's bridge reads, and a remote that trickles just fast
//! enough to pass git's low-speed check is still cut at the step deadline.
//! The slow remote is a real one: git's dumb HTTP protocol served from a
//! bare repository by a small loopback server of this test's own, which can
//! be switched to stall or trickle.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use harpoon_bridge::Bridge;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};
use support::*;

const SERVE: u8 = 0;
const STALL: u8 = 1;
const TRICKLE: u8 = 2;

/// Longest anything of the server runs, so no thread outlives a stuck test
/// by much.
const SERVER_LIFE: Duration = Duration::from_secs(90);

/// A dumb-HTTP git server on 127.0.0.1 over the files under `root`.
struct SlowServer {
    port: u16,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    /// Set when a trickled answer could no longer be written: the client
    /// (git's HTTP helper) is gone.
    client_gone: Arc<AtomicBool>,
}

impl SlowServer {
    fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(SERVE));
        let stop = Arc::new(AtomicBool::new(false));
        let client_gone = Arc::new(AtomicBool::new(false));
        let (m, s, g) = (mode.clone(), stop.clone(), client_gone.clone());
        std::thread::spawn(move || {
            let born = Instant::now();
            while !s.load(Ordering::SeqCst) && born.elapsed() < SERVER_LIFE {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (root, m, s, g) = (root.clone(), m.clone(), s.clone(), g.clone());
                        std::thread::spawn(move || answer(conn, &root, &m, &s, &g));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            mode,
            stop,
            client_gone,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn answer(mut conn: TcpStream, root: &Path, mode: &AtomicU8, stop: &AtomicBool, gone: &AtomicBool) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    let started = Instant::now();
    match mode.load(Ordering::SeqCst) {
        STALL => {
            // Accept, then say nothing, until the test ends.
            while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFE {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        TRICKLE => {
            // 200 bytes every 100 ms: 2 KB/s, above git's low-speed limit.
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n",
            );
            while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFE {
                if conn.write_all(&[b'0'; 200]).is_err() {
                    gone.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        _ => {
            let file = root.join(path.trim_start_matches('/'));
            let body = (!path.contains(".."))
                .then(|| std::fs::read(&file).ok())
                .flatten();
            let _ = match body {
                Some(body) => conn
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|()| conn.write_all(&body)),
                None => conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    }
}

/// A bridge allowing loopback remotes, with tenant A's repository behind the
/// slow server and tenant B's a plain local one.
async fn two_tenants(
    tmp: &Path,
    tune: impl FnOnce(&mut harpoon_bridge::BridgeSettings),
) -> (Bridge, String, String, SlowServer) {
    let (db, tenant_a) = pool(tmp).await;
    let (_, tenant_b) = pool(tmp).await;
    let bridge = tuned_bridge(db, &tmp.join("data"), |s| {
        s.allow_private_remotes = true;
        tune(s);
    });
    let (_, bare_a) = remote(tmp, "org/a", &[("package.json", "{\"name\": \"a\"}\n")]);
    git(&bare_a, &["update-server-info"]);
    let server = SlowServer::start(tmp.to_path_buf());
    let url_a = format!("http://127.0.0.1:{}/org_a.git", server.port);
    bridge
        .register_repo(&tenant_a, new_repo("org/a", &url_a))
        .await
        .unwrap();
    let (url_b, _) = remote(tmp, "org/b", &[("package.json", "{\"name\": \"b\"}\n")]);
    bridge
        .register_repo(&tenant_b, new_repo("org/b", &url_b))
        .await
        .unwrap();
    (bridge, tenant_a, tenant_b, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding4_one_tenants_stalled_remote_does_not_delay_another_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant_a, tenant_b, server) = two_tenants(tmp.path(), |_| {}).await;
    // Both mirrors exist first, so what follows is a fetch like any later read.
    let first = bridge.cables(&tenant_a).await.unwrap();
    assert!(first.unreadable.is_empty(), "{:?}", first.unreadable);
    bridge.cables(&tenant_b).await.unwrap();

    server.set(STALL);
    let stalled = {
        let (bridge, tenant_a) = (bridge.clone(), tenant_a.clone());
        tokio::spawn(async move { bridge.cables(&tenant_a).await })
    };
    // Let A's fetch start and take whatever it takes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!stalled.is_finished(), "A's fetch should be stalled");
    let started = Instant::now();
    let other = tokio::time::timeout(Duration::from_secs(10), bridge.cables(&tenant_b)).await;
    let waited = started.elapsed();
    stalled.abort();
    let other = other.expect("tenant B's cables waited on tenant A's stalled remote");
    assert!(other.unwrap().unreadable.is_empty());
    assert!(
        waited < Duration::from_secs(1),
        "tenant B waited {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding4_a_trickle_above_the_low_speed_limit_is_cut_at_the_step_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant_a, _, server) = two_tenants(tmp.path(), |s| s.git_timeout_secs = 2).await;
    server.set(TRICKLE);
    let started = Instant::now();
    let graph = tokio::time::timeout(Duration::from_secs(20), bridge.cables(&tenant_a))
        .await
        .expect("a trickling remote held the read past its deadline")
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(graph.unreadable.len(), 1, "{:?}", graph.unreadable);
    let reason = &graph.unreadable[0].reason;
    assert!(reason.contains("ran past 2 s"), "{reason}");
    assert!(!reason.contains(tmp.path().to_str().unwrap()), "{reason}");
    // git's HTTP helper was killed with git: the trickled connection closes.
    let mut waited = Duration::ZERO;
    while !server.client_gone.load(Ordering::SeqCst) && waited < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert!(
        server.client_gone.load(Ordering::SeqCst),
        "the remote's connection stayed open after the step was stopped"
    );
}

/// Red-team pass 2, item 2: a clone killed at its deadline left a half-made
/// mirror that every later read tripped over (`git checkout` found no
/// `origin/main`), even once the remote answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_killed_mid_clone_is_rebuilt_once_the_remote_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant_a, _, server) = two_tenants(tmp.path(), |s| s.git_timeout_secs = 2).await;
    for mode in [STALL, TRICKLE] {
        server.set(mode);
        let graph = tokio::time::timeout(Duration::from_secs(20), bridge.cables(&tenant_a))
            .await
            .expect("the read outlived its deadline")
            .unwrap();
        assert_eq!(graph.unreadable.len(), 1, "{:?}", graph.unreadable);
        server.set(SERVE);
        let graph = tokio::time::timeout(Duration::from_secs(20), bridge.cables(&tenant_a))
            .await
            .expect("the read after recovery outlived its deadline")
            .unwrap();
        assert!(
            graph.unreadable.is_empty(),
            "after a stop in mode {mode}: {:?}",
            graph.unreadable
        );
    }
    // A mirror whose fetch is killed (not only a first clone) recovers too.
    server.set(STALL);
    let graph = bridge.cables(&tenant_a).await.unwrap();
    assert_eq!(graph.unreadable.len(), 1, "{:?}", graph.unreadable);
    server.set(SERVE);
    let graph = bridge.cables(&tenant_a).await.unwrap();
    assert!(graph.unreadable.is_empty(), "{:?}", graph.unreadable);
}

/// A mirror damaged some other way (left half-made by an older build, its
/// objects or branch gone) is detected and cloned again on the next read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_mirror_is_cloned_again_on_the_next_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, _, tenant_b, _server) = two_tenants(tmp.path(), |_| {}).await;
    assert!(
        bridge
            .cables(&tenant_b)
            .await
            .unwrap()
            .unreadable
            .is_empty()
    );
    let mirrors: Vec<PathBuf> = std::fs::read_dir(bridge.workspace())
        .unwrap()
        .flatten()
        .map(|tenant| tenant.path().join("mirrors"))
        .filter(|m| m.is_dir())
        .flat_map(|m| std::fs::read_dir(m).unwrap().flatten().map(|e| e.path()))
        .collect();
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    let mirror = &mirrors[0];
    // What a clone killed after `git init` leaves: a `.git` with no branch.
    std::fs::remove_dir_all(mirror).unwrap();
    git_init_only(mirror);
    let graph = bridge.cables(&tenant_b).await.unwrap();
    assert!(graph.unreadable.is_empty(), "{:?}", graph.unreadable);
    // Objects gone under intact-looking refs.
    for pack in std::fs::read_dir(mirror.join(".git/objects/pack"))
        .unwrap()
        .flatten()
    {
        std::fs::remove_file(pack.path()).unwrap();
    }
    for loose in std::fs::read_dir(mirror.join(".git/objects"))
        .unwrap()
        .flatten()
    {
        if loose.file_name().len() == 2 {
            std::fs::remove_dir_all(loose.path()).unwrap();
        }
    }
    let graph = bridge.cables(&tenant_b).await.unwrap();
    assert!(graph.unreadable.is_empty(), "{:?}", graph.unreadable);
}

fn git_init_only(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "--quiet"]);
}

fn covenant() -> harpoon_bridge::NewCovenant {
    plain_covenant(
        "Fair strikes",
        "One tenant's slow remotes leave the others' strikes alone.",
        "now",
        "then",
    )
}

/// A strike writing `NOTES.md` in each of `repos`.
fn strike_of(covenant_id: &str, repos: &[&str]) -> harpoon_bridge::StrikeRequest {
    let changes = repos
        .iter()
        .map(|r| file_change(r, "NOTES.md", "fair\n"))
        .collect();
    strike_request(covenant_id, repos, Some(changes))
}

/// Red-team pass 2, item 1: tenant A starts one strike on five repositories
/// behind a stalled remote; while they hang, tenant B's one-repository
/// strike on a local remote must not wait for A's slots to come free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_stalled_strike_does_not_hold_every_strike_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant_a, tenant_b, server) = two_tenants(tmp.path(), |s| {
        s.parallelism = 4;
        s.git_timeout_secs = 5;
    })
    .await;
    let url_a = format!("http://127.0.0.1:{}/org_a.git", server.port);
    let evil: Vec<String> = (1..=5).map(|i| format!("evil/r{i}")).collect();
    for name in &evil {
        bridge
            .register_repo(&tenant_a, new_repo(name, &url_a))
            .await
            .unwrap();
    }
    let cov_a = bridge.create_covenant(&tenant_a, covenant()).await.unwrap();
    let cov_b = bridge.create_covenant(&tenant_b, covenant()).await.unwrap();
    server.set(STALL);
    let evil_refs: Vec<&str> = evil.iter().map(String::as_str).collect();
    let run_a = bridge
        .start_strike(&tenant_a, strike_of(&cov_a.covenant_id, &evil_refs))
        .await
        .unwrap();
    // A's strike reads its mirrors first (stalled too), then its clones take
    // strike slots and hang until the step deadline.
    let s = support::until(&bridge, &tenant_a, &run_a, 40, |s| {
        s.repos
            .iter()
            .filter(|r| r.phase == harpoon_bridge::Phase::Cloning)
            .count()
            >= 2
    })
    .await;
    assert_eq!(s.state, "running");
    let started = Instant::now();
    let run_b = bridge
        .start_strike(&tenant_b, strike_of(&cov_b.covenant_id, &["org/b"]))
        .await
        .unwrap();
    let b = support::until(&bridge, &tenant_b, &run_b, 30, |s| s.state != "running").await;
    let waited = started.elapsed();
    bridge.cancel_strike(&tenant_a, &run_a).await.unwrap();
    support::until(&bridge, &tenant_a, &run_a, 30, |s| s.state != "running").await;
    assert_eq!(b.state, "done", "{b:?}");
    assert!(
        waited < Duration::from_millis(2500),
        "tenant B's strike waited {waited:?} behind tenant A's stalled clones"
    );
}
