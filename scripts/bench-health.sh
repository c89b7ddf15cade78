#!/usr/bin/env bash
# Load test of GET /health on a release build over loopback with wrk.
# Usage: scripts/bench-health.sh [duration_secs] [connections] [threads]
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${1:-10}"
connections="${2:-64}"
threads="${3:-2}"

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "bench: wrk is not installed (apt-get install wrk)" >&2
    exit 2
  fi
fi

cargo build --release --locked -p service
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn SERVICE_PORT="$port" ./target/release/service &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:${port}/health" >/dev/null && break
  sleep 0.05
done

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)"
echo "command: wrk -t${threads} -c${connections} -d${duration}s --latency http://127.0.0.1:${port}/health"
wrk -t"${threads}" -c"${connections}" -d"${duration}s" --latency "http://127.0.0.1:${port}/health"
