#!/usr/bin/env bash
# Creates the repository's Python environment (.venv at the repo root) from
# python/requirements.lock: MLX (CPU), mlx-lm (model classes and the
# OpenAI-compatible peer `mlx_lm.server`), the official `openai` client and
# `tokenizers`.
#
# Idempotent: a stamp in .venv records the lock's sha256 and the interpreter;
# when both are unchanged the script returns at once. When the lock changes the
# venv is rebuilt from scratch so that it holds exactly what the lock pins.
#
# Env: HARPOON_PYTHON  interpreter to build the venv from (default: python3)
#      HARPOON_VENV    where the venv lives (default: <repo>/.venv)
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="${root}/python/requirements.lock"
venv="${HARPOON_VENV:-${root}/.venv}"
stamp="${venv}/.harpoon-lock-sha256"
python="${HARPOON_PYTHON:-python3}"

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    say "cannot install $* without root; install it and run again" >&2
    return 1
  fi
  if [ -z "${HARPOON_APT_UPDATED:-}" ]; then
    apt-get update -qq
    export HARPOON_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

[ -f "${lock}" ] || { say "missing ${lock}" >&2; exit 1; }

if ! command -v "${python}" >/dev/null 2>&1; then
  say "installing python3"
  apt_install python3 python3-venv
fi
python_path="$(command -v "${python}")"

# The interpreter's identity: a venv is bound to the interpreter it was made from.
py_id="$("${python_path}" -c 'import sys; print(sys.version.split()[0], sys.base_prefix)')"
want="$(sha256sum "${lock}" | cut -d' ' -f1) ${py_id}"

if [ -x "${venv}/bin/python" ] && [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ]; then
  say "python env up to date (${venv})"
  exit 0
fi

# Debian's python3 ships venv/ensurepip separately (python3-venv).
if ! "${python_path}" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  say "installing python3-venv"
  apt_install python3-venv
fi

if [ -e "${venv}" ]; then
  say "rebuilding ${venv} (lock or interpreter changed)"
  rm -rf "${venv}"
fi
say "creating ${venv} with ${python_path} (Python ${py_id%% *})"
"${python_path}" -m venv "${venv}"

say "installing python/requirements.lock"
# The lock pins every package, so --no-deps installs exactly it; pip check
# below catches a lock that misses a dependency.
# mlx-cpu is MLX's Linux CPU backend (the lock was frozen on Linux); on macOS
# mlx's own wheel carries the Metal backend and mlx-cpu has no wheel.
install_from="${lock}"
if [ "$(uname -s)" = Darwin ]; then
  install_from="$(mktemp)"
  grep -v '^mlx-cpu==' "${lock}" > "${install_from}"
fi
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-deps --only-binary=:all: -r "${install_from}"
"${venv}/bin/python" -m pip check --disable-pip-version-check >/dev/null || {
  "${venv}/bin/python" -m pip check --disable-pip-version-check >&2
  say "python/requirements.lock is inconsistent; regenerate it (see python/requirements.in)" >&2
  exit 1
}

printf '%s\n' "${want}" > "${stamp}"
say "python env ready ($("${venv}/bin/python" -c 'import mlx_lm, openai; print("mlx-lm", mlx_lm.__version__, "openai", openai.__version__)'))"
