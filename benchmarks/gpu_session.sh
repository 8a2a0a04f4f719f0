#!/usr/bin/env bash
# Every GPU measurement the open issues ask for, in few device calls.
#
# Each stage fits in one 10-minute device call; within the device's
# 30-minute budget run bench first, then the others in the order the open
# work needs them. Results land in $OUT (the device tool brings them back),
# or in ./gpu_out when $OUT is unset. The first stage that needs the default
# dataset generates it (115.8 s + the split writing on 2 CPU cores here;
# kept while the machine is warm).
#
#   bench     W1 (fp32 + bf16 rows), the input pipeline against the W1 step,
#             W2 (K=1, K=5, mmjax and PyTorch); not yet timed on a GPU
#   main      configs/optimized.py, the README's main job, on the GPU
#             (same SIGTERM budget and resume as below); not yet
#             timed on a GPU
#   extreme   configs/extreme_boost.py at full size on the default data,
#             stopped by SIGTERM before the call's limit (it checkpoints);
#             the same stage again resumes it                   <=9 min/call
#   ablation  configs/extreme_boost.py:ablation at its own scale, likewise
#             resumable                                         <=9 min/call
#
# On the device machine (wheels from `bash ../shared/device/fetch-wheels.sh
# tensorboardX ase`, carried as .whl):
#   bash benchmarks/gpu_session.sh bench
# STEPS / W2_STEPS / BUDGET_S override the step counts and the time budget
# (a CPU dry run: STEPS=2 W2_STEPS=2 BUDGET_S=60 bash benchmarks/gpu_session.sh bench).
set -uo pipefail
stage=${1:?usage: gpu_session.sh bench|main|extreme|ablation}
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

case $stage in
  bench)
    s=${STEPS:-50}
    python3 benchmarks/run_w1.py --steps "$s" --out "$out/w1_gpu.jsonl"
    python3 benchmarks/input_pipeline.py --variant smoke --seconds 2 \
        --steps $((4 * s)) --json "$out/input_pipeline_gpu.json"
    python3 benchmarks/run_w2.py --steps "${W2_STEPS:-$s}" --timeout 150 \
        --out "$out/w2_gpu.jsonl"
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
    timeout -s TERM "$budget" python3 launch.py --config="$cfg" --workdir="$wd"
    rc=$?
    echo "launch.py exit $rc after $(( $(date +%s) - start )) s in this call"
    [ "$rc" = 124 ] && echo "stopped at the ${budget} s budget (checkpoint saved): run the stage again to resume"
    for f in results.json ablation.md ablation.json ablation.png curves.png; do
      [ -f "$wd/$f" ] && cp "$wd/$f" "$out/${stage}_$f"
    done
    [ -f "$wd/metrics.jsonl" ] && tail -n 40 "$wd/metrics.jsonl" > "$out/${stage}_metrics_tail.jsonl"
    ;;
  *) echo "gpu_session.sh: unknown stage '$stage' (bench, main, extreme, ablation)"; exit 2 ;;
esac
