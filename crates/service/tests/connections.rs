//! Connection exhaustion (docs/security.md, "Connection exhaustion"): the
//! real binary under a small open-file limit keeps answering new clients
//! while an attacker holds more idle and half-sent connections than the
//! limit allows, and closes connections that send nothing or dawdle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Service, free_port};
use std::{
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

/// The service run by `prlimit` with this many open files, hard and soft.
fn start_with_open_files(limit: u32, env: &[(&str, &str)]) -> Service {
    let nofile = format!("--nofile={limit}:{limit}");
    let data = tempfile::tempdir().unwrap();
    Service::start_under(&["prlimit", &nofile, "--"], data, free_port(), env)
}

/// One `GET /health` on a new connection: its status, and how long it took.
fn health(port: u16, limit: Duration) -> Result<(u16, Duration), String> {
    let started = Instant::now();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(limit)).unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)
        .map_err(|e| format!("no answer within {limit:?}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    Ok((status, started.elapsed()))
}

/// A whole request head and the first byte of a body that never ends.
const HALF_A_BODY: &[u8] = b"POST /classify HTTP/1.1\r\nhost: localhost\r\n\
    content-type: application/json\r\ncontent-length: 100000\r\n\r\n{";

/// Opens `count` connections that never finish a request: a third send
/// nothing, a third half a request head, a third a head and part of a body.
fn hold(port: u16, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|i| {
            let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
            match i % 3 {
                1 => conn
                    .write_all(b"GET /health HTTP/1.1\r\nhost: loc")
                    .unwrap(),
                2 => conn.write_all(HALF_A_BODY).unwrap(),
                _ => {}
            }
            conn
        })
        .collect()
}

fn open_files_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned()
}

#[test]
fn health_is_answered_while_an_attacker_holds_more_sockets_than_the_file_limit() {
    // Timeouts long enough that only the cap can make room.
    let svc = start_with_open_files(
        256,
        &[
            ("HARPOON__SERVICE__HEADER_READ_TIMEOUT_SECS", "120"),
            ("HARPOON__SERVICE__BODY_READ_TIMEOUT_SECS", "120"),
            ("HARPOON__SERVICE__KEEP_ALIVE_TIMEOUT_SECS", "120"),
            // Uploads must reach the body, not a 429 for the quota.
            ("HARPOON__QUOTAS__MAX_CONCURRENT", "1000"),
            ("HARPOON__QUOTAS__REQUESTS_PER_MINUTE", "100000"),
        ],
    );
    let limits = open_files_limit(svc.child.id());
    assert!(limits.split_whitespace().nth(3) == Some("256"), "{limits}");

    let mut held = hold(svc.port, 320);
    for round in 0..3 {
        let (status, took) = health(svc.port, Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("round {round}, {} held: {e}", held.len()));
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(1), "{took:?}");
        // The attacker keeps coming between the checks.
        held.extend(hold(svc.port, 60));
    }

    // Most held sockets were closed by the service to make room.
    let mut closed = 0;
    for conn in &mut held {
        conn.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 16];
        match conn.read(&mut buf) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => closed += 1,
            _ => {}
        }
    }
    assert!(
        closed >= held.len() - 256 / 2,
        "{closed} of {} closed",
        held.len()
    );
}

/// Reads until the service closes the connection or `limit` passes; how long that took.
fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    conn.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(started.elapsed()),
            Err(_) => return None,
        }
    }
}

#[test]
fn silent_trickling_uploading_and_idle_connections_are_closed_on_time() {
    let svc = Service::start(&[
        ("HARPOON__SERVICE__HEADER_READ_TIMEOUT_SECS", "1"),
        ("HARPOON__SERVICE__BODY_READ_TIMEOUT_SECS", "2"),
        ("HARPOON__SERVICE__KEEP_ALIVE_TIMEOUT_SECS", "3"),
    ]);
    let connect = || TcpStream::connect(("127.0.0.1", svc.port)).unwrap();

    // Sends nothing at all.
    let mut silent = connect();
    let took = closed_within(&mut silent, Duration::from_secs(5))
        .expect("a silent connection is closed after the header timeout");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // A byte at a time cannot stretch the header timeout.
    let mut trickle = connect();
    let started = Instant::now();
    let mut cut = false;
    for byte in b"GET /health HTTP/1.1\r\nhost: localhost\r\n"
        .iter()
        .take(25)
    {
        if trickle.write_all(&[*byte]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = if cut {
        started.elapsed()
    } else {
        started.elapsed() + closed_within(&mut trickle, Duration::from_secs(5)).expect("closed")
    };
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Nor can a body trickled a byte at a time stretch the body timeout.
    let mut upload = connect();
    upload.write_all(HALF_A_BODY).unwrap();
    let started = Instant::now();
    for _ in 0..25 {
        std::thread::sleep(Duration::from_millis(200));
        if upload.write_all(b" ").is_err() {
            break;
        }
    }
    let took = started.elapsed()
        + closed_within(&mut upload, Duration::from_secs(5)).expect("a trickled body is cut");
    assert!(took < Duration::from_secs(4), "{took:?}");

    // After an answer, idle time is the keep-alive timeout's, not the header's.
    let mut keep = connect();
    keep.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    keep.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = keep.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle = closed_within(&mut keep, Duration::from_secs(8))
        .expect("an idle keep-alive connection is closed");
    assert!(
        idle > Duration::from_millis(2_500) && idle < Duration::from_secs(5),
        "{idle:?}"
    );
}
