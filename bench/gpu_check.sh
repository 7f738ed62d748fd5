#!/usr/bin/env bash
# The GPU checks of docs/BENCHMARKS.md section 6 in one go, for a GPU machine (JAX by default,
# which needs no TensorFlow):
#
#   bench/gpu_check.sh OUT_DIR [STUDY_SECONDS]
#
# 1. throughput of the paper's network through the project's training path (int8 targets a, b
#    and the accuracy label), fp32 and mixed bf16 (bench/bench_gpu_throughput.py; 256x256,
#    batch 64 unless THROUGHPUT_ARGS says else);
# 2. what the accuracy label costs the feed, 3 against 4 bytes a pixel: gathering a batch and
#    img/s of the same fit (bench/bench_label_feed.py at 256x256, batch 64 unless
#    LABEL_FEED_ARGS says else; about a minute; LABEL_FEED=0 skips it);
# 3. the optimizers study at the paper profile, stopped after STUDY_SECONDS (default 420) if it
#    has not finished; the same command resumes it from OUT_DIR/runs (a stopped trial is retried
#    from its last epoch checkpoint). STUDY_ARGS adds overrides; changing result-changing ones
#    between runs is refused (the study's fingerprint): use a new OUT_DIR or name=.
#
# Everything printed is also written under OUT_DIR (gpu.txt, throughput.txt, label_feed.txt,
# study.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: bench/gpu_check.sh OUT_DIR [STUDY_SECONDS]}
study_seconds=${2:-420}
mkdir -p "$out"
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null ||
    echo "no nvidia-smi: no NVIDIA GPU visible"; } | tee "$out/gpu.txt"

# shellcheck disable=SC2086  # the ARGS variables are word lists on purpose
python bench/bench_gpu_throughput.py ${THROUGHPUT_ARGS:-} | tee "$out/throughput.txt"

if [[ ${LABEL_FEED:-1} != 0 ]]; then
    # shellcheck disable=SC2086
    python bench/bench_label_feed.py \
        ${LABEL_FEED_ARGS:---image-size 256 --batch-size 64 --crops-per-photo 48 --rounds 5} |
        tee "$out/label_feed.txt"
fi

start=$(date +%s)
status=0
# On SIGINT the study closes the running trial (retried when resumed) and keeps finished ones.
# shellcheck disable=SC2086
timeout --signal=INT --kill-after=60 "$study_seconds" \
    python -m experiments.run study=optimizers profile=paper runs_dir="$out/runs" ${STUDY_ARGS:-} \
    2>&1 | tee "$out/study.txt" || status=$?
elapsed=$(($(date +%s) - start))
if [[ $status -eq 0 ]]; then
    echo "study finished: wall time ${elapsed} s" | tee -a "$out/study.txt"
elif [[ $status -eq 3 ]]; then  # experiments.common.errors.INCOMPLETE_EXIT
    echo "study not finished after ${elapsed} s: trials still run in other workers" |
        tee -a "$out/study.txt"
else
    echo "study stopped after ${elapsed} s (exit ${status}); rerun to resume" | tee -a "$out/study.txt"
fi
