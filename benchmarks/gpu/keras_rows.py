"""Keras rows: ``fit`` of the seed convnet eager, ``jit_compile=True``, ``mixed_float16`` and both,
against a hand-written PyTorch loop compiled with ``torch.compile`` under float16 AMP with a
GradScaler (benchmarks/scaling.py's peers, reused)."""
import contextlib
import functools
import os
import sys

import torch

from common import REPO, Row, ratio_text, verdict

sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import fit_throughput as ft  # noqa: E402
import scaling  # noqa: E402


@contextlib.contextmanager
def quick_compile(dry):
    """Dry run: ``torch.compile`` with backend='eager' (dynamo traces the step, no code is
    generated), so that compiling does not dominate a CPU smoke run."""
    if not dry:
        yield
        return
    original = torch.compile
    torch.compile = functools.partial(original, backend="eager")
    try:
        yield
    finally:
        torch.compile = original


def rows(plan, left_s=None):
    samples, batch, epochs = plan.size(30000, 256), plan.size(256, 64), plan.size(3, 2)
    os.environ["KAFFE_DEVICE"] = str(plan.device)
    x, y, labels = ft.load(samples, conv=True)
    # float16 on the GPU; the CPU dry run uses bfloat16 (CPU float16 convolutions are a slow
    # reference path: minutes for this net), so the same code paths run quickly
    low, policy = (torch.bfloat16, "mixed_bfloat16") if plan.dry else \
        (torch.float16, "mixed_float16")
    with quick_compile(plan.dry):
        hand = scaling.hand_loop(x, labels, epochs, plan.device, True, low, batch)
        configs = [("eager", False, "float32"), ("jit_compile=True", True, "float32"),
                   ("mixed_float16", False, policy), ("jit_compile + mixed_float16", True, policy)]
        rates = {name: scaling.kaffe_fit(x, y, epochs, jit, mode, batch)
                 for name, jit, mode in configs}
    what = f"Keras fit seed convnet b{batch}, {samples} samples"
    peer = f"hand compiled AMP {hand:,.0f}/s"
    out = []
    for name, rate in rates.items():
        best = name == "jit_compile + mixed_float16"
        ratio = rate / hand
        status = "INFO" if plan.dry or not best else verdict(ratio >= 0.9)
        out.append(Row(f"{what}: {name}", f"{rate:,.0f} samples/s", peer, ratio_text(ratio),
                       ">= 0.9x" if best else "-", status,
                       _dry_note(name) if plan.dry else ""))
    return out


def _dry_note(name):
    notes = ["torch.compile backend='eager'" if "jit" in name else "",
             "bfloat16 for float16" if "mixed" in name else ""]
    return "dry run: " + ", ".join(n for n in notes if n) if any(notes) else ""
