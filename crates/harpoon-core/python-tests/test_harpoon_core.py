"""The harpoon_core Python module, built with maturin into the project venv."""

import threading
import time

import harpoon_core

CLEAN = "fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n"
DIRTY = "fn add(a: u32, b: u32) -> u32 {   \n    dbg!(a);\n    dbg!(b);\n    dbg!(a);\n    a.wrapping_add(b)\n}\n"
LEAKY = 'fn key() -> &\'static str {\n    "AKIAIOSFODNN7EXAMPLE"\n}\n'


def test_readme_example():
    fragments = [
        {"path": "src/a.rs", "idx": 0, "lines": "1-3", "body": CLEAN},
        {"path": "src/b.rs", "idx": 1, "lines": "10-16", "body": DIRTY},
        {"path": "src/c.rs", "idx": 2, "lines": "20-22", "body": LEAKY},
        {"path": "src/d.rs", "idx": 3, "lines": "1-3", "body": CLEAN},
    ]
    engine = harpoon_core.HarpoonEngine()
    cycle = engine.envelope_cycle(fragments, hygiene_threshold=0.9, max_iterations=10)
    absorbed = cycle.absorbed
    assert [a["fragment"]["path"] for a in absorbed] == ["src/a.rs", "src/b.rs"]
    assert absorbed[1]["refinements"] == 1 and "dbg!" not in absorbed[1]["fragment"]["body"]
    assert cycle.hygiene_score == 1.0
    assert [p["fragment"]["path"] for p in cycle.pending] == ["src/c.rs"]
    assert cycle.pending[0]["hygiene"]["score"] < 0.5
    assert [d["fragment"]["path"] for d in cycle.duplicates] == ["src/d.rs"]
    assert len(cycle.chain) == 2 and len(cycle.envelope_hash) == 64
    assert cycle.iterations >= 1
    assert cycle.verify()
    kinds = {e["kind"] for e in cycle.events}
    assert {"absorbed", "refined", "rejected"} <= kinds
    assert cycle.to_dict()["envelope_hash"] == cycle.envelope_hash


def test_strings_and_defaults():
    cycle = harpoon_core.HarpoonEngine().envelope_cycle(["def f(x):\n    return x\n"])
    assert cycle.absorbed[0]["hygiene"]["language"] == "python"


def test_fragment_hash_normalises_line_endings():
    assert harpoon_core.fragment_hash("a\r\nb") == harpoon_core.fragment_hash("a\nb")
    assert harpoon_core.fragment_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_score_reports_every_signal():
    report = harpoon_core.HarpoonEngine().score(LEAKY, path="k.rs")
    names = [s["name"] for s in report["signals"]]
    assert "hard_coded_secrets" in names and len(names) == 12
    secret = next(s for s in report["signals"] if s["name"] == "hard_coded_secrets")
    assert secret["contribution"] == 0.7 and "AKIA" not in secret["detail"]


def test_bad_input_raises():
    engine = harpoon_core.HarpoonEngine()
    for bad in ([{"path": "x.rs"}], [42]):
        try:
            engine.envelope_cycle(bad)
        except (TypeError, ValueError):
            pass
        else:
            raise AssertionError(f"{bad!r} was accepted")
    try:
        engine.envelope_cycle([CLEAN], hygiene_threshold=2.0)
    except ValueError:
        pass
    else:
        raise AssertionError("threshold 2.0 was accepted")


def test_releases_the_gil():
    """A Python thread keeps running while the engine scores."""
    body = "\n".join(f"fn f{i}(x: u32) -> u32 {{ if x > {i} {{ x }} else {{ {i} }} }}" for i in range(4000))
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    try:
        start = time.perf_counter()
        harpoon_core.HarpoonEngine().envelope_cycle([{"path": f"f{i}.rs", "body": body + f"\n// {i}\n"} for i in range(4)])
        elapsed = time.perf_counter() - start
    finally:
        done.set()
        t.join()
    during = [x for x in ticks if start <= x <= start + elapsed]
    assert elapsed > 0.02, "the work is too short to tell"
    assert len(during) >= 3, f"only {len(during)} ticks in {elapsed:.3f} s: the GIL was held"
