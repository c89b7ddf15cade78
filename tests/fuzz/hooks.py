"""Schemathesis hooks for scripts/fuzz-api.sh (loaded through SCHEMATHESIS_HOOKS).

`documented_server_errors_allowed` replaces the built-in `not_a_server_error`
check. The built-in one fails on every 5xx unless the status is listed in its
global `expected-statuses`, which cannot say "503 is fine for POST /run but not
for GET /health". Harpoon documents the 5xx each operation may answer (POST
/run, /v2/process and /v1/chat/completions answer 503 `engine_unavailable` when
no engine is configured; GET /ready answers 503 while draining), so this check
lets a 5xx pass only when *that operation* documents *that status* (an exact
code or a `5XX` range; `default` does not count), and hands every other response
to the built-in check, which then fails as usual. `response_schema_conformance`
still checks a documented 5xx's body against the documented error schema.

Allowed 5xx are not silent: scripts/fuzz-api.sh tallies every response from the
run's cassette and prints them per operation, status and error code.
"""

from __future__ import annotations

import schemathesis
from schemathesis.checks import not_a_server_error


def _documented_statuses(case) -> set[int]:
    raw = getattr(getattr(case.operation, "definition", None), "raw", None) or {}
    statuses: set[int] = set()
    for key in (raw.get("responses") or {}):
        key = str(key).upper()
        if key.isdigit():
            statuses.add(int(key))
        elif len(key) == 3 and key[0].isdigit() and key[1:] == "XX":
            base = int(key[0]) * 100
            statuses.update(range(base, base + 100))
    return statuses


@schemathesis.check
def documented_server_errors_allowed(ctx, response, case):
    """No 5xx, except one the operation documents."""
    if response.status_code >= 500 and response.status_code in _documented_statuses(case):
        return None
    return not_a_server_error(ctx, response, case)
