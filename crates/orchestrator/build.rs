//! With feature `pymlx`: link against the interpreter in `PYO3_PYTHON` (the
//! project venv) by rpath, so the binary never picks up another libpython on
//! the loader path, and record that venv's site-packages for start-up.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    if std::env::var_os("CARGO_FEATURE_PYMLX").is_none() {
        return;
    }
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args([
            "-c",
            "import site, sysconfig; print(sysconfig.get_config_var('LIBDIR')); print(site.getsitepackages()[0])",
        ])
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => panic!(
            "pymlx: cannot run {python}; run `make test` (or scripts/setup-python.sh) to create .venv"
        ),
    };
    let mut lines = text.lines();
    let (Some(libdir), Some(site)) = (lines.next(), lines.next()) else {
        panic!("pymlx: {python} did not report LIBDIR and site-packages");
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{libdir}");
    println!("cargo:rustc-env=HARPOON_VENV_SITE_PACKAGES={site}");
}
