//! Starts the real `service` binary on a free loopback port for end-to-end tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure should panic
#![allow(dead_code)]

use std::{
    net::TcpListener,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// A running `service` process, killed on drop if it is still alive.
pub struct Service {
    pub child: Child,
    pub port: u16,
    pub base: String,
    /// Holds the service's data directory until the test ends.
    pub data: tempfile::TempDir,
}

/// A port that was free a moment ago (the OS hands out a fresh one each time).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A command for the binary with a clean, test-controlled environment.
pub fn command() -> Command {
    command_under(&[])
}

/// The same, run by `wrapper` (a program and its arguments, e.g. `prlimit`).
pub fn command_under(wrapper: &[&str]) -> Command {
    let bin = env!("CARGO_BIN_EXE_service");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // A HOME without ~/.orchestrator keeps a developer's own file out of tests.
        .env(
            "HOME",
            std::env::temp_dir().join("harpoon-test-home-absent"),
        );
    cmd
}

impl Service {
    /// Starts the service with extra environment variables and waits until it answers.
    pub fn start(env: &[(&str, &str)]) -> Service {
        let port = free_port();
        let data = tempfile::tempdir().expect("temp data dir");
        Self::start_in(data, port, env)
    }

    /// Starts the service on `port` with its state in `data` (for restarts).
    pub fn start_in(data: tempfile::TempDir, port: u16, env: &[(&str, &str)]) -> Service {
        Self::start_under(&[], data, port, env)
    }

    /// Starts the service run by `wrapper` (see [`command_under`]).
    pub fn start_under(
        wrapper: &[&str],
        data: tempfile::TempDir,
        port: u16,
        env: &[(&str, &str)],
    ) -> Service {
        let mut cmd = command_under(wrapper);
        cmd.env("SERVICE_PORT", port.to_string())
            .env("HARPOON__STORAGE__DATA_DIR", data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn service");
        let service = Service {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            data,
        };
        service.wait_until_listening();
        service
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("service did not listen on port {} within 20 s", self.port);
    }

    /// URL of a path on this service.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for exit, failing the test after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "service did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
