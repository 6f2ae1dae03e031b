#!/usr/bin/env bash
# The prepared GPU check of issue #28: the PHOENIX frame model (configs/frame-phoenix.yaml) at full
# size with random weights, 30 training steps on a SynthSign corpus and 125 frames rendered, then
# the same with the temporal adapter; prints one table (seconds per step, seconds, peak memory).
# Sized for about 6 minutes on one H100 (estimate: docs/frame_model.md). Every argument goes to
# benchmarks/gpu_check.py (--out DIR, --data DIR, --steps N, --frames N, --num-steps N, --tiny);
# --tiny is the CPU run the test suite makes (tests/benchmarks/test_gpu_check.py).
#
#   bash benchmarks/gpu_check.sh                     # work folder /tmp/signgen-gpu-check
#   bash benchmarks/gpu_check.sh --out DIR --steps 10
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
case " $* " in
  *" --out "*) exec "$PYTHON" benchmarks/gpu_check.py "$@" ;;
  *) exec "$PYTHON" benchmarks/gpu_check.py --out /tmp/signgen-gpu-check "$@" ;;
esac
