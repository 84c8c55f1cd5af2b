"""Data-parallel row: the seed convnet's ``fit`` in 2 processes over NCCL (one GPU each) vs one
process on one GPU, same per-GPU batch (benchmarks/scaling.py's worker and launcher)."""
import argparse
import os
import sys

from common import REPO, Row, ratio_text, verdict

sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import scaling  # noqa: E402


def rows(plan, left_s=None):
    if not plan.dry and plan.gpus < 2:
        return [Row("2-process NCCL DDP vs 1 GPU", target=">= 1.8x", status="SKIP",
                    note=f"{plan.gpus} CUDA device(s): needs 2")]
    per_process = plan.size(256, 64)
    args = argparse.Namespace(samples=plan.size(30000, 256), epochs=plan.size(3, 2))
    threads = plan.size(4, 1)
    if not plan.dry:   # each worker takes the GPU of its LOCAL_RANK (not one named device)
        os.environ.pop("KAFFE_DEVICE", None)
    one, _ = scaling.run_config(1, threads, per_process, args)
    two, _ = scaling.run_config(2, threads, 2 * per_process, args)
    ratio = two / one
    backend = "gloo, CPU" if plan.dry else "NCCL"
    return [Row(f"2-process DDP ({backend}) seed convnet, {per_process} per process",
                f"{two:,.0f} samples/s", f"1 process {one:,.0f}/s", ratio_text(ratio),
                ">= 1.8x", "INFO" if plan.dry else verdict(ratio >= 1.8),
                "global batch doubles with the processes (equal work per device)")]
