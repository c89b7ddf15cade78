//! Records the git commit for `/health?detailed=true`, when built inside a
//! checkout; with feature `pymlx`, links the venv's libpython by rpath (as
//! `orchestrator`'s build script does for its own targets).

use std::{path::Path, process::Command};

fn main() {
    python_rpath();
    let git_dir = Path::new("../../.git");
    // Only watch paths that exist: a missing one would rebuild on every build.
    for watched in ["HEAD", "refs/heads"] {
        let path = git_dir.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    // `sqlx::migrate!` embeds migrations/ at compile time: an added or edited
    // .sql file alone must rebuild the crate, or the binary keeps the old set.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=HARPOON_GIT_SHA");
    if std::env::var_os("HARPOON_GIT_SHA").is_some() {
        return;
    }
    let sha = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(sha) = sha {
        println!("cargo:rustc-env=HARPOON_GIT_SHA={sha}");
    }
}

/// Without an rpath the loader may pick another libpython3.11 (Debian ships
/// one), silently running a different interpreter than the venv's.
fn python_rpath() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    if std::env::var_os("CARGO_FEATURE_PYMLX").is_none() {
        return;
    }
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let libdir = Command::new(&python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match libdir {
        Some(dir) => println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}"),
        None => panic!("pymlx: cannot run {python}; run `make test` to create .venv"),
    }
}
