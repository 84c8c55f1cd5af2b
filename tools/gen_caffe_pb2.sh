#!/usr/bin/env bash
# Regenerate src/kaffe/caffe/proto/caffe_pb2.py from caffe.proto.
#
# Needs protoc's Python generator, which grpcio-tools ships (a developer tool, not a kaffe
# dependency):   pip install grpcio-tools
# The generated module checks at import time that the protobuf runtime is at least the version of
# the protoc that wrote it ("Protobuf Python Version" in its header); keep the `protobuf>=` bound
# in pyproject.toml equal to that version whenever this script is re-run with a newer grpcio-tools.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python}"
if [[ -z "${PYTHON:-}" && -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; fi
proto_dir="$here/src/kaffe/caffe/proto"
"$python" -m grpc_tools.protoc --version
"$python" -m grpc_tools.protoc -I"$proto_dir" --python_out="$proto_dir" "$proto_dir/caffe.proto"
grep -m1 "Protobuf Python Version" "$proto_dir/caffe_pb2.py"
