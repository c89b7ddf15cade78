//! A real OpenAI-compatible engine for pods to forward to: `mlx_lm.server` on
//! the tiny test model, started once per test process and stopped with it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running `mlx_lm.server`.
#[derive(Debug)]
pub struct MlxServer {
    /// Where it listens.
    pub addr: SocketAddr,
    _child: Child,
}

/// Why the engine could not be started.
#[derive(Debug, Clone)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// A wrapper that stops the server when our end of its stdin closes, so the
// server never outlives the test process, however that process ends.
const WRAPPER: &str = "import subprocess, sys\n\
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
sys.stdin.read()\n\
p.terminate()\n\
try:\n    p.wait(timeout=10)\nexcept Exception:\n    p.kill()\n";

impl MlxServer {
    /// Starts `mlx_lm.server` on `model` (a directory) on a free loopback port
    /// and waits until it answers `GET /v1/models`.
    pub fn start(model: &std::path::Path) -> Result<MlxServer, StartError> {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| StartError(format!("no free port: {e}")))?
            .port();
        let child = Command::new(&python)
            .arg("-c")
            .arg(WRAPPER)
            .arg(&python)
            .args(["-m", "mlx_lm.server", "--model"])
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HUB_CACHE", root.join("target/hf-cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| StartError(format!("cannot start {}: {e}", python.display())))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = MlxServer {
            addr,
            _child: child,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if get_ok(addr, "/v1/models") {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(StartError(format!(
            "mlx_lm.server did not answer on {addr} within 120 s"
        )))
    }

    /// One server for the whole test process, on `target/test-models/qwen3`.
    pub fn shared() -> Result<&'static MlxServer, StartError> {
        static SHARED: OnceLock<Result<MlxServer, StartError>> = OnceLock::new();
        SHARED
            .get_or_init(|| MlxServer::start(&repo_root().join("target/test-models/qwen3")))
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn get_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..10] == b"2"
}
