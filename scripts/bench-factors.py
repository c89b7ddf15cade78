#!/usr/bin/env python3
"""One factor at a time against one Harpoon binary, interleaved round by round.

Sides are Harpoon instances that differ in one setting each (plus nginx
direct), all started at once and driven one at a time by wrk, in turn, for
`rounds` rounds. Per round and side it records: req/s, p50, p99, Harpoon's
CPU ticks (process, and per thread name), the upstream nginx's ticks, wrk's
CPU, and the machine's steal and total ticks (/proc/stat).

usage: scripts/bench-factors.py BIN ROUNDS SECS CONNS RATE|closed SIDE... (see SIDES)
e.g.   scripts/bench-factors.py target/release/service 4 5 32 closed base up_auto tokenizer log_info outside nginx_w1 nginx_auto
The last line gives each side's CPU per request over `base`'s, as the median
of the per-round ratios (the × figures of docs/performance.md, "Session 6").
"""
import json, os, re, socket, statistics, subprocess, sys, tempfile, time, shutil

BIN, ROUNDS, SECS, CONNS, RATE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
WANT = sys.argv[6:]
ALT_BIN = os.environ.get("ALT_BIN")
TK = os.sysconf("SC_CLK_TCK")
# The tiny test model made by `make setup`.
TOKENIZER_REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "test-models", "gemma3_text")

work = tempfile.mkdtemp(prefix="factors.")
procs = []


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


BODY = '{"id":"chatcmpl-static","object":"chat.completion","created":0,"model":"static","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}'


def nginx(name, workers):
    d = os.path.join(work, name); os.makedirs(d)
    port = free_port()
    open(f"{d}/nginx.conf", "w").write(f"""worker_processes {workers};
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d};
  server {{
    listen 127.0.0.1:{port};
    location /v1/chat/completions {{
      default_type application/json;
      return 200 '{BODY}';
    }}
  }}
}}
""")
    p = subprocess.Popen(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-g", "daemon off;"])
    procs.append(p)
    return {"port": port, "pid": p.pid}


ups = {"w1": nginx("up1", 1), "wauto": nginx("upauto", "auto")}


def harpoon(name, upstream="w1", env=None, binary=None):
    port = free_port()
    e = dict(os.environ)
    e.update({
        "RUST_LOG": "warn", "SERVICE_PORT": str(port),
        "HARPOON__STORAGE__DATA_DIR": f"{work}/data-{name}",
        "HARPOON__QUOTAS__REQUESTS_PER_MINUTE": "100000000",
        "HARPOON__QUOTAS__MAX_CONCURRENT": "100000",
        "HARPOON__MODELS__GEMMA__ENGINE": "openai",
        "HARPOON__MODELS__GEMMA__BASE_URL": f"http://127.0.0.1:{ups[upstream]['port']}/v1",
    })
    e.update(env or {})
    log = open(f"{work}/{name}.log", "w")
    p = subprocess.Popen([binary or BIN], env=e, stdout=log, stderr=log)
    procs.append(p)
    return {"port": port, "pid": p.pid, "upstream": upstream}


SIDES = {
    # the bench's configuration
    "base": lambda: harpoon("base"),
    # the previous build, same configuration (ALT_BIN)
    "alt": lambda: harpoon("alt", binary=ALT_BIN),
    # upstream nginx with worker_processes auto (2 here)
    "up_auto": lambda: harpoon("up_auto", upstream="wauto"),
    # the model's tokenizer.json at hand (the tiny test model's; BPE)
    "tokenizer": lambda: harpoon("tokenizer", env={"HARPOON__MODELS__GEMMA__REPO": TOKENIZER_REPO}),
    # the default log level (info: one line per request)
    "log_info": lambda: harpoon("log_info", env={"RUST_LOG": "info"}),
    # one tokio worker thread instead of one per core
    "one_worker": lambda: harpoon("one_worker", env={"TOKIO_WORKER_THREADS": "1"}),
    # all of the outside check's differences at once
    "outside": lambda: harpoon("outside", upstream="wauto",
                               env={"RUST_LOG": "info", "HARPOON__MODELS__GEMMA__REPO": TOKENIZER_REPO}),
    "nginx_w1": lambda: {"port": ups["w1"]["port"], "pid": None},
    "nginx_auto": lambda: {"port": ups["wauto"]["port"], "pid": None},
}


def ticks(pid):
    return sum(int(x) for x in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[11:13])


def group_ticks(pid):
    """CPU ticks by thread name (live threads)."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
            v = sum(int(x) for x in open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()[11:13])
        except OSError:
            continue
        comm = re.sub(r"[-0-9]+$", "", comm)
        out[comm] = out.get(comm, 0) + v
    return out


def tree_ticks(pid):
    """nginx master + workers."""
    total = ticks(pid)
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(st[1]) == pid:
                total += int(st[11]) + int(st[12])
    return total


def machine():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f[:8]), f[7]  # total (without guest), steal


def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f


lua = f"{work}/post.lua"
with open(lua, "w") as f:
    f.write('''wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"auto","messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":16}'
''')
    if RATE != "closed":
        mean_ms = round(CONNS * 1000 / float(RATE), 3)
        f.write(f'''local counter = 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init(args) math.randomseed(seed * 7919) end
function delay() return -math.log(1 - math.random()) * {mean_ms} end
''')

try:
    sides = {s: SIDES[s]() for s in WANT}
    import urllib.request
    for _ in range(200):
        try:
            for s, v in sides.items():
                if v["pid"]:
                    urllib.request.urlopen(f"http://127.0.0.1:{v['port']}/health", timeout=1).read()
            break
        except Exception:
            time.sleep(0.1)
    for s, v in sides.items():
        if v["pid"]:
            r = urllib.request.Request(f"http://127.0.0.1:{v['port']}/v1/chat/completions",
                                       data=open(lua).read().split("wrk.body = '")[1].split("'\n")[0].encode(),
                                       headers={"content-type": "application/json"})
            assert b"Paris is the capital" in urllib.request.urlopen(r).read(), s
            v["start_ticks"] = ticks(v["pid"])
            print(f"# {s}: {v['start_ticks'] * 1000 // TK} ms of CPU from start to ready (+1 request)")
    print(f"# {time.strftime('%H:%M:%S')} load={RATE} conns={CONNS} secs={SECS} rounds={ROUNDS} bin={BIN}", flush=True)
    rows = []
    t0 = time.time()
    for rnd in range(ROUNDS):
        for s, v in sides.items():
            pid = v["pid"]
            b_tot, b_st = machine()
            if pid:
                b_t, b_g = ticks(pid), group_ticks(pid)
                b_u = tree_ticks(ups[v["upstream"]]["pid"])
            w = subprocess.Popen(["wrk", "-t2", f"-c{CONNS}", f"-d{SECS}s", "--latency", "-s", lua,
                                  f"http://127.0.0.1:{v['port']}/v1/chat/completions"],
                                 stdout=subprocess.PIPE, text=True)
            out = w.stdout.read()
            _, _, ru = os.wait4(w.pid, 0)
            a_tot, a_st = machine()
            n = int(re.search(r"(\d+) requests in", out).group(1))
            if "Non-2xx" in out:
                print(out); raise SystemExit(f"{s} answered errors")
            row = {"side": s, "round": rnd, "n": n,
                   "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                   "p50": ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
                   "p99": ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
                   "steal_pct": 100 * (a_st - b_st) / max(1, a_tot - b_tot),
                   "wrk_us": (ru.ru_utime + ru.ru_stime) * 1e6 / n}
            if pid:
                a_t, a_g = ticks(pid), group_ticks(pid)
                row["cpu_us"] = (a_t - b_t) * 1e6 / TK / n
                row["threads_us"] = {k: (a_g.get(k, 0) - b_g.get(k, 0)) * 1e6 / TK / n for k in a_g}
                row["upstream_us"] = (tree_ticks(ups[v["upstream"]]["pid"]) - b_u) * 1e6 / TK / n
                v["n"] = v.get("n", 0) + n
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"# finished {time.strftime('%H:%M:%S')}, {time.time() - t0:.0f} s")
    print("side  req/s  p50_ms  p99_ms  cpu_us(median)  cpu_us(whole run)  steal%  upstream_us  wrk_us  threads_us")
    for s, v in sides.items():
        r = [x for x in rows if x["side"] == s]
        med = lambda k: statistics.median(x[k] for x in r)
        line = f"{s:10s} {med('rps'):9,.0f} {med('p50'):.3f} {med('p99'):.3f}"
        if v["pid"]:
            whole = (ticks(v["pid"]) - v["start_ticks"]) * 1e6 / TK / v["n"]
            th = {k: round(statistics.median(x["threads_us"].get(k, 0) for x in r), 1) for k in r[0]["threads_us"]}
            line += f"  {med('cpu_us'):6.1f}  {whole:6.1f}  {med('steal_pct'):4.1f}  {med('upstream_us'):5.1f}  {med('wrk_us'):5.1f}  {json.dumps(th)}"
        else:
            line += f"  -  -  {med('steal_pct'):4.1f}  -  {med('wrk_us'):5.1f}"
        print(line)
    base = {x["round"]: x["cpu_us"] for x in rows if x["side"] == "base" and "cpu_us" in x}
    ratios = {s: statistics.median(x["cpu_us"] / base[x["round"]] for x in rows
                                   if x["side"] == s and "cpu_us" in x and x["round"] in base)
              for s, v in sides.items() if v["pid"] and s != "base"}
    if base and ratios:
        print("CPU per request over base (median of per-round ratios): "
              + ", ".join(f"{s} x{r:.2f}" for s, r in ratios.items()))
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
    shutil.rmtree(work, ignore_errors=True)
