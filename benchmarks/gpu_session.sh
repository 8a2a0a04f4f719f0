#!/usr/bin/env bash
# Every GPU measurement the open issues ask for, in few device calls.
#
# Results land in $OUT (the device tool brings them back), or in ./gpu_out
# when $OUT is unset. The first stage that needs the default dataset
# generates it (one process per core; kept while the machine is warm).
# Wall times seen on an H200 (2026-11-26), compiles included:
#
#   pipeline  the input pipeline against the W1 step, host batches and the
#             device-resident split (84 s when it had only the host path,
#             smoke data generation included; with both not yet timed)
#   bench     W1 fp32 (210 s: mmjax compiles take 45-47 s, torch.compile
#             57 s), W2 (mmjax K=1 103 s, K=5 132 s, PyTorch loops 18-59 s
#             each; torch.func vmap rows not yet run), then `pipeline`, then
#             the W1 bf16 extras: more than one 10-minute call; every row
#             is appended to $OUT as it finishes
#   main      configs/optimized.py, the README's main job, on the GPU
#             (same SIGTERM budget and resume as below); not yet timed on a
#             GPU
#   extreme   configs/extreme_boost.py at full size on the default data,
#             stopped by SIGTERM before the call's limit (it checkpoints);
#             the same stage again resumes it                   <=9 min/call
#   ablation  configs/extreme_boost.py:ablation at its own scale, likewise
#             resumable                                         <=9 min/call
#
# On the device machine (wheels from `bash ../shared/device/fetch-wheels.sh
# tensorboardX ase`, carried as .whl):
#   bash benchmarks/gpu_session.sh bench
# STEPS / W2_STEPS / PIPE_STEPS / BUDGET_S override the step counts and the time budget
# (a CPU dry run: STEPS=2 W2_STEPS=2 PIPE_STEPS=4 bash benchmarks/gpu_session.sh bench).
set -uo pipefail
stage=${1:?usage: gpu_session.sh pipeline|bench|main|extreme|ablation}
out=${OUT:-$PWD/gpu_out}
mkdir -p "$out"
budget=${BUDGET_S:-540}
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ! python3 -c "import jraph, ml_collections, tensorflow_datasets" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target .site .whl/*.whl || exit 1
fi
export PYTHONPATH=$PWD:$PWD/.site${PYTHONPATH:+:$PYTHONPATH}
# The data and the runs stay on the machine between calls while it is warm.
export MMJAX_DATA_DIR=${MMJAX_DATA_DIR:-$PWD/.gpu-data}
log=$out/$stage.log
exec > >(tee -a "$log") 2>&1
date -u +"%F %T UTC: stage $stage"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
python3 -c "import jax, flax, optax, torch; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__)"

# The input pipeline and the training stages share XLA's persistent cache
# (a second compile of the same step loads it); the W1/W2 drivers do not, so
# their compile column stays a cold compile.
cache="env JAX_COMPILATION_CACHE_DIR=$PWD/.gpu-jax-cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=1"
pipeline() {
  $cache python3 benchmarks/input_pipeline.py --variant smoke --seconds 2 \
      --steps "${PIPE_STEPS:-200}" --json "$out/input_pipeline_gpu.json"
}

case $stage in
  pipeline) pipeline ;;
  bench)
    # Most wanted first (W1 itself is fp32; its bf16 rows are extras), so a
    # call cut short still brings back the rows the issues ask for.
    s=${STEPS:-50}
    python3 benchmarks/run_w1.py --steps "$s" --only fp32 --timeout 120 \
        --out "$out/w1_gpu.jsonl"
    python3 benchmarks/run_w2.py --steps "${W2_STEPS:-$s}" --timeout 120 \
        --out "$out/w2_gpu.jsonl"
    pipeline
    python3 benchmarks/run_w1.py --steps "$s" --only bf16 --timeout 120 \
        --out "$out/w1_gpu.jsonl"
    ;;
  main|extreme|ablation)
    case $stage in
      main) cfg=configs/optimized.py ;;
      extreme) cfg=configs/extreme_boost.py ;;
      ablation) cfg=configs/extreme_boost.py:ablation ;;
    esac
    wd=runs/gpu_$stage
    start=$(date +%s)
    # SIGTERM makes launch.py checkpoint and exit 143; rerun the stage to resume.
    timeout -s TERM "$budget" $cache python3 launch.py --config="$cfg" \
        --workdir="$wd"
    rc=$?
    echo "launch.py exit $rc after $(( $(date +%s) - start )) s in this call"
    [ "$rc" = 124 ] && echo "stopped at the ${budget} s budget (checkpoint saved): run the stage again to resume"
    for f in results.json ablation.md ablation.json ablation.png curves.png; do
      [ -f "$wd/$f" ] && cp "$wd/$f" "$out/${stage}_$f"
    done
    [ -f "$wd/metrics.jsonl" ] && tail -n 40 "$wd/metrics.jsonl" > "$out/${stage}_metrics_tail.jsonl"
    ;;
  *) echo "gpu_session.sh: unknown stage '$stage' (pipeline, bench, main, extreme, ablation)"; exit 2 ;;
esac
