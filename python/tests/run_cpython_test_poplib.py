#!/usr/bin/env python3
"""CPython's own test_poplib, run against the standard library and against popwire.poplib.

For each interpreter under ~/.pyenv/versions (3.8 to 3.13, the newest patch of each), runs that
interpreter's Lib/test/test_poplib.py twice in fresh processes: once as is, once with
``sys.modules['poplib'] = popwire.poplib``. Fails unless every test that passes with the standard
library passes with popwire's. A missing interpreter is a failure: CI runs on an image that has
them all.

    python tests/run_cpython_test_poplib.py --wheel dist/popwire-*.whl   # the built wheel
    python tests/run_cpython_test_poplib.py --path python                # a source/develop tree

Prints one line per interpreter, then ``N passed, N failed`` over every (interpreter, test)
that passes with the standard library.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

MINORS = [(3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13)]

# Runs in the interpreter under test; prints {test id: outcome} as JSON on its last line.
CHILD = r"""
import json, sys, unittest
if sys.argv[1] == "popwire":
    import popwire.poplib
    sys.modules["poplib"] = popwire.poplib
import test.test_poplib as module
assert (module.poplib.__name__ == "popwire.poplib") == (sys.argv[1] == "popwire")

class Result(unittest.TextTestResult):
    outcomes = {}
    def addSuccess(self, test):
        super().addSuccess(test); self.outcomes[test.id()] = "pass"
    def addFailure(self, test, err):
        super().addFailure(test, err); self.outcomes[test.id()] = "fail"
    def addError(self, test, err):
        super().addError(test, err); self.outcomes[test.id()] = "error"
    def addSkip(self, test, reason):
        super().addSkip(test, reason); self.outcomes[test.id()] = "skip"
    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err); self.outcomes[test.id()] = "xfail"
    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test); self.outcomes[test.id()] = "xpass"

suite = unittest.defaultTestLoader.loadTestsFromModule(module)
runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=1, resultclass=Result)
runner.run(suite)
print("\nOUTCOMES " + json.dumps(Result.outcomes))
"""


def pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))


def find_interpreter(minor: Tuple[int, int]) -> Optional[Path]:
    """The newest CPython X.Y.Z under pyenv (final releases only) with its test_poplib."""
    found = []
    pattern = re.compile(r"^%d\.%d\.(\d+)$" % minor)
    for entry in (pyenv_root() / "versions").glob("%d.%d.*" % minor):
        m = pattern.match(entry.name)
        exe = entry / "bin" / ("python%d.%d" % minor)
        lib = entry / "lib" / ("python%d.%d" % minor) / "test" / "test_poplib.py"
        if m and exe.exists() and lib.exists():
            found.append((int(m.group(1)), exe))
    return max(found)[1] if found else None


def run(exe: Path, mode: str, path: Path, log: Path) -> Dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(path), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONHOME", None)
    try:
        proc = subprocess.run(
            [str(exe), "-X", "faulthandler", "-c", CHILD, mode],
            env=env,
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired as exc:
        log.write_text(f"timed out after {exc.timeout} s\n{exc.stdout or ''}\n{exc.stderr or ''}")
        return {}
    log.write_text(proc.stdout + "\n" + proc.stderr + f"\nexit {proc.returncode}\n")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("OUTCOMES "):
            return json.loads(line[len("OUTCOMES ") :])  # type: ignore[no-any-return]
    return {}  # the interpreter crashed: no test counts as passed


def count(outcomes: Dict[str, str], kind: str) -> int:
    return sum(1 for v in outcomes.values() if v == kind)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--wheel", type=Path, help="a built popwire wheel (abi3) to test")
    where.add_argument("--path", type=Path, help="a directory holding the popwire package")
    parser.add_argument("--logs", type=Path, default=None, help="keep each run's output here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pw-test-poplib-"))
    if args.wheel is not None:
        path = work / "site"
        with zipfile.ZipFile(args.wheel) as wheel:  # an abi3 wheel: one unpack serves every interpreter
            wheel.extractall(path)
    else:
        path = args.path.resolve()
    logs = args.logs or work
    logs.mkdir(parents=True, exist_ok=True)

    # Two processes at a time (each test run mostly waits on its loopback servers).
    found = {minor: find_interpreter(minor) for minor in MINORS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            (minor, mode): pool.submit(run, exe, mode, path, logs / f"{exe.parent.parent.name}-{mode}.log")
            for minor, exe in found.items()
            if exe is not None
            for mode in ("stdlib", "popwire")
        }

    passed = failed = 0
    for minor in MINORS:
        name = "%d.%d" % minor
        exe = found[minor]
        if exe is None:
            print(f"CPython {name}: MISSING: no {pyenv_root()}/versions/{name}.* with Lib/test/test_poplib.py; "
                  "install it (pyenv install {name}) - counted as a failure", flush=True)
            failed += 1
            continue
        version = exe.parent.parent.name
        stdlib = futures[(minor, "stdlib")].result()
        popwire = futures[(minor, "popwire")].result()
        wanted = sorted(t for t, v in stdlib.items() if v == "pass")
        lost: List[str] = [t for t in wanted if popwire.get(t) != "pass"]
        ok = bool(wanted) and not lost
        passed += len(wanted) - len(lost)
        failed += len(lost) + (0 if wanted else 1)
        print(
            f"CPython {version}: stdlib {count(stdlib, 'pass')}/{len(stdlib)} passed"
            f" ({count(stdlib, 'skip')} skipped), popwire.poplib {count(popwire, 'pass')}/{len(popwire)} passed"
            f" ({count(popwire, 'skip')} skipped): {'ok' if ok else 'FAILED'}",
            flush=True,
        )
        if not wanted:
            print(f"  no test passed with the standard library: see {logs}/{version}-stdlib.log")
        for test in lost:
            print(f"  lost: {test} ({popwire.get(test, 'not run')}); see {logs}/{version}-popwire.log")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
