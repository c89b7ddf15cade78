"""Every `curl` line of the README aimed at `make run` (localhost:8080) does
what the README says, against the binary `make run` builds.

A command is a line starting with `curl `; the next line, `# → …`, is the
promise. A JSON promise must be a subset of the JSON answer (objects by key,
arrays element by element and of the same length); any other promise must
appear in the output.

The one difference from `make run` is where the weights come from: the hub is
out of reach here, so both models are local directories (the tiny
random-weight test models), as the README says `models.NAME.repo` may be.
"""

import json
import re
import subprocess

from conftest import MODELS, ROOT, running_service


def examples():
    lines = (ROOT / "README.md").read_text().splitlines()
    found = []
    for command, promise in zip(lines, lines[1:]):
        if command.startswith("curl ") and "localhost:8080" in command:
            assert promise.startswith("# → "), f"no `# → ` promise after: {command}"
            found.append((command, promise.removeprefix("# → ")))
    return found


def is_subset(expected, actual):
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and is_subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(is_subset(e, a) for e, a in zip(expected, actual)))
    return expected == actual


def test_readme_curl_lines_do_what_the_readme_says():
    found = examples()
    assert len(found) >= 10, "the README shows its curl examples"
    assert any("/v1/chat/completions" in c and '"Hello"' in c for c, _ in found), \
        "the README shows a chat answer"
    env = {
        "HARPOON__MODELS__GEMMA__REPO": str(MODELS / "gemma3_text"),
        "HARPOON__MODELS__QWEN__REPO": str(MODELS / "qwen3"),
    }
    with running_service(env) as base:
        port = re.search(r":(\d+)$", base).group(1)
        for command, promise in found:
            command = command.replace("localhost:8080", f"127.0.0.1:{port}")
            out = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                                 timeout=120)
            assert out.returncode == 0, f"{command} failed: {out}"
            try:
                expected = json.loads(promise)
            except json.JSONDecodeError:
                assert promise in out.stdout, f"{command}\n promised {promise}\n got {out.stdout}"
                continue
            actual = json.loads(out.stdout)
            assert is_subset(expected, actual), \
                f"{command}\n promised {expected}\n got {actual}"
