"""The GPU check of issue 18: every CUDA path of kaffe run once, one table out.

    benchmarks/gpu_check.sh                 # on a CUDA machine (under 8 minutes on one H100)
    benchmarks/gpu_check.sh --dry-run-cpu   # every row on the CPU, tiny sizes: checks the logic
    benchmarks/gpu_check.sh --rows caffe_train,keras   # a subset

Without CUDA (and without --dry-run-cpu) it prints what it would run and exits 0.
Each row: what, kaffe's figure, the peer's, their ratio (> 1: kaffe faster), the issue's
target and PASS / FAIL (SKIP: not possible here; INFO: no target; ERROR: the row crashed).
"""
import argparse
import importlib
import os
import sys
import time
import traceback

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from common import REF, SHARED, Plan, Row  # noqa: E402

# name -> (what it runs, rough seconds on one H100, "module:function" of benchmarks/gpu that
# returns its rows given (plan, seconds left); imported when the group runs)
GROUPS = {
    "pytest": ("pytest -m cuda over tests/ (the CUDA-marked tests)", 90, "pytest_rows:rows"),
    "caffe_train": ("kaffe train -gpu 0 vs CPU: LeNet 200 it (MNIST LMDB), CaffeNet 10 it b10 "
                    "(random HDF5 images): loss curves equal, it/s", 60, "caffe_rows:train_rows"),
    "caffe_time": ("kaffe time (caffe.set_mode_gpu) CaffeNet/GoogLeNet/VGG-16/ResNet-50 b10 vs "
                   "real Caffe's timing logs, Caffe+cuDNN K40 (CaffeNet) and hand PyTorch", 60,
                   "caffe_rows:timing_rows"),
    "keras": ("Keras fit seed convnet: eager, jit_compile, mixed_float16, both vs hand "
              "torch.compile + float16 AMP loop", 150, "keras_rows:rows"),
    "word2vec": ("word2vec sg/cbow device='cuda' vs gensim 2 threads (enwiki excerpt), quality "
                 "beside", 60, "text_rows:rows"),
    "ddp": ("2-process NCCL DDP fit vs 1 GPU (only with 2 GPUs)", 60, "ddp_rows:rows"),
}


def run_group(spec, plan, left):
    module, function = spec.split(":")
    return getattr(importlib.import_module(module), function)(plan, left)


def make_plan(dry):
    if dry:
        os.environ["KAFFE_DEVICE"] = "cpu"
        torch.set_num_threads(1)   # a smoke run on a shared box: one thread waits least
        return Plan(torch.device("cpu"), True, 0)
    if not torch.cuda.is_available():
        return None
    return Plan(torch.device("cuda", 0), False, torch.cuda.device_count())


def print_table(rows, plan, elapsed):
    print(f"\n## GPU check: {plan.label}, torch {torch.__version__}, "
          f"{plan.gpus} CUDA device(s), {elapsed:.0f} s\n")
    print("| what | kaffe | peer | ratio | target | result | note |")
    print("|---|---:|---:|---:|---|---|---|")
    for r in rows:
        note = " ".join(str(r.note).split()).replace("|", "/")
        print(f"| {r.what} | {r.kaffe} | {r.peer} | {r.ratio} | {r.target} | {r.status} | "
              f"{note} |")
    counts = {s: sum(r.status == s for r in rows) for s in ("PASS", "FAIL", "ERROR", "SKIP")}
    print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run-cpu", action="store_true",
                        default=os.environ.get("KAFFE_GPU_CHECK_DRY") == "1",
                        help="run every row on the CPU with tiny sizes (env "
                             "KAFFE_GPU_CHECK_DRY=1)")
    parser.add_argument("--rows", default=",".join(GROUPS),
                        help=f"comma-separated subset of {','.join(GROUPS)}")
    parser.add_argument("--budget", type=float, default=450,
                        help="seconds; groups not started by then are skipped (450)")
    args = parser.parse_args(argv)
    chosen = [g.strip() for g in args.rows.split(",") if g.strip()]
    unknown = [g for g in chosen if g not in GROUPS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(GROUPS)}")
    if not os.path.isdir(REF):
        sys.exit(f"gpu_check: the shared reference folder is missing: {REF} (expected "
                 f"../shared next to the repository, or set KAFFE_SHARED)")
    plan = make_plan(args.dry_run_cpu)
    if plan is None:
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False, torch "
              f"{torch.__version__}); nothing was measured. On a CUDA machine it runs:")
        for name in chosen:
            what, seconds, _ = GROUPS[name]
            print(f"  {name:12s} ~{seconds:3d} s  {what}")
        print(f"shared data: {SHARED}. Use --dry-run-cpu to run every row here on the CPU with "
              f"tiny sizes (a logic check; its figures mean nothing).")
        return 0
    start = time.perf_counter()
    rows = []
    for name in chosen:
        spec = GROUPS[name][2]
        left = args.budget - (time.perf_counter() - start)
        if left <= 0:
            rows.append(Row(name, status="SKIP", note=f"time budget of {args.budget:.0f} s spent"))
            continue
        group_start = time.perf_counter()
        try:
            got = run_group(spec, plan, left)
        except Exception as err:  # noqa: BLE001 - one broken row must not hide the others
            traceback.print_exc()
            got = [Row(name, status="ERROR", note=f"{type(err).__name__}: {err}"[:300])]
        finally:
            if plan.device.type == "cuda":
                torch.cuda.empty_cache()
        rows.extend(got)
        print(f"[gpu_check] {name}: {time.perf_counter() - group_start:.0f} s, "
              f"{', '.join(r.status for r in got)}", file=sys.stderr, flush=True)
    counts = print_table(rows, plan, time.perf_counter() - start)
    return 1 if counts["FAIL"] or counts["ERROR"] else 0


if __name__ == "__main__":
    sys.exit(main())
