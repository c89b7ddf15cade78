#!/usr/bin/env bash
# Fuzzes the service's HTTP API from its own OpenAPI document with Schemathesis:
#
#   scripts/fuzz-api.sh [BINARY]        (default: target/debug/service)
#
# Starts BINARY on a free 127.0.0.1 port in a fresh temp directory (its working
# directory, so the default `data/` store is new and empty, and HOME, so no
# ~/.orchestrator/config.yaml applies) with nothing but SERVICE_PORT,
# RUST_LOG=warn, HOME and PATH in its environment (no HARPOON__* key: the
# service refuses unknown ones; no DATABASE_URL), waits for /health, saves
# the document it serves at /openapi.json and runs `schemathesis run` on it
# against http://127.0.0.1:PORT with a fixed seed, one worker: every phase
# (examples, coverage, fuzzing; stateful when the document has links),
# positive and negative data, and the checks
#
#   documented_server_errors_allowed  no 5xx, unless the operation documents
#                                     that status (tests/fuzz/hooks.py; it
#                                     replaces the built-in not_a_server_error,
#                                     to which it hands every other response)
#   status_code_conformance           every status is documented
#   content_type_conformance          every Content-Type is documented
#   response_schema_conformance       every body matches its documented schema
#
# Prints a tally of every request made (per operation, status and error code,
# so allowed documented 5xx such as 503 engine_unavailable stay visible), stops
# the service by PID, and exits non-zero on any failure or when fewer than
# HARPOON_FUZZ_MIN_REQUESTS requests were made.
#
# Every failure is printed with a curl command that reproduces it. Reports
# (VCR cassette of every request, JUnit, the OpenAPI document, the service log)
# are kept in target/fuzz-api/.
#
# Env: HARPOON_FUZZ_KEY           send `Authorization: Bearer <key>` on every request
#      HARPOON_FUZZ_SEED          Hypothesis seed (default 20251124)
#      HARPOON_FUZZ_MAX_EXAMPLES  test cases per operation in the fuzzing phase (default 50)
#      HARPOON_FUZZ_RATE_LIMIT    client-side rate, schemathesis' `N/s|m|h` syntax
#                                 (default none: the service is started with a request
#                                 quota far above what the run sends; before that, 590/m, under the default quota of
#                                 600 requests per minute for the local tenant;
#                                 `none` sends as fast as the service answers)
#      HARPOON_FUZZ_MIN_REQUESTS  fail below this many requests (default 1000)
#      HARPOON_FUZZ_REPORT_DIR    where reports go (default target/fuzz-api)
#      HARPOON_FUZZ_TIMEOUT       seconds the schemathesis run may take (default 600)
#      HARPOON_FUZZ_SERVICE_ENV  extra KEY=VALUE words for the service's environment
#                                 (e.g. models pointing at the tiny test models)
#      HARPOON_FUZZ_EXTRA_CHECKS  more schemathesis checks, comma-separated (e.g.
#                                 negative_data_rejection,positive_data_acceptance)
set -euo pipefail

say() { printf 'fuzz: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HARPOON_VENV:-${root}/.venv}"
hooks="${root}/tests/fuzz/hooks.py"
seed="${HARPOON_FUZZ_SEED:-20251124}"
max_examples="${HARPOON_FUZZ_MAX_EXAMPLES:-50}"
rate_limit="${HARPOON_FUZZ_RATE_LIMIT:-none}"
min_requests="${HARPOON_FUZZ_MIN_REQUESTS:-1000}"
report_dir="${HARPOON_FUZZ_REPORT_DIR:-${root}/target/fuzz-api}"
st_timeout="${HARPOON_FUZZ_TIMEOUT:-600}"
checks="documented_server_errors_allowed,status_code_conformance,content_type_conformance,response_schema_conformance"
[ -z "${HARPOON_FUZZ_EXTRA_CHECKS:-}" ] || checks="${checks},${HARPOON_FUZZ_EXTRA_CHECKS}"

# ---------------------------------------------------------------- tools
if ! "${venv}/bin/python" -c 'import schemathesis' >/dev/null 2>&1; then
  say "schemathesis missing from ${venv}; running scripts/setup-python.sh"
  "${root}/scripts/setup-python.sh"
fi
py="${venv}/bin/python"
st="${venv}/bin/schemathesis"
[ -x "${st}" ] || die "no ${st} (is schemathesis in python/requirements.lock?)"

if [ "$#" -gt 1 ]; then
  printf 'usage: %s [BINARY]\n' "$0" >&2
  exit 64
fi
if [ "$#" -eq 1 ]; then
  binary="$1"
  [ -x "${binary}" ] || die "${binary} is not an executable"
else
  binary="${root}/target/debug/service"
  if [ ! -x "${binary}" ]; then
    say "building the service (cargo build -p service)"
    (cd "${root}" && cargo build -p service)
  fi
fi
binary="$(cd "$(dirname "${binary}")" && pwd)/$(basename "${binary}")"

# ---------------------------------------------------------------- the service
tmp="$(mktemp -d "${TMPDIR:-/tmp}/harpoon-fuzz.XXXXXX")"
mkdir -p "${tmp}/home"
service_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "${service_pid}" ] && kill -0 "${service_pid}" 2>/dev/null; then
    say "stopping the service (pid ${service_pid})"
    kill -TERM "${service_pid}" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "${service_pid}" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "${service_pid}" 2>/dev/null; then
      say "the service ignored SIGTERM for 5s; killing it"
      kill -KILL "${service_pid}" 2>/dev/null || true
    fi
    wait "${service_pid}" 2>/dev/null || true
  fi
  if [ -s "${tmp}/service.log" ]; then
    mkdir -p "${report_dir}" && cp "${tmp}/service.log" "${report_dir}/service.log" 2>/dev/null || true
  fi
  rm -rf "${tmp}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$("${py}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
base="http://127.0.0.1:${port}"
say "starting ${binary#"${root}"/} on 127.0.0.1:${port} (cwd ${tmp}, HOME=${tmp}/home)"
(
  # The working directory is the temp dir too: relative defaults such as the
  # storage's `data/` (SQLite file) land there, never in the repository.
  cd "${tmp}"
  exec env -i PATH="${PATH}" HOME="${tmp}/home" SERVICE_PORT="${port}" RUST_LOG=warn \
    HARPOON__QUOTAS__REQUESTS_PER_MINUTE=1000000 \
    HF_HUB_OFFLINE=1 HF_HUB_CACHE="${HF_HUB_CACHE:-${tmp}/hf-cache}" \
    ${HARPOON_FUZZ_SERVICE_ENV:-} \
    "${binary}" >"${tmp}/service.log" 2>&1
) &
service_pid=$!

t0=${SECONDS}
until "${py}" - "${base}/health" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
do
  if ! kill -0 "${service_pid}" 2>/dev/null; then
    wait "${service_pid}" && rc=0 || rc=$?
    service_pid=""
    sed 's/^/fuzz:   /' "${tmp}/service.log" >&2
    die "the service exited with ${rc} before /health answered"
  fi
  [ $((SECONDS - t0)) -lt 60 ] || die "/health did not answer within 60s"
  sleep 0.2
done
say "service healthy after $((SECONDS - t0))s (pid ${service_pid})"

# ---------------------------------------------------------------- schemathesis
mkdir -p "${report_dir}"
# Only this script's own outputs: the directory may be one the caller named.
(cd "${report_dir}" && rm -rf cassette.yaml junit.xml openapi.json service.log .schemathesis .hypothesis)
st_args=(
  # From the saved copy, not the URL: loaded from a URL, schemathesis leaves
  # out the operation that serves the document (GET /openapi.json).
  run "${report_dir}/openapi.json" --url "${base}"
  --checks "${checks}"
  --mode all
  --max-examples "${max_examples}"
  --seed "${seed}"
  --workers 1
  --continue-on-failure
  --generation-database none
  --request-timeout 30
  --report vcr,junit
  --report-dir "${report_dir}"
  --report-vcr-path "${report_dir}/cassette.yaml"
  --report-junit-path "${report_dir}/junit.xml"
)
[ "${rate_limit}" = "none" ] || st_args+=(--rate-limit "${rate_limit}")
if [ -n "${HARPOON_FUZZ_KEY:-}" ]; then
  # Output sanitization (on) keeps the key out of the output and reports.
  st_args+=(--header "Authorization: Bearer ${HARPOON_FUZZ_KEY}")
  say "sending Authorization: Bearer *** on every request"
else
  # Without a secret to hide, sanitization only garbles reproductions: it
  # prints any field named like `*token*` (max_tokens!) as [Filtered].
  st_args+=(--output-sanitize false)
fi
# The document under test, kept with the reports.
"${py}" - "${base}/openapi.json" "${report_dir}/openapi.json" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
EOF

say "schemathesis $("${st}" --version | awk '{print $NF}'): seed ${seed}, ${max_examples} examples per operation, rate ${rate_limit}"
t1=${SECONDS}
set +e
# Run from the report directory: schemathesis keeps its crash cache (used by
# `st replay`) in ./.schemathesis, which must not land in the repository.
(cd "${report_dir}" && SCHEMATHESIS_HOOKS="${hooks}" timeout "${st_timeout}" "${st}" "${st_args[@]}")
st_rc=$?
set -e
say "schemathesis exited with ${st_rc} after $((SECONDS - t1))s"
[ "${st_rc}" -ne 124 ] || say "schemathesis ran past HARPOON_FUZZ_TIMEOUT=${st_timeout}s"

# ---------------------------------------------------------------- tally
set +e
"${py}" - "${report_dir}/cassette.yaml" "${report_dir}/openapi.json" "${min_requests}" <<'EOF'
import collections, json, re, sys, urllib.parse

import yaml

cassette_path, openapi_path, min_requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    with open(cassette_path, encoding="utf-8") as f:
        cassette = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
except FileNotFoundError:
    print("fuzz: no cassette was written; no requests to count", file=sys.stderr)
    sys.exit(1)
with open(openapi_path, encoding="utf-8") as f:
    paths = json.load(f).get("paths", {})

# Request paths back to the document's templates (`/v2/admin/tenants/{id}/keys`);
# literal templates win over ones with parameters.
templates = sorted(paths, key=lambda t: (t.count("{"), -len(t)))
patterns = [
    (t, re.compile("^" + re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(t)) + "$"))
    for t in templates
]

def template(path):
    for t, pattern in patterns:
        if pattern.match(path):
            return t
    return path

def documented(method, path, status):
    responses = (paths.get(path, {}).get(method.lower()) or {}).get("responses", {})
    return str(status) in responses or f"{str(status)[0]}XX" in {k.upper() for k in responses}

def error_code(body):
    try:
        return json.loads(body)["error"]["code"]
    except Exception:
        return ""

interactions = cassette.get("http_interactions") or []
by_op = collections.defaultdict(collections.Counter)
by_phase = collections.Counter()
server_errors = collections.Counter()
failed_checks = collections.Counter()
for item in interactions:
    request, response = item["request"], item.get("response") or {}
    method = request["method"]
    path = template(urllib.parse.urlsplit(request["uri"]).path)
    status = int((response.get("status") or {}).get("code") or 0)
    if method.lower() in paths.get(path, {}):
        by_op[f"{method} {path}"][status] += 1
    else:
        # Schemathesis' probes with methods the document does not list.
        by_op["(undocumented methods, all paths)"][status] += 1
    by_phase[(item.get("phase") or {}).get("name", "?")] += 1
    if status >= 500:
        body = (response.get("body") or {}).get("string") or ""
        kind = "documented" if documented(method, path, status) else "UNDOCUMENTED"
        server_errors[(f"{method} {path}", status, error_code(body), kind)] += 1
    for check in item.get("checks") or []:
        if check.get("status") == "FAILURE":
            failed_checks[(f"{method} {path}", check["name"])] += 1

total = len(interactions)
print()
print(f"fuzz: {total} requests made ({', '.join(f'{p}: {n}' for p, n in sorted(by_phase.items()))})")
for op in sorted(by_op):
    statuses = ", ".join(f"{s}x{n}" for s, n in sorted(by_op[op].items()))
    print(f"fuzz:   {op:<40} {sum(by_op[op].values()):>5}  [{statuses}]")
if server_errors:
    print("fuzz: 5xx responses (documented ones are allowed, not failures):")
    for (op, status, code, kind), n in sorted(server_errors.items()):
        print(f"fuzz:   {op:<40} {status} {code or '-'} x{n} ({kind})")
else:
    print("fuzz: no 5xx responses")
if failed_checks:
    print("fuzz: responses failing a check (details above, per unique failure):")
    for (op, check), n in sorted(failed_checks.items()):
        print(f"fuzz:   {op:<40} {check} x{n}")
if total < min_requests:
    print(f"fuzz: only {total} requests, fewer than HARPOON_FUZZ_MIN_REQUESTS={min_requests};"
          " raise HARPOON_FUZZ_MAX_EXAMPLES", file=sys.stderr)
    sys.exit(1)
EOF
tally_rc=$?
set -e
say "reports in ${report_dir#"${root}"/}/ (cassette.yaml, junit.xml, openapi.json, service.log)"

if ! kill -0 "${service_pid}" 2>/dev/null; then
  say "the service died during the run:"
  sed 's/^/fuzz:   /' "${tmp}/service.log" >&2 || true
  exit 1
fi
if [ "${st_rc}" -ne 0 ]; then
  say "FAILED: schemathesis found failures (exit ${st_rc})"
  exit "${st_rc}"
fi
[ "${tally_rc}" -eq 0 ] || { say "FAILED: see above"; exit 1; }
say "passed"
