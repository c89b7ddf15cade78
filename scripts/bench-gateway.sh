#!/usr/bin/env bash
# Gateway overhead: POST /v1/chat/completions through Harpoon to a static
# OpenAI-compatible upstream (nginx returning a fixed completion) against the
# same upstream called directly, A/B interleaved, same load.
#   A = Harpoon (model "auto": classify, route, call upstream, re-serialise)
#   B = nginx direct
#   C = a second nginx as a plain reverse proxy (keep-alive upstream) in front
#       of the same upstream: the cost of one extra hop on this machine with a
#       proxy that does nothing else, as a yardstick for A
# Usage: scripts/bench-gateway.sh [rounds] [secs_per_round] [connections] [rate]
# HARPOON_BIN picks the service binary (default: a fresh release build).
# HARPOON_BIN_ALT adds a side A2: a second Harpoon binary (e.g. an older build)
# started beside the first and interleaved with it round by round, so two
# builds are compared under the same machine load.
# With a rate (requests/s over all connections), each connection waits
# connections/rate between requests, so both sides get the same offered load
# and the latency difference is Harpoon's own cost; without one, wrk runs
# closed-loop and each side goes as fast as it can.
# NGINX_WORKERS sets the upstream nginx's worker_processes (default 1; `auto`
# is one per core, as a stock nginx.conf has). The proxy of side C keeps one.
# HARPOON_ENV adds settings to both Harpoon sides, HARPOON_ENV_ALT to A2
# only; with HARPOON_ENV_ALT and no HARPOON_BIN_ALT, A2 runs HARPOON_BIN, so
# one binary is compared with itself under one changed setting, e.g.
#   HARPOON_BIN=target/release/service HARPOON_ENV_ALT="RUST_LOG=info" \
#     scripts/bench-gateway.sh 6 5 32
# By default Harpoon logs at warn (the default level is info, a line per
# request) and the model has no tokenizer.json (HF_HUB_CACHE points at an
# empty folder), so the prompt is not tokenized; TOKENIZER=1 serves the tiny
# test model's tokenizer (target/test-models/gemma3_text, `make setup`) to
# both Harpoon sides, TOKENIZER=A2 to A2 only.
# TRACES=1 turns OpenTelemetry traces on for both Harpoon sides, TRACES=A2
# for A2 only: spans go over OTLP/HTTP to the upstream nginx, whose
# /v1/traces answers 200 and drops them (a receiver that costs next to
# nothing, so the figure is Harpoon's own cost of tracing).
# The first lines printed name the shape that was run.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"; secs="${2:-5}"; conns="${3:-32}"; rate="${4:-}"
workers="${NGINX_WORKERS:-1}"

for tool in wrk nginx; do
  if ! command -v "$tool" >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "bench: $tool is not installed" >&2; exit 2; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done
bin="${HARPOON_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --locked -p service
  bin=./target/release/service
fi

work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); gw=$(free_port); px=$(free_port); gw2=$(free_port)
cat > "$work/nginx.conf" <<NGINX
worker_processes $workers;
error_log $work/error.log;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work;
  server {
    listen 127.0.0.1:$up;
    location /v1/traces {
      default_type application/x-protobuf;
      return 200 '';
    }
    location /v1/chat/completions {
      default_type application/json;
      return 200 '{"id":"chatcmpl-static","object":"chat.completion","created":0,"model":"static","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}';
    }
  }
}
NGINX
nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
mkdir -p "$work/proxy"
cat > "$work/proxy/nginx.conf" <<NGINX
worker_processes 1;
error_log $work/proxy/error.log;
pid $work/proxy/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/proxy;
  proxy_temp_path $work/proxy;
  upstream static { server 127.0.0.1:$up; keepalive 64; }
  server {
    listen 127.0.0.1:$px;
    location / {
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" -g 'daemon off;' &
proxy_pid=$!
# The model's tokenizer: none by default (an empty Hugging Face cache, so the
# result does not depend on what this machine has downloaded).
mkdir -p "$work/hf-cache"
model_env=(HF_HUB_CACHE="$work/hf-cache")
tokenizer="absent (prompt not tokenized)"
case "${TOKENIZER:-0}" in
  0) ;;
  1|A2)
    repo="$PWD/target/test-models/gemma3_text"
    [ -f "$repo/tokenizer.json" ] || { echo "bench: no $repo/tokenizer.json; run make setup" >&2; exit 2; }
    if [ "$TOKENIZER" = 1 ]; then
      model_env+=(HARPOON__MODELS__GEMMA__REPO="$repo")
      tokenizer="present ($repo/tokenizer.json)"
    else
      HARPOON_ENV_ALT="${HARPOON_ENV_ALT:+$HARPOON_ENV_ALT }HARPOON__MODELS__GEMMA__REPO=$repo"
      tokenizer="absent on A, present on A2 ($repo/tokenizer.json)"
    fi;;
  *) echo "bench: TOKENIZER is 0, 1 or A2" >&2; exit 2;;
esac
traces="off"
case "${TRACES:-0}" in
  0) ;;
  1) HARPOON_ENV="${HARPOON_ENV:+$HARPOON_ENV }HARPOON__TELEMETRY__OTLP_ENDPOINT=http://127.0.0.1:$up"
     traces="on for A and A2 (to nginx on 127.0.0.1:$up/v1/traces)";;
  A2) HARPOON_ENV_ALT="${HARPOON_ENV_ALT:+$HARPOON_ENV_ALT }HARPOON__TELEMETRY__OTLP_ENDPOINT=http://127.0.0.1:$up"
     traces="off on A, on for A2 (to nginx on 127.0.0.1:$up/v1/traces)";;
  *) echo "bench: TRACES is 0, 1 or A2" >&2; exit 2;;
esac
# Quotas far above the offered load: this measures the gateway, not the limiter.
start_harpoon() { # binary port data_dir [NAME=value ...]
  local binary="$1" port="$2" data="$3"; shift 3
  env RUST_LOG=warn SERVICE_PORT="$port" \
    HARPOON__STORAGE__DATA_DIR="$data" \
    HARPOON__QUOTAS__REQUESTS_PER_MINUTE=100000000 \
    HARPOON__QUOTAS__MAX_CONCURRENT=100000 \
    HARPOON__MODELS__GEMMA__ENGINE=openai \
    HARPOON__MODELS__GEMMA__BASE_URL="http://127.0.0.1:$up/v1" \
    "${model_env[@]}" "$@" "$binary" >"$data.log" 2>&1 &
}
read -ra env_both <<<"${HARPOON_ENV:-}"
read -ra env_alt <<<"${HARPOON_ENV_ALT:-}"
start_harpoon "$bin" "$gw" "$work/data" "${env_both[@]}"
svc_pid=$!
pids="$svc_pid $nginx_pid $proxy_pid"
sides="A B C"
bin_alt="${HARPOON_BIN_ALT:-}"
[ -z "$bin_alt" ] && [ -n "${HARPOON_ENV_ALT:-}" ] && bin_alt="$bin"
if [ -n "$bin_alt" ]; then
  start_harpoon "$bin_alt" "$gw2" "$work/data2" "${env_both[@]}" "${env_alt[@]}"
  alt_pid=$!
  pids="$pids $alt_pid"
  sides="A A2 B C"
fi
# On failure, the services' own logs say why before their folder goes.
trap 'status=$?; kill $pids 2>/dev/null || true; wait 2>/dev/null || true
  [ "$status" -eq 0 ] || tail -n 50 "$work"/data*.log >&2 2>/dev/null || true
  rm -rf "$work"' EXIT

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"auto","messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":16}'
LUA
if [ -n "$rate" ]; then
  mean_ms=$(python3 -c "print(round($conns * 1000 / $rate, 3))")
  if [ "${ARRIVALS:-poisson}" = fixed ]; then
    echo "function delay() return $mean_ms end" >> "$work/post.lua"
  else
    # Exponential think time per request: each connection is an independent
    # client, so arrivals are Poisson. (A fixed delay keeps the connections
    # phase-locked: all of them fire within a few hundred microseconds, every
    # period, for the whole run.) Each wrk thread gets its own seed.
    cat >> "$work/post.lua" <<LUA
local counter = 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init(args) math.randomseed(seed * 7919) end
function delay() return -math.log(1 - math.random()) * $mean_ms end
LUA
  fi
fi
harpoons="$gw${alt_pid:+ $gw2}"
for _ in $(seq 100); do
  ok=1
  for port in $harpoons; do curl -fs -o /dev/null "http://127.0.0.1:$port/health" || ok=0; done
  for port in $up $px; do curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/v1/chat/completions" || ok=0; done
  [ "$ok" = 1 ] && break
  sleep 0.05
done
# One real request first: the answer must be the upstream's, routed to gemma.
for port in $harpoons; do
  curl -fs -X POST -H 'content-type: application/json' --data "$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$work/post.lua")" \
    "http://127.0.0.1:$port/v1/chat/completions" | grep -q 'Paris is the capital of France.'
done

results="$work/results"
# CPU time (user + system, clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Context switches of a process's live threads so far (threads that ended
# take theirs with them; the service's serving threads live for the run).
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/{s += $2} END {print s}'; }
# The machine's CPU ticks so far: all of them, and those stolen by the host.
machine() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat; }
run() { # side port
  local out before after cs_before cs_after m_before m_after pid=$svc_pid
  [ "$1" = A2 ] && pid=$alt_pid
  before=$(ticks "$pid"); cs_before=$(switches "$pid"); m_before=$(machine)
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/post.lua" "http://127.0.0.1:$2/v1/chat/completions")
  after=$(ticks "$pid"); cs_after=$(switches "$pid"); m_after=$(machine)
  if grep -q "Non-2xx" <<<"$out"; then echo "bench: $1 answered errors" >&2; echo "$out" >&2; exit 1; fi
  local cpu=- cs=-
  if [ "$1" = A ] || [ "$1" = A2 ]; then # Harpoon's own CPU (µs) and switches per request
    local n; n=$(awk '/requests in/{print $1}' <<<"$out")
    cpu=$(python3 -c "print(round(($after - $before) * 1e6 / $(getconf CLK_TCK) / $n, 1))")
    cs=$(python3 -c "print(round(($cs_after - $cs_before) / $n, 2))")
  fi
  local steal; steal=$(python3 -c "b, a = '$m_before'.split(), '$m_after'.split(); print(round(100 * (int(a[1]) - int(b[1])) / max(1, int(a[0]) - int(b[0])), 1))")
  printf '%s %s %s %s %s %s %s\n' "$1" "$(awk '/^Requests\/sec:/{print $2}' <<<"$out")" \
    "$(awk '$1=="50%"{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")" "$cpu" "$cs" "$steal" | tee -a "$results"
}
echo "started: $(date -u '+%F %H:%M:%S') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); wrk, nginx and Harpoon share the cores"
if [ -n "$rate" ]; then
  shape="open loop, $rate req/s offered over $conns connections, ${ARRIVALS:-poisson} arrivals"
else
  shape="closed loop, $conns connections, each side as fast as it goes"
fi
echo "shape: $shape; upstream nginx worker_processes $workers"
echo "harpoon: A = $bin${alt_pid:+, A2 = $bin_alt}; RUST_LOG=warn${HARPOON_ENV:+ $HARPOON_ENV}${HARPOON_ENV_ALT:+ (A2 also: $HARPOON_ENV_ALT)}; tokenizer $tokenizer; traces $traces"
echo "per round: wrk -t2 -c$conns -d${secs}s --latency -s post.lua http://127.0.0.1:PORT/v1/chat/completions"
echo "side requests/s p50 p99 harpoon_cpu_us_per_request harpoon_switches_per_request steal_%"
port_of() { case "$1" in A) echo "$gw";; A2) echo "$gw2";; B) echo "$up";; C) echo "$px";; esac; }
for _ in $(seq "$rounds"); do
  for side in $sides; do run "$side" "$(port_of "$side")"; done
done
python3 - "$results" $sides <<'PY'
import statistics, sys
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
rows = [l.split() for l in open(sys.argv[1])]
sides = sys.argv[2:]
med = {s: [statistics.median(float(r[1]) for r in rows if r[0] == s),
           statistics.median(ms(r[2]) for r in rows if r[0] == s),
           statistics.median(ms(r[3]) for r in rows if r[0] == s)] for s in sides}
names = {"A": "Harpoon -> nginx", "A2": "Harpoon A2 -> nginx", "B": "nginx direct",
         "C": "nginx proxy -> nginx"}
for s in sides:
    print(f"median {s} ({names[s]}): {med[s][0]:,.0f} req/s, p50 {med[s][1]:.3f} ms, p99 {med[s][2]:.3f} ms")
for s, who in (("A", "Harpoon"), ("A2", "Harpoon A2"), ("C", "the nginx proxy")):
    if s in med:
        print(f"added by {who}: p50 {med[s][1]-med['B'][1]:+.3f} ms, p99 {med[s][2]-med['B'][2]:+.3f} ms; "
              f"throughput ratio {s}/B {med[s][0]/med['B'][0]:.2f}")
for s, who in (("A", "Harpoon"), ("A2", "Harpoon A2")):
    if s in med:
        cpu = statistics.median(float(r[4]) for r in rows if r[0] == s)
        cs = statistics.median(float(r[5]) for r in rows if r[0] == s)
        print(f"{who} per request (median of {s} rounds): CPU {cpu:.1f} us, {cs:.2f} context switches")
if "A2" in med:
    ratio = lambda k, i: statistics.median(float(r[i]) for r in rows if r[0] == k)
    print(f"A/A2: throughput {med['A'][0]/med['A2'][0]:.3f}, CPU per request {ratio('A', 4)/ratio('A2', 4):.3f}, "
          f"p50 {med['A'][1]/med['A2'][1]:.3f}, p99 {med['A'][2]/med['A2'][2]:.3f}")
steal = [float(r[6]) for r in rows]
print(f"CPU stolen by the host during the rounds: median {statistics.median(steal):.1f} %, max {max(steal):.1f} %")
PY
