"""What every row of the GPU check shares: the plan (device and sizes), the row record, paths to
../shared, and synchronised timing."""
import dataclasses
import os
import sys
import traceback
import statistics
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# ../shared next to the repository (the workspace layout), wherever the checkout lives
SHARED = os.path.normpath(os.environ.get("KAFFE_SHARED", os.path.join(REPO, os.pardir, "shared")))
REF = os.path.join(SHARED, "reference")
DATA = os.path.join(SHARED, "data")


@dataclasses.dataclass
class Plan:
    """Where the rows run and how big they are. ``dry``: every row on the CPU with tiny sizes
    (checks the script's logic; its figures mean nothing)."""
    device: torch.device
    dry: bool
    gpus: int

    @property
    def label(self):
        return "CPU dry run" if self.dry else torch.cuda.get_device_name(self.device)

    def size(self, real, dry):
        """``real`` on the GPU, ``dry`` in the CPU dry run."""
        return dry if self.dry else real


@dataclasses.dataclass
class Row:
    """One line of the table. ``status``: PASS, FAIL, SKIP, INFO (no target) or ERROR."""
    what: str
    kaffe: str = "-"
    peer: str = "-"
    ratio: str = "-"
    target: str = "-"
    status: str = "INFO"
    note: str = ""


def verdict(ok):
    return "PASS" if ok else "FAIL"


def ratio_text(value):
    return "-" if value is None else f"{value:.2f}x"


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, iterations, device, warmup=2):
    """Median wall milliseconds of ``fn()`` over ``iterations`` calls, the device synchronised
    around each call (CUDA work is asynchronous)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def seconds(fn):
    """(result of fn(), wall seconds)."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def guarded(what, make_rows):
    """``make_rows()``, or one ERROR row naming the exception: one net failing (a CUDA error,
    a missing feature) must not hide the next."""
    try:
        return make_rows()
    except Exception as err:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        return [Row(what, status="ERROR", note=f"{type(err).__name__}: {err}"[:300])]
