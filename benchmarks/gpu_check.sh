#!/usr/bin/env bash
# zoo's GPU check: one script, one CUDA GPU, under 8 minutes. Run it from anywhere:
#
#     bash benchmarks/gpu_check.sh            # writes benchmarks/results/gpu_check_cuda.json, gpu_decode_cuda.json,
#                                             # reducers_cuda.json; rebuild the docs to show them
#
# 1. preflight: exits 2 with the reason when torch sees no usable CUDA device (nothing else runs);
# 2. the CUDA tests: `pytest -m gpu` (attention backends sdpa / xformers against math, with masks)
#    and the GPU parity tests of FlexTok, TiTok / One-D-Piece and WavTokenizer in float32 and
#    bfloat16 (the committed parity fixtures, on the GPU); each measured difference is recorded;
# 3. SDPA vs xformers (vs math) decode speed: FlexTok d12_d12 decoding on the GPU, fp32 and bf16;
# 4. token reducers on the GPU in bf16 with sdpa and xformers (timm ViT-B, batch 64);
# 5. one summary record (gpu_check_cuda.json): the machine, the date, each test's outcome, each
#    measured parity difference with its bound, and every step's exit status and time.
#
# Each step has its own time limit (the sum is 7.5 minutes); a step that fails or runs out of
# time is recorded and the next one runs; the exit status is non-zero if any step failed.
# Environment: ZOO_GPU_CHECK_QUICK=1 shortens every step (a smoke run).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
RESULTS="${ZOO_BENCH_RESULTS:-$ROOT/benchmarks/results}"
WORK="$(mktemp -d -t zoo_gpu_check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export ZOO_BENCH_RESULTS="$RESULTS" ZOO_GPU_PARITY="$WORK/parity.jsonl" PYTHONUNBUFFERED=1
QUICK="${ZOO_GPU_CHECK_QUICK:-0}"

if ! "$PY" benchmarks/gpu_check.py preflight; then
    echo "gpu_check: stopped: this script needs a CUDA GPU (see the message above)." >&2
    exit 2
fi
mkdir -p "$RESULTS"

STEPS=()      # "name status seconds" per step, for the summary record
FAILED=0
step() {      # step NAME LIMIT_SECONDS COMMAND...
    local name="$1" limit="$2"; shift 2
    local t0=$SECONDS
    echo "== gpu_check: $name (limit ${limit}s)"
    timeout --signal=INT --kill-after=10 "$limit" "$@"
    local rc=$?
    local took=$((SECONDS - t0))
    [ "$rc" -eq 124 ] && echo "gpu_check: $name ran out of its ${limit}s" >&2
    # pytest exit 5 = no tests collected (e.g. -m gpu matched none): not a failure of the GPU
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then FAILED=1; fi
    STEPS+=("{\"step\": \"$name\", \"exit_status\": $rc, \"seconds\": $took}")
    echo "== gpu_check: $name: exit $rc after ${took}s"
}

if [ "$QUICK" = "1" ]; then
    SPEED_ARGS=(--batch 2 --steps 4 --reps 1 --seconds 30); RED_ARGS=(--batch 8 --reps 2 --models deit_small_patch16_224)
else
    SPEED_ARGS=(--batch 8 --steps 25 --reps 3 --seconds 120); RED_ARGS=(--batch 64 --reps 5 --models vit_base_patch16_224)
fi

step "CUDA tests (pytest -m gpu: attention backends, parity fp32 + bf16)" 240 \
    "$PY" -m pytest -q -p no:cacheprovider -m gpu --junitxml="$WORK/gpu_tests.xml" \
    tests/core/test_attention.py tests/plugins/flextok tests/plugins/titok tests/plugins/wavtokenizer
step "SDPA vs xformers decode speed (FlexTok)" 150 \
    "$PY" benchmarks/gpu_check.py speed "${SPEED_ARGS[@]}"
step "token reducers on the GPU (bf16, sdpa vs xformers)" 60 \
    "$PY" benchmarks/reducers.py --device cuda --dtype bf16 --backends sdpa xformers --r 8 16 "${RED_ARGS[@]}"

printf '%s\n' "${STEPS[@]}" | "$PY" -c 'import json, sys; print(json.dumps([json.loads(l) for l in sys.stdin if l.strip()]))' > "$WORK/steps.json"
step "summary record" 30 \
    "$PY" benchmarks/gpu_check.py summary --junit "$WORK/gpu_tests.xml" --parity "$ZOO_GPU_PARITY" --steps "$WORK/steps.json"

echo "gpu_check: records in $RESULTS (gpu_check_cuda.json, gpu_decode_cuda.json, reducers_cuda.json)"
exit "$FAILED"
