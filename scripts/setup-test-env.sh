#!/usr/bin/env bash
# Installs what `make test` needs on a fresh machine. Idempotent: each step
# checks before it installs, so a second run costs seconds.
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }

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

# rustfmt and clippy for `make lint`.
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    say "adding rust component ${component}"
    rustup component add "${component}"
  fi
done

# curl runs the README's examples in the test suite.
command -v curl >/dev/null || { say "installing curl"; apt_install curl ca-certificates; }

# Python side: MLX + mlx-lm (the OpenAI-compatible peer), the openai client,
# and the tiny random-weight test models built from them. Offline: nothing may
# reach the Hugging Face hub; mlx_lm.server's /v1/models scans HF_HUB_CACHE,
# which must exist.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"${root}/scripts/setup-python.sh"
mkdir -p "${root}/target/hf-cache"
(cd "${root}" && HF_HUB_OFFLINE=1 HF_HUB_CACHE="${root}/target/hf-cache" \
  .venv/bin/python scripts/make_tiny_model.py target/test-models)

# promtool checks the /metrics exposition (tests/e2e/test_metrics.py): taken
# from Debian's prometheus package, without installing the server.
promtool="${root}/target/tools/promtool"
if [ ! -x "${promtool}" ]; then
  say "extracting promtool from Debian's prometheus package"
  if [ -z "${HARPOON_APT_UPDATED:-}" ] && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    export HARPOON_APT_UPDATED=1
  fi
  tmp="$(mktemp -d)"
  (cd "${tmp}" && apt-get download -qq prometheus >/dev/null && dpkg-deb -x prometheus_*.deb x)
  mkdir -p "$(dirname "${promtool}")"
  cp "${tmp}/x/usr/bin/promtool" "${promtool}"
  rm -rf "${tmp}"
fi

# The cluster test (tests/cluster, `make cluster`): HAProxy in front of replicas.
if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
  say "installing haproxy"
  apt_install haproxy
fi

# Shared quotas across replicas (crates/service/tests/shared_quotas.rs and
# the cluster test): Redis from Debian, started by each test on its own port.
if ! command -v redis-server >/dev/null; then
  say "installing redis-server"
  apt_install redis-server
fi

# The dashboard's browser test (tests/browser, `make browser`): Debian's
# Chromium, Node.js, and playwright-core as pinned in package-lock.json.
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium"
  apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing nodejs and npm"
  apt_install nodejs npm
fi
browser="${root}/tests/browser"
# npm ci again whenever package-lock.json changed since the last install (a
# copy of it is kept beside node_modules), not only when playwright moved.
if ! cmp -s "${browser}/package-lock.json" "${browser}/node_modules/.harpoon-installed-lock"; then
  say "installing the browser tests' packages as pinned (npm ci)"
  (cd "${browser}" && npm ci --no-audit --no-fund)
  cp "${browser}/package-lock.json" "${browser}/node_modules/.harpoon-installed-lock"
fi

say "ready"
