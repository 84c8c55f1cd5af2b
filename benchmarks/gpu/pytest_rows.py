"""The CUDA-marked tests (``pytest -m cuda``) in a child process; the row counts outcomes."""
import os
import re
import subprocess
import sys

from common import REPO, Row

_COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")


def rows(plan, left_s):
    timeout_s = max(30, int(left_s))
    env = dict(os.environ, KERAS_BACKEND="torch")
    env.pop("KAFFE_DEVICE", None)   # the tests choose their devices themselves
    targets = ["tests"]
    if plan.dry:   # the CUDA tests' own logic, on the CPU (they skip without the variable)
        env["KAFFE_CUDA_TESTS_ON_CPU"] = "1"
        targets = ["tests/test_cuda.py"]
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-p", "no:cacheprovider",
               *targets]
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return [Row("pytest -m cuda", status="FAIL", note=f"timed out after {timeout_s} s")]
    # the last line with counts: "4 passed, 6 deselected in 12.3s" (pyproject's addopts -q)
    summary = next((line for line in reversed(done.stdout.splitlines())
                    if _COUNTS.search(line)), "no pytest summary line")
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n)
              for n, kind in _COUNTS.findall(summary)}
    bad = counts.get("failed", 0) + counts.get("error", 0)
    ran = counts.get("passed", 0)
    status = "PASS" if done.returncode == 0 and bad == 0 and ran > 0 else "FAIL"
    note = summary if status == "PASS" else (summary + " | " + done.stdout[-400:]).strip()
    if plan.dry:
        note = "dry run: test_cuda.py on the CPU; " + note
    total = ran + bad + counts.get("skipped", 0)
    return [Row("pytest -m cuda", f"{ran}/{total} passed", "-", "-", "all pass", status,
                note.replace("\n", " "))]
