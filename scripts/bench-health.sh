#!/usr/bin/env bash
# Load test of GET /health over loopback with wrk, A/B interleaved:
#   A = the release `service` binary (full middleware stack),
#   B = bare axum serving the same body (examples/bare_health.rs).
# Rounds alternate A, B, A, B, … so both see the same machine load; the
# summary gives medians per side and the A/B ratio.
# Usage: scripts/bench-health.sh [rounds] [secs_per_round] [connections] [wrk_threads]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-3}"
secs="${2:-5}"
conns="${3:-64}"
threads="${4:-2}"

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "bench: wrk is not installed (apt-get install wrk)" >&2
    exit 2
  fi
fi

cargo build --release --locked -p service --bin service --example bare_health
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_a=$(free_port)
port_b=$(free_port)
RUST_LOG=warn SERVICE_PORT="$port_a" ./target/release/service &
pid_a=$!
./target/release/examples/bare_health "$port_b" &
pid_b=$!
trap 'kill "$pid_a" "$pid_b" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for port in "$port_a" "$port_b"; do
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:${port}/health" >/dev/null && break
    sleep 0.05
  done
done

results=$(mktemp)
run() { # side port
  local out rps p50 p99
  out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$2/health")
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  printf '%s %s %s %s\n' "$1" "$rps" "$p50" "$p99" | tee -a "$results"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); wrk shares the cores"
echo "per round: wrk -t${threads} -c${conns} -d${secs}s --latency http://127.0.0.1:PORT/health"
echo "side requests/s p50 p99"
for _ in $(seq "$rounds"); do
  run A "$port_a"
  run B "$port_b"
done

python3 - "$results" <<'PY'
import statistics, sys
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float(v)
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for side in "AB":
    r = [x for x in rows if x[0] == side]
    med[side] = (statistics.median(float(x[1]) for x in r),
                 statistics.median(ms(x[2]) for x in r),
                 statistics.median(ms(x[3]) for x in r))
    print(f"median {side}: {med[side][0]:,.0f} req/s, p50 {med[side][1]:.3f} ms, p99 {med[side][2]:.3f} ms")
print(f"A/B throughput ratio: {med['A'][0] / med['B'][0]:.2f}")
PY
