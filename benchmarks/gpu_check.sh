#!/usr/bin/env bash
# The GPU check of issue 18: pytest -m cuda, Caffe nets on the GPU vs the CPU and vs real Caffe,
# Keras fit eager / jit_compile / mixed_float16 vs a compiled AMP loop, word2vec on CUDA vs
# gensim, 2-GPU DDP; prints one table. Without CUDA it says so and exits 0.
#   benchmarks/gpu_check.sh [--dry-run-cpu] [--rows pytest,caffe_train,...] [--budget 450]
# (KAFFE_GPU_CHECK_DRY=1 is --dry-run-cpu.) Needs ../shared next to the repository.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
export KERAS_BACKEND=torch
# the dry run's pycaffe nets take the device path with the CPU standing in for the GPU
# (kaffe.caffe.device): the same blob/parameter bookkeeping a GPU run uses, checked on the CPU
for arg in "$@"; do [ "$arg" = "--dry-run-cpu" ] && export KAFFE_CAFFE_STAND_IN=1; done
[ "${KAFFE_GPU_CHECK_DRY:-0}" = "1" ] && export KAFFE_CAFFE_STAND_IN=1
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo"
exec "$python" "$repo/benchmarks/gpu/check.py" "$@"
