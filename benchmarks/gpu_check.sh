#!/usr/bin/env bash
# GPU check (issue 20): everything a GPU user needs, measured in one short run.
#
#   bash benchmarks/gpu_check.sh [OUTDIR] [--dry-run]
#
# OUTDIR defaults to $OUT, else ./gpu_check_out. Writes under OUTDIR:
#   gpu_check.json      every figure, the device, torch and CUDA versions, date, command
#   profile_top15.txt   torch.profiler: the top 15 ops of 20 training steps
#   pytest_gpu.xml      junit of `pytest -m gpu tests/`
#   sections/*.json     each section's figures (merged into gpu_check.json)
#   logs/*.log          each section's output; check.log: the run's own log
#
# Sections (a) pytest -m gpu, (b) step, (c) sampling, (d) memory, (e) profile run one after the
# other, each in its own process with its own time limit; one failing does not stop the others,
# and a section that would start past the global budget (GPU_CHECK_BUDGET, default 460 s: under
# 8 minutes with the merge) is recorded as skipped (its keys stay in the JSON, null); a section
# past its own limit is stopped (status timeout; the figures it had written are kept). Exit
# status: 1 when any section failed, else 3 when any timed out or was skipped, else 0;
# 2 when a real run finds no CUDA device. --dry-run runs the same code on the CPU with tiny
# sizes (under a minute on 2 cores). A second run can redo some sections with more time:
#   GPU_CHECK_ONLY="step profile" GPU_CHECK_LIMIT_step=400 bash benchmarks/gpu_check.sh "$OUT"
# (the others are recorded as skipped).
set -u

DRY=""
OUTDIR=""
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY="--dry-run" ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) OUTDIR="$arg" ;;
    esac
done
OUTDIR="${OUTDIR:-${OUT:-./gpu_check_out}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-python}"
COMMAND="bash benchmarks/gpu_check.sh $*"

if [ -n "$DRY" ]; then
    BUDGET="${GPU_CHECK_BUDGET:-110}"
    # seconds per section: pytest, step, sampling, memory, profile
    LIMITS=(60 40 20 15 15)
    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""
else
    BUDGET="${GPU_CHECK_BUDGET:-460}"
    LIMITS=(140 170 45 60 25)
fi
NAMES=(pytest step sampling memory profile)
RESERVE=15 # seconds kept for the merge

mkdir -p "$OUTDIR/logs" "$OUTDIR/sections"
OUTDIR="$(cd "$OUTDIR" && pwd)"
rm -f "$OUTDIR/status.tsv" "$OUTDIR/sections/"*.json "$OUTDIR/gpu_check.json"
LOG="$OUTDIR/logs/check.log"
: >"$LOG"
export PYTHONPATH="$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT" || exit 2

log() { echo "[gpu_check $(date -u +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$LOG" >&2; }

run_section() { # name limit: runs the section's command under `timeout`
    local name="$1" limit="$2"
    case "$name" in
        pytest)
            timeout -k 10 "$limit" "$PY" -m pytest -m gpu tests/ -q -p no:cacheprovider \
                --junitxml="$OUTDIR/pytest_gpu.xml" ;;
        *)
            # the section stops starting measurements 10 s before its limit
            timeout -k 10 "$limit" "$PY" "$HERE/gpu_check.py" "$name" "$OUTDIR" $DRY \
                --budget "$((limit > 20 ? limit - 10 : limit / 2))" ;;
    esac
}

log "start: $COMMAND (out: $OUTDIR, budget ${BUDGET}s${DRY:+, dry run})"
"$PY" -c "import torch, seqflow; print('python', __import__('sys').version.split()[0], \
'torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), \
torch.cuda.get_device_name() if torch.cuda.is_available() else '', 'seqflow', seqflow.__file__)" \
    2>&1 | tee -a "$LOG" >&2
if [ -z "$DRY" ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    log "no CUDA device (or no torch): the real check needs one; use --dry-run on a CPU"
    exit 2
fi
FAILED=0
INCOMPLETE=0
for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}"
    left=$((BUDGET - RESERVE - SECONDS))
    override="GPU_CHECK_LIMIT_$name"
    limit="${!override:-${LIMITS[$i]}}"
    if [ -n "${GPU_CHECK_ONLY:-}" ] && [[ " $GPU_CHECK_ONLY " != *" $name "* ]]; then
        log "$name: skipped (not in GPU_CHECK_ONLY)"
        printf '%s\tskipped\t\n' "$name" >>"$OUTDIR/status.tsv"
        INCOMPLETE=1
        continue
    fi
    [ "$left" -lt "$limit" ] && limit="$left"
    if [ "$limit" -lt 10 ]; then
        log "$name: skipped (${left}s left of the budget)"
        printf '%s\tskipped\t\n' "$name" >>"$OUTDIR/status.tsv"
        INCOMPLETE=1
        continue
    fi
    log "$name: start (limit ${limit}s)"
    start=$SECONDS
    run_section "$name" "$limit" >"$OUTDIR/logs/$name.log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    case "$rc" in
        0) state=ok ;;
        124|137) state=timeout ;;
        *) state=failed ;;
    esac
    # pytest exits 5 when every gpu test was deselected/skipped... only in a dry run is that fine
    if [ "$name" = pytest ] && [ "$rc" = 5 ] && [ -n "$DRY" ]; then state=ok; fi
    [ "$state" = failed ] && FAILED=1
    [ "$state" = timeout ] && INCOMPLETE=1
    printf '%s\t%s\t%s\n' "$name" "$state" "$took" >>"$OUTDIR/status.tsv"
    log "$name: $state (exit $rc) in ${took}s"
    [ "$state" = ok ] || tail -n 20 "$OUTDIR/logs/$name.log" | sed "s/^/    [$name] /" | tee -a "$LOG" >&2
done

"$PY" "$HERE/gpu_check.py" merge "$OUTDIR" $DRY --budget "$BUDGET" --wall "$SECONDS" \
    --command "$COMMAND" >"$OUTDIR/logs/merge.log" 2>&1 || {
    log "merge: failed"
    tail -n 20 "$OUTDIR/logs/merge.log" | tee -a "$LOG" >&2
    FAILED=1
}
if [ "$FAILED" = 1 ]; then
    log "done in ${SECONDS}s: $OUTDIR/gpu_check.json (some sections FAILED: see logs/)"
    exit 1
elif [ "$INCOMPLETE" = 1 ]; then
    log "done in ${SECONDS}s: $OUTDIR/gpu_check.json (some sections timed out or were skipped)"
    exit 3
fi
log "done in ${SECONDS}s: $OUTDIR/gpu_check.json (every section ok)"
exit 0
