//! End to end against the real binary: what needs the process and its
//! sockets, namely SIGTERM, graceful shutdown and its grace period with a
//! request still uploading. Routes, error envelopes, request ids, metrics,
//! OpenAPI, CORS, compression and the request timeout are tested in process
//! through the router, in `app.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use common::Service;
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

/// Sends the head of a POST and part of its body, leaving the request in flight.
fn start_slow_upload(port: u16, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    )
    .unwrap();
    stream.flush().unwrap();
    stream
}

fn read_response(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&response);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if len.is_some_and(|len| body.len() >= len) {
                        break;
                    }
                }
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }
    String::from_utf8(response).unwrap()
}

const CHAT_BODY: &str =
    r#"{"model":"auto","messages":[{"role":"user","content":"finish me after the signal"}]}"#;

#[test]
fn a_slow_request_outlives_sigterm_and_new_connections_are_refused() {
    let mut svc = Service::start(&[("HARPOON__SERVICE__SHUTDOWN_GRACE_SECS", "10")]);
    let mut in_flight = start_slow_upload(svc.port, CHAT_BODY);
    std::thread::sleep(Duration::from_millis(300));

    svc.terminate();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", svc.port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "waits for the in-flight request"
    );

    in_flight
        .write_all(&CHAT_BODY.as_bytes()[CHAT_BODY.len() / 2..])
        .unwrap();
    let response = read_response(&mut in_flight);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("engine_unavailable"), "{response}");

    let status = svc.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn shutdown_does_not_wait_past_the_grace_period() {
    let mut svc = Service::start(&[("HARPOON__SERVICE__SHUTDOWN_GRACE_SECS", "1")]);
    let _stalled = start_slow_upload(svc.port, CHAT_BODY);
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    svc.terminate();
    let status = svc.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "waited for the grace period: {took:?}"
    );
}
