#!/usr/bin/env bash
# make gpu-check: what a user runs on a CUDA node (under 8 minutes) before trusting the harness there.
#   1. tests: the CUDA-marked tests (resume on CUDA, precision flags, deterministic repeats, packed runs, training
#      steps that never synchronize between reads) and the CPU tests of the numerics and of packed runs;
#   2. make bench's CUDA section (python -m benchmarks.run --cuda): WRN-16-4 at batch 128, step time and TFLOP/s at
#      fp32 / tf32 / bf16, eager and compiled; FCN-4-512 packed K = 1, 8, 32 against separate runs; the loop
#      reading the losses every step against every 32 steps (sync_every);
#      -> benchmarks/results-cuda.md (with the device's name).
# Without CUDA: the CPU part only (the CUDA tests skip, each with a line), one line saying so, exit 0.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    "$PY" -c 'import torch; print("gpu-check on", torch.cuda.get_device_name(0), "torch", torch.__version__)'
    cuda=1
else
    cuda=0
fi

tests=(tests/test_cuda.py tests/test_numerics.py tests/test_sync_free.py::test_cuda_steps_synchronize_only_when_read)
[ -f tests/test_ensemble.py ] && tests+=(tests/test_ensemble.py)
"$PY" -m pytest -q -rs -m "cuda or not slow" "${tests[@]}" || { echo "gpu-check: tests FAILED" >&2; exit 1; }

if [ "$cuda" = 0 ]; then
    echo "gpu-check: no CUDA device on this machine: ran the CPU part only (CUDA tests skipped, CUDA benchmarks not run)"
    exit 0
fi
"$PY" -m benchmarks.run --cuda || { echo "gpu-check: CUDA benchmarks FAILED" >&2; exit 1; }
echo "gpu-check: done in $(( $(date +%s) - start )) s -> benchmarks/results-cuda.md"
