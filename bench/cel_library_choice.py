"""The two CEL implementations for Python, side by side (figures, not assertions).

    python3 -m venv /tmp/cel-cpp && /tmp/cel-cpp/bin/pip install cel-expr-python
    python3 -m venv /tmp/cel-rust && /tmp/cel-rust/bin/pip install common-expression-language
    .venv/bin/python bench/cel_library_choice.py --cpp /tmp/cel-cpp/bin/python --rust /tmp/cel-rust/bin/python

For each interpreter: the installed size of the library and of what it pulled in (site-packages
minus pip and setuptools), and the evaluation time of five rules on the medium and large pods:
"cold" converts the pod into the library's values on every evaluation, "warm" reuses the
converted pod (cel-expr-python: one Activation; common-expression-language: one Context), which
is what the webhook does for the rules of one request. The rules are evaluated as compiled once.
Also probed: type checking at compile time, the ``.?`` optional syntax, ``cel.bind``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r'''
import json, sys, time, os, site
EXPRS = [
 "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
 "has(object.metadata.labels) && 'app' in object.metadata.labels",
 "object.spec.containers.all(c, has(c.resources) && has(c.resources.limits) && 'memory' in c.resources.limits)",
 "!has(object.spec.hostNetwork) || !object.spec.hostNetwork",
 "object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)",
]
pods = {s: json.loads(open(p).read())["request"]["object"] for s, p in json.loads(sys.argv[2]).items()}
lib = sys.argv[1]
def timeit(fn, n=1000):
    for _ in range(50): fn()
    t = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - t) / n * 1e6
out = {"lib": lib, "rows": {}}
if lib == "cpp":
    from cel_expr_python import cel
    config = cel.NewEnvConfigFromYaml('extensions:\n  - name: "optional"\n  - name: "bindings"\n')
    env = cel.NewEnv(config=config, variables={"object": cel.Type.DYN})
    progs = [env.compile(e) for e in EXPRS]
    for size, obj in pods.items():
        cold = sum(timeit(lambda p=p: p.eval(data={"object": obj}).value()) for p in progs) / len(progs)
        act = env.Activation({"object": obj})
        warm = sum(timeit(lambda p=p: p.eval(act).value()) for p in progs) / len(progs)
        out["rows"][size] = [cold, warm]
    def compiles(src):
        try: env.compile(src); return True
        except Exception: return False
    out["type_check"] = not compiles("'x' == 1")
    out["optional"] = compiles("object.?spec.orValue(1) != null")
    out["bind"] = compiles("cel.bind(x, 1, x) == 1")
    out["custom_functions"] = "cel.CelExtension / cel.FunctionDecl (declared and type-checked)"
else:
    import cel
    progs = [cel.compile(e) for e in EXPRS]
    for size, obj in pods.items():
        cold = sum(timeit(lambda p=p: p.execute({"object": obj})) for p in progs) / len(progs)
        ctx = cel.Context({"object": obj})
        warm = sum(timeit(lambda p=p: p.execute(ctx)) for p in progs) / len(progs)
        out["rows"][size] = [cold, warm]
    def compiles(src):
        try: cel.compile(src); return True
        except Exception: return False
    out["type_check"] = not compiles("'x' == 1")
    out["optional"] = compiles("object.?spec.orValue(1) != null")
    try:
        cel.evaluate("cel.bind(x, 1, x)", {}); out["bind"] = True
    except Exception:
        out["bind"] = False
    out["custom_functions"] = "Context.add_function (untyped Python callables)"
skip = {"pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth", "__pycache__"}
total = 0
for base in site.getsitepackages():
    for entry in os.listdir(base):
        if entry.split("-")[0] in skip or entry in skip:
            continue
        path = os.path.join(base, entry)
        for dirpath, _, files in os.walk(path) if os.path.isdir(path) else [("", [], [path])]:
            for f in files:
                total += os.path.getsize(os.path.join(dirpath, f))
out["installed_mb"] = total / 1e6
print(json.dumps(out))
'''


def _fixtures() -> dict[str, str]:
    out = {}
    for size in ("medium", "large"):
        for base in (ROOT.parent / "shared/fixtures/admissionreviews", ROOT / "tests/fixtures/admissionreviews"):
            if (base / f"{size}.json").exists():
                out[size] = str(base / f"{size}.json")
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpp", help="a python with cel-expr-python installed")
    parser.add_argument("--rust", help="a python with common-expression-language installed")
    args = parser.parse_args()
    fixtures = json.dumps(_fixtures())
    print(f"{'library':<40}{'installed':>10}  {'medium cold/warm us':>20}  {'large cold/warm us':>20}  "
          "type-check  .?     cel.bind")
    for label, lib, python in (("cel-expr-python (cel-cpp)", "cpp", args.cpp),
                               ("common-expression-language (cel-rust)", "rust", args.rust)):
        if not python:
            continue
        run = subprocess.run([python, "-c", PROBE, lib, fixtures], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            print(f"{label:<40} error: {run.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(run.stdout)
        rows = r["rows"]
        print(f"{label:<40}{r['installed_mb']:>8.1f}MB  {rows['medium'][0]:>9.1f} / {rows['medium'][1]:<8.1f}  "
              f"{rows['large'][0]:>9.1f} / {rows['large'][1]:<8.1f}  {str(r['type_check']):<10}  "
              f"{str(r['optional']):<7}{r['bind']}")
        print(f"{'':<40}custom functions: {r['custom_functions']}")
    if not (args.cpp or args.rust):
        sys.exit("give --cpp and/or --rust (see the docstring)")


if __name__ == "__main__":
    main()
