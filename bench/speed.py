"""Where tenantguard stands, side by side, in one run on this machine (figures, not assertions).

    .venv/bin/python bench/speed.py [--quick] [--only ROWS]

ROWS, comma-separated (default all): echo, tenantguard, asyncio, kopf, tenants, rss, namespaces, cli.

1. POST /mutate of the medium review over TLS keep-alive, one process per target on its own port: echo
   (bench/echo_server.py, the ceiling of our stack), tenantguard (its default loop; on asyncio's own loop
   too when `serve` has a switch for it), kopf (bench/kopf_webhook.py, in the venv $KOPF_VENV). Load from
   ``wrk -t1 -c8 -d10s --latency`` and ``-c1``; every request has its own uid and annotation, so no answer
   cache serves it (one tenantguard row repeats the same bytes); CPU per request: the server's
   utime+stime (/proc/PID/stat) over the 8-connection run divided by its requests.
2. 1 vs 1,000 TenantPolicies; 3. 1 vs 3,000 namespaces in the view (/validate, quota); 4. `dry-run` over
   10,000 manifests vs a bare ``yaml.load_all``. See bench/README.md, "Speed".

Servers are alternated over rounds (order rotated each round) and medians reported (min-max beside), so
drift on a shared machine hits all alike. A failing row prints ``error: ...`` and the run goes on.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jsonpatch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_data import QUOTA_TENANT, cluster_state, manifests, policy_dir

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
KOPF_VENV = Path(os.environ.get("KOPF_VENV", "/tmp/kopf-venv"))
FIXTURE = next((p for p in (ROOT.parent / "shared/fixtures/admissionreviews/medium.json",
                            ROOT / "tests/fixtures/admissionreviews/medium.json") if p.exists()), None)
GROUPS = ("echo", "tenantguard", "asyncio", "kopf", "tenants", "rss", "namespaces", "cli")
COMMANDS: list[str] = []  # every distinct command line run, printed at the end
TMP = Path("/nonexistent")  # this run's temporary directory, printed as $TMP


@dataclass
class Plan:
    seconds: int = 10  # each measured wrk run
    rounds: int = 3
    warm: int = 3  # one warm-up wrk run per server
    starts: int = 3  # start-to-ready measurements per policy set
    manifests: int = 10_000


QUICK = Plan(seconds=2, rounds=1, warm=1, starts=1)


def log_command(cmd: list, env: dict[str, str] | None = None) -> None:
    line = " ".join([f"{k}={v}" for k, v in (env or {}).items()] + [str(c) for c in cmd])
    line = line.replace(str(TMP), "$TMP").replace(str(ROOT) + "/", "").replace(PY, "python")
    if line not in COMMANDS:
        COMMANDS.append(line)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    text = fmt.format(median(values))
    return text + (f" ({fmt.format(min(values))}-{fmt.format(max(values))})" if len(values) > 1 else "")


def ms(us: list[float]) -> str:
    return f"{median(us) / 1000:.2f} ms"


def table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n\n| " + " | ".join(headers) + " |\n|" + " --- |" * len(headers))
    for row in rows:
        print("| " + " | ".join(row + [""] * (len(headers) - len(row))) + " |")


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    try:
        import uvloop
        uv = f"uvloop {uvloop.__version__} installed"
    except ImportError:
        uv = "uvloop not installed"
    out = [f"nproc {os.cpu_count()}", model, f"Linux {platform.release()}",
           f"Python {platform.python_version()}", uv]
    wrk = shutil.which("wrk")
    out.append(subprocess.run([wrk, "-v"], capture_output=True, check=False, text=True).stdout.split(" [")[0]
               if wrk else "no wrk")
    kopf_py = KOPF_VENV / "bin/python"
    kopf = subprocess.run([kopf_py, "-c", "import kopf; print(kopf.__version__)"], capture_output=True,
                          check=False, text=True).stdout.strip() if kopf_py.exists() else ""
    return ", ".join([*out, f"kopf {kopf or 'not installed'}"])


def make_tls(out: Path) -> tuple[Path, Path, Path]:
    """One self-signed ECDSA pair for every target; (ca, cert, key)."""
    out.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", out / "tls.key", "-out", out / "tls.crt", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return out / "tls.crt", out / "tls.crt", out / "tls.key"


def review(namespace: str | None = None) -> bytes:
    body = json.loads(FIXTURE.read_bytes())
    if namespace:
        body["request"]["namespace"] = body["request"]["object"]["metadata"]["namespace"] = namespace
    return json.dumps(body).encode()


def request(port: int, ca: Path, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5,
                                       context=ssl.create_default_context(cafile=str(ca)))
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        rsp = conn.getresponse()
        return rsp.status, rsp.read()
    finally:
        conn.close()


# --- a server under test, and wrk ---------------------------------------------------------------------

@dataclass
class Server:
    name: str
    cmd: list[str]  # "{port}" is replaced by a free port
    ca: Path
    probe: tuple[str, str, bytes | None] = ("GET", "/readyz", None)  # ready once this answers 200
    env: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, Path] = field(default_factory=dict)  # run name -> a wrk script of its own
    proc: subprocess.Popen | None = None
    port: int = 0
    ready_s: float = float("nan")
    loop: str = "?"

    def start(self, timeout: float = 120) -> Server:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = [c.replace("{port}", str(self.port)) for c in self.cmd]
        env = {k: v.replace("{port}", str(self.port)) for k, v in self.env.items()}
        log_command([c.replace(str(self.port), "PORT") for c in cmd],
                    {k: v.replace(str(self.port), "PORT") for k, v in env.items()})
        self.log = TMP / (re.sub(r"\W+", "-", self.name) + f"-{self.port}.log")
        t0 = time.perf_counter()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.returncode}: {self.tail()}")
            try:
                if request(self.port, self.ca, *self.probe)[0] == 200:
                    self.ready_s = time.perf_counter() - t0
                    maps = Path(f"/proc/{self.proc.pid}/maps").read_text()  # loaded only to run on it
                    self.loop = "uvloop" if "/uvloop/" in maps else "asyncio"
                    return self
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"not ready after {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-3:])[-400:]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body}", "rb")); wrk.body = f:read("*a"); f:close()
local seq = 0
if {distinct} then  -- a new uid and annotation per request: no two reviews alike
  request = function()
    seq = seq + 1
    return wrk.format(nil, nil, nil, (wrk.body:gsub("@SEQ@", tostring(seq))))
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SPEED %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def lua_for(body: bytes, name: str, distinct: bool = True) -> Path:
    """$TMP/NAME.lua POSTing ``body``; ``distinct``: each request with its own uid and annotation
    ``bench.tenantguard.io/seq`` (what the API server sends for distinct pods), else the same bytes."""
    doc = json.loads(body)
    if distinct:
        doc["request"]["uid"] = "bench-@SEQ@"
        meta = doc["request"]["object"]["metadata"]
        meta.setdefault("annotations", {})["bench.tenantguard.io/seq"] = "@SEQ@"
    path = TMP / f"{name}.json"
    path.write_bytes(json.dumps(doc).encode())
    script = path.with_suffix(".lua")
    script.write_text(LUA.replace("{body}", str(path)).replace("{distinct}", str(distinct).lower()))
    return script


def wrk(server: Server, path: str, script: Path, conns: int, seconds: int) -> dict[str, float]:
    """One wrk run: req/s, p50/p99 (µs), the server's CPU µs per request."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(script),
           f"https://127.0.0.1:{server.port}{path}"]
    log_command([*cmd[:-1], f"https://127.0.0.1:PORT{path}"])
    cpu0 = server.cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, check=False, text=True, timeout=seconds + 60).stdout
    cpu = server.cpu_seconds() - cpu0
    m = re.search(r"^SPEED (.*)$", out, re.MULTILINE)
    if not m:
        raise RuntimeError(f"wrk: no result: {out[-300:]}")
    n, duration, p50, p99, *errors = (int(x) for x in m.group(1).split())
    if n == 0 or sum(errors) > n // 100:
        raise RuntimeError(f"wrk: {n} requests, errors connect/read/write/status/timeout {errors}: "
                           f"{server.tail()}")
    return {"rps": n / (duration / 1e6), "p50": p50, "p99": p99, "cpu_us": cpu / n * 1e6}


def alternate(servers: list[Server], plan: Plan, runs: dict[str, tuple[str, Path, int]]) -> dict[str, dict]:
    """A warm-up per server, then ``plan.rounds`` rounds of every run (name -> (path, script, conns)) on every
    server, the order of the servers rotated each round. Results per server and run (``"error"``: failed)."""
    out: dict[str, dict] = {s.name: {r: [] for r in runs} for s in servers}
    first, (path, script, _) = next(iter(runs.items()))
    for server in servers:
        try:
            wrk(server, path, server.scripts.get(first, script), 8, plan.warm)
        except Exception as exc:  # noqa: BLE001 - a failing row is printed, the others go on
            out[server.name]["error"] = str(exc)
    for r in range(plan.rounds if servers else 0):
        for server in servers[r % len(servers):] + servers[:r % len(servers)]:
            for name, (path, script, conns) in runs.items():
                if "error" in out[server.name]:
                    break
                try:
                    out[server.name][name].append(wrk(server, path, server.scripts.get(name, script), conns,
                                                      plan.seconds))
                except Exception as exc:  # noqa: BLE001
                    out[server.name]["error"] = str(exc)
    return out


def pick(results: list[dict[str, float]], key: str) -> list[float]:
    return [r[key] for r in results]


def serve_cmd(tls: tuple[Path, Path, Path], policies: str, *extra: str) -> list[str]:
    return [PY, "-m", "webhook", "serve", "--policies", policies, *extra, "--cert", str(tls[1]),
            "--key", str(tls[2]), "--host", "127.0.0.1", "--port", "{port}"]


def start_all(servers: list[Server], failed: dict[str, str]) -> list[Server]:
    started = []
    for server in servers:
        try:
            started.append(server.start())
        except Exception as exc:  # noqa: BLE001
            failed[server.name] = str(exc)
    return started


# --- 1. targets -------------------------------------------------------------------------------------

def loop_switch() -> list[str] | None:
    """`serve`'s flag for asyncio's own loop, if it has one (the benchmark adds none)."""
    text = subprocess.run([PY, "-m", "webhook", "serve", "--help"], capture_output=True, check=False,
                          text=True, cwd=ROOT).stdout
    if (m := re.search(r"(--[\w-]*loop[\w-]*)[ =]\{([^}]*)\}", text)) and "asyncio" in m.group(2).split(","):
        return [m.group(1), "asyncio"]
    return [m.group(1)] if (m := re.search(r"(--no-uvloop|--asyncio[\w-]*)\b", text)) else None


def group_targets(only: set[str], plan: Plan, tls: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls
    body = review()
    script, same = lua_for(body, "medium"), lua_for(body, "medium-same", distinct=False)
    notes, wanted = [], []
    if "echo" in only:
        wanted.append(Server("echo", [PY, "bench/echo_server.py", "--port", "{port}", "--cert", str(cert),
                                      "--key", str(key)], ca))
    if "tenantguard" in only:
        wanted.append(Server("tenantguard", serve_cmd(tls, "policies"), ca))
        wanted.append(Server("tenantguard: the same review repeated", serve_cmd(tls, "policies"), ca,
                             scripts={"c8": same, "c1": same}))
    if "asyncio" in only:
        if switch := loop_switch():
            wanted.append(Server("tenantguard on asyncio's loop", serve_cmd(tls, "policies", *switch), ca))
        else:
            notes.append("tenantguard on asyncio's own loop: skipped: `serve` has no switch for it (it runs "
                         "uvloop whenever uvloop is installed)")
    if "kopf" in only:  # not installed: "not measured" (python3 -m venv $KOPF_VENV; pip install kopf aiohttp)
        wanted.append(Server("kopf", [str(KOPF_VENV / "bin/kopf"), "run", "--standalone", "--all-namespaces",
                                      "bench/kopf_webhook.py"], ca, probe=("POST", "/mutate", body),
                             env={"KOPF_BENCH_PORT": "{port}", "KOPF_BENCH_CERT": str(cert),
                                  "KOPF_BENCH_KEY": str(key)}))
    failed: dict[str, str] = {}
    servers = start_all(wanted, failed)
    try:
        results = alternate(servers, plan, {"c8": ("/mutate", script, 8), "c1": ("/mutate", script, 1)})
    finally:
        for server in servers:
            server.stop()
    if "kopf" in failed:
        notes.append(f"kopf: not measured ({failed.pop('kopf')})")
    rows = [[name, "", f"error: {exc}"[:300]] for name, exc in failed.items()]
    ceiling = median(pick(results.get("echo", {}).get("c8", []), "rps"))
    for server in servers:
        res = results[server.name]
        if "error" in res:
            rows.append([server.name, server.loop, f"error: {res['error'][:300]}"])
            continue
        rps = pick(res["c8"], "rps")
        rows.append([server.name, server.loop, spread(rps),
                     f"{median(rps) / ceiling:.2f}" if ceiling > 0 else "n/a",
                     f"{median(pick(res['c8'], 'cpu_us')):.0f} µs", ms(pick(res["c1"], "p99"))])
    table(f"1. POST /mutate, medium review ({len(body):,} B; each request its own uid and annotation), TLS "
          f"keep-alive, 1 server process; median of {plan.rounds} alternated rounds of {plan.seconds} s",
          ["target", "loop", "req/s at 8 conns", "x ceiling", "CPU per request", "p99 at 1 conn"], rows)
    for note in notes:
        print(f"\n{note}")


# --- 2. tenants -------------------------------------------------------------------------------------

def load_policies_ms(path: Path, times: int) -> str:
    code = ("import sys, time, statistics\nfrom webhook.policy.loader import load_policies\nts = []\n"
            f"for _ in range({times}):\n    t = time.perf_counter(); load_policies([sys.argv[1]]); "
            "ts.append(time.perf_counter() - t)\nprint(statistics.median(ts))")
    log_command([PY, "-c", "'<median of load_policies([DIR])>'", path])
    run = subprocess.run([PY, "-c", code, str(path)], capture_output=True, check=False, text=True, cwd=ROOT,
                         timeout=900)
    return f"error: {run.stderr.strip()[-300:]}" if run.returncode else f"{float(run.stdout) * 1000:.0f} ms"


def group_tenants(only: set[str], plan: Plan, tls: tuple[Path, Path, Path]) -> None:
    load = "tenants" in only
    sets = {"1 tenant": policy_dir(TMP / "tenants-1", [999]),
            "1,000 tenants": policy_dir(TMP / "tenants-1000", list(range(1000)))}
    body = review("t999-shop")  # claimed by t999 (`t999-*`), the last of the 1,000
    ready: dict[str, list[float]] = {name: [] for name in sets}
    idle: dict[str, list[float]] = {name: [] for name in sets}
    failed: dict[str, str] = {}
    servers: list[Server] = []
    for r in range(plan.starts):  # alternated starts; the last ones stay up for the load
        for name, path in sets.items():
            if name in failed:
                continue
            server = Server(name, serve_cmd(tls, str(path)), tls[0])
            if not start_all([server], failed):
                continue
            time.sleep(0.2)
            ready[name].append(server.ready_s)
            idle[name].append(server.rss_mib())
            if r == plan.starts - 1 and load:
                servers.append(server)
            else:
                server.stop()
    try:
        results = alternate(servers, plan, {"c8": ("/mutate", lua_for(body, "medium-t999-shop"), 8)})
        after = {s.name: s.rss_mib() for s in servers if s.proc.poll() is None}
    finally:
        for server in servers:
            server.stop()
    rows = []
    for name, path in sets.items():
        if name in failed:
            rows.append([name, f"error: {failed[name][:300]}"])
            continue
        row = [name, f"{median(ready[name]):.2f} s", load_policies_ms(path, 3 if plan.rounds > 1 else 1),
               f"{median(idle[name]):.0f} MiB"]
        res = results.get(name, {})
        if load and "error" in res:
            row.append(f"error: {res['error'][:300]}")
        elif load:
            row += [spread(pick(res["c8"], "rps")), ms(pick(res["c8"], "p99")),
                    f"{after.get(name, 0):.0f} MiB"]
        rows.append(row)
    headers = ["policies", "start to /readyz 200", "load_policies alone", "RSS idle after start"]
    headers += ["req/s at 8 conns", "p99 at 8 conns", "RSS after the load"] if load else []
    table(f"2. 1 vs 1,000 TenantPolicies (+ cluster-baseline), POST /mutate of the medium review into "
          f"t999-shop; start and RSS: median of {plan.starts} starts"
          + (f"; load: {plan.rounds} alternated rounds of {plan.seconds} s" if load else ""), headers, rows)


# --- 3. namespaces ----------------------------------------------------------------------------------

def mutated(server: Server, body: bytes) -> bytes:
    """What the API server sends to /validate: the review with our /mutate patch applied."""
    patch = json.loads(request(server.port, server.ca, "POST", "/mutate", body)[1])["response"].get("patch")
    doc = json.loads(body)
    if patch:
        ops = json.loads(base64.b64decode(patch))
        doc["request"]["object"] = jsonpatch.apply_patch(doc["request"]["object"], ops)
    return json.dumps(doc).encode()


def group_namespaces(plan: Plan, tls: tuple[Path, Path, Path]) -> None:
    (TMP / "ns-policies").mkdir()
    (TMP / "ns-policies" / "q.yaml").write_text(yaml.safe_dump(QUOTA_TENANT))
    states = {"1 namespace (1,000 pods in q-0)": cluster_state(TMP / "state-1.yaml", 1),
              "3,000 namespaces (1 pod in each of q-0..q-999)": cluster_state(TMP / "state-3000.yaml", 3000)}
    failed: dict[str, str] = {}
    servers = start_all([Server(name, serve_cmd(tls, str(TMP / "ns-policies"), "--cluster-state", str(state)),
                                tls[0]) for name, state in states.items()], failed)
    try:
        body = mutated(servers[0], review("q-0")) if servers else b""
        answer = json.loads(request(servers[0].port, tls[0], "POST", "/validate", body)[1])["response"] \
            if servers else {}
        verdict = "allowed" if answer.get("allowed") else \
            f"denied: {answer.get('status', {}).get('message')}"[:120]
        results = alternate(servers, plan, {"c8": ("/validate", lua_for(body, "medium-q-0-mutated"), 8)})
    finally:
        for server in servers:
            server.stop()
    rows = [[name, f"error: {exc}"[:300]] for name, exc in failed.items()]
    for server in servers:
        res = results[server.name]
        rows.append([server.name, f"error: {res['error'][:300]}"] if "error" in res else
                    [server.name, spread(pick(res["c8"], "rps")), ms(pick(res["c8"], "p99"))])
    table(f"3. POST /validate of the medium review (after /mutate) into q-0: tenant q claims `q-*` with a "
          "quota "
          f"over all its namespaces; review {verdict}; {plan.rounds} alternated rounds of {plan.seconds} s",
          ["--cluster-state", "req/s at 8 conns", "p99 at 8 conns"], rows)


# --- 4. cli -----------------------------------------------------------------------------------------

BARE_YAML = ("import pathlib, sys, yaml\nn = 0\nfor p in sorted(pathlib.Path(sys.argv[1]).glob('*.yaml')):\n"
             "    with open(p) as f:\n"
             "        n += sum(1 for _ in yaml.load_all(f, Loader=yaml.CSafeLoader))\nprint(n)")


def group_cli(plan: Plan) -> None:
    folder = manifests(TMP / "manifests", plan.manifests)
    runs = {"tenantguard dry-run -o json": [PY, "-m", "webhook", "dry-run", "--policies", "policies",
                                            "-o", "json", str(folder)],
            "yaml.load_all(CSafeLoader)": [PY, "-c", BARE_YAML, str(folder)]}
    times: dict[str, list[float]] = {name: [] for name in runs}
    errors: dict[str, str] = {}
    for _ in range(plan.rounds):
        for name, cmd in runs.items():
            if name in errors:
                continue
            log_command([*cmd[:2], "'<sum of yaml.load_all(f, Loader=CSafeLoader) over DIR/*.yaml>'", cmd[-1]]
                        if cmd[1] == "-c" else cmd)
            t0 = time.perf_counter()
            run = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, timeout=1800)
            if run.returncode not in (0, 1) or not run.stdout:  # dry-run exits 1 when something is denied
                errors[name] = f"exit {run.returncode}: {run.stderr.decode(errors='replace').strip()[-300:]}"
            else:
                times[name].append(time.perf_counter() - t0)
    base = median(times["yaml.load_all(CSafeLoader)"])
    rows = [[name, f"error: {errors[name]}"] if name in errors else
            [name, spread(times[name], "{:.2f}") + " s", f"{median(times[name]) / base:.1f}"]
            for name in runs]
    table(f"4. CLI over {plan.manifests:,} manifests ({plan.manifests // 100} files of 100 Pods and "
          "Deployments), "
          f"wall time with the interpreter's start, median of {plan.rounds} alternated runs",
          ["command", "wall time", "x bare YAML"], rows)


# --- main -------------------------------------------------------------------------------------------

def main() -> int:
    global TMP
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 s runs, one round: a smoke run of a minute")
    parser.add_argument("--only", default=",".join(GROUPS), metavar="ROWS", help=",".join(GROUPS))
    args = parser.parse_args()
    only = {g.strip() for g in args.only.split(",") if g.strip()}
    if only - set(GROUPS):
        parser.error(f"--only: unknown {', '.join(sorted(only - set(GROUPS)))} "
                     f"(choose from {', '.join(GROUPS)})")
    plan = QUICK if args.quick else Plan()
    print(f"$ .venv/bin/python bench/speed.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; load average {os.getloadavg()[0]:.2f}")
    print(f"machine: {machine()}")
    print(f"review: {FIXTURE}")
    if not shutil.which("wrk") and only - {"cli"}:
        print("\nerror: wrk not found (apt-get install -y wrk): only the cli rows can run")
        only &= {"cli"}
    with tempfile.TemporaryDirectory(prefix="tenantguard-speed-") as name:
        TMP = Path(name)
        try:
            tls = make_tls(TMP / "tls")
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"\nerror: no certificate (openssl): {exc}: only the cli rows can run")
            only &= {"cli"}
        steps = [({"echo", "tenantguard", "asyncio", "kopf"}, lambda: group_targets(only, plan, tls)),
                 ({"tenants", "rss"}, lambda: group_tenants(only, plan, tls)),
                 ({"namespaces"}, lambda: group_namespaces(plan, tls)),
                 ({"cli"}, lambda: group_cli(plan))]
        for rows, step in steps:
            if rows & only:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - a failing table is printed, the others go on
                    print(f"\nerror: {', '.join(sorted(rows & only))}: {type(exc).__name__}: {exc}")
                sys.stdout.flush()
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    print("\ncommands (PORT: a free port per server; $TMP: this run's temporary directory):")
    for line in COMMANDS:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
