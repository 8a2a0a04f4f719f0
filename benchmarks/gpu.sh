#!/usr/bin/env bash
# The GPU measurements (benchmarks and training runs) in stages, each within
# a 10-minute call; see benchmarks/README.md.
#
# Results land in $OUT, or in ./gpu_out
# when $OUT is unset. The first stage that needs the default dataset
# generates it (one process per core; kept while the machine is warm).
# Wall times seen on an H200 and an H100 (2026-11-26), compiles included:
#
#   pipeline  the input pipeline against the W1 step, host batches and the
#             device-resident split (about 95 s on an H100 by the log's
#             timestamps, smoke data generation included)
#   bench     W1 fp32 (210 s: mmjax compiles take 45-47 s, torch.compile
#             57 s), W2 (mmjax K=1 103 s, K=5 132 s, PyTorch loops 18-59 s
#             each; torch.func vmap rows not yet run), then `pipeline`, then
#             the W1 bf16 extras: more than one 10-minute call; every row
#             is appended to $OUT as it finishes
#   w1        W1 fp32 rows only (all implementations: the ratio is to the
#             PyTorch rows of the same run)        210 s (H200), 172 s (H100)
#   w2        W2 rows only, torch.func vmap included    472 s (H100 call; the four
#             torch.func rows failed on CUDA in 15-58 s each; the two
#             math-attention vmap rows added since are not yet timed)
#   probe     compile time and step time of the W2 5-member step with XLA's
#             GPU autotuning off (--xla_gpu_autotune_level=0), to compare with
#             the default's 97 s compile and 9.97 ms step of 2026-11-26 (the
#             training stages could then use the flag; the benchmark rows
#             keep XLA's defaults)                       not yet timed
#   main      configs/optimized.py, the README's main job, on the GPU
#             (same SIGTERM budget and resume as below); not yet timed on a
#             GPU
#   extreme   configs/extreme_boost.py at full size on the default data,
#             stopped by SIGTERM before the call's limit (it checkpoints);
#             the same stage again resumes it                   <=9 min/call
#   ablation  configs/extreme_boost.py:ablation at its own scale, likewise
#             resumable                                         <=9 min/call
#   w3        W3 rows (viral's genome transformer step, batch 64 of 512
#             tokens x 1024 features): mmjax fp32 and bf16, PyTorch eager
#             and torch.compile, fp32 and bf16 autocast, with model FLOPs
#             utilisation                                 not yet timed
#   w4        W4 rows (affinity's AdvancedTransformerCNN step, batch 8 of
#             24^3 x 19 voxels): mmjax fp32 and bf16, PyTorch eager and
#             torch.compile, fp32 and bf16 autocast, with model FLOPs
#             utilisation                                 not yet timed
#   w5        W5 rows (cardiac's residual BatchNorm/attention sequence
#             classifier step, batch 32 of 80 steps x 50 features): mmjax
#             fp32 and bf16, PyTorch eager and torch.compile, fp32 and bf16
#             autocast                                    not yet timed
#   affinity  configs/affinity.py (the reference scale) on its default
#             data, stopped by SIGTERM before the call's limit like
#             `extreme`; the same stage again resumes it  not yet timed
#   affinity_multi_target  the same on `binding/multi_target` (7
#             targets; builds the dataset first)            not yet timed
#   viral     configs/viral.py (the reference scale: 8 x 512 transformer,
#             bf16) on viral_viability, likewise resumable  not yet timed
#   cardiac   configs/cardiac.py (the reference scale: the progressive-
#             scaling driver, 3 scales in turn x 3 seeds, width 160, 60
#             epochs, bf16), likewise resumable            not yet timed
#   cardiac_vmapped  the same as 9 vmapped members (configs/cardiac.py:
#             vmapped), to compare with `cardiac`          not yet timed
#
# On the GPU machine (wheels of packages it lacks, if it cannot reach a
# package index, in .whl/):
#   bash benchmarks/gpu.sh bench
# STEPS / W2_STEPS / PIPE_STEPS / BUDGET_S override the step counts and the time budget
# (a CPU dry run: STEPS=2 W2_STEPS=2 PIPE_STEPS=4 bash benchmarks/gpu.sh bench).
set -uo pipefail
stage=${1:?usage: gpu.sh pipeline|bench|w1|w2|w3|w4|w5|probe|main|extreme|ablation|affinity|affinity_multi_target|viral|cardiac|cardiac_vmapped}
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

w1() {
  python3 benchmarks/run_w1.py --steps "${STEPS:-50}" --only fp32 --timeout 120 \
      --out "$out/w1_gpu.jsonl"
}
w2() {
  python3 benchmarks/run_w2.py --steps "${W2_STEPS:-${STEPS:-50}}" --timeout 120 \
      --out "$out/w2_gpu.jsonl"
}

case $stage in
  pipeline) pipeline ;;
  w1) w1 ;;
  w2) w2 ;;
  w3)
    python3 benchmarks/run_w3.py --steps "${STEPS:-50}" --timeout 150 \
        --out "$out/w3_gpu.jsonl"
    ;;
  w4)
    python3 benchmarks/run_w4.py --steps "${STEPS:-50}" --timeout 150 \
        --out "$out/w4_gpu.jsonl"
    ;;
  w5)
    python3 benchmarks/run_w5.py --steps "${STEPS:-50}" --timeout 150 \
        --out "$out/w5_gpu.jsonl"
    ;;
  probe)
    XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_autotune_level=0" python3 \
        benchmarks/w2_mmjax.py --members 5 --steps "${STEPS:-50}" \
        --out "$out/w2_probe_autotune0.jsonl"
    ;;
  bench)
    # Most wanted first (W1 itself is fp32; its bf16 rows are extras), so a
    # call cut short still brings back the rows that matter most.
    w1
    w2
    pipeline
    python3 benchmarks/run_w1.py --steps "${STEPS:-50}" --only bf16 \
        --timeout 120 --out "$out/w1_gpu.jsonl"
    ;;
  main|extreme|ablation|affinity|affinity_multi_target|viral|cardiac|cardiac_vmapped)
    case $stage in
      main) cfg=configs/optimized.py ;;
      extreme) cfg=configs/extreme_boost.py ;;
      ablation) cfg=configs/extreme_boost.py:ablation ;;
      affinity) cfg=configs/affinity.py ;;
      affinity_multi_target) cfg=configs/affinity.py:multi_target ;;
      viral) cfg=configs/viral.py ;;
      cardiac) cfg=configs/cardiac.py ;;
      cardiac_vmapped) cfg=configs/cardiac.py:vmapped ;;
    esac
    wd=runs/gpu_$stage
    start=$(date +%s)
    # SIGTERM makes launch.py checkpoint and exit 143; rerun the stage to resume.
    timeout -s TERM "$budget" $cache python3 launch.py --config="$cfg" \
        --workdir="$wd"
    rc=$?
    echo "launch.py exit $rc after $(( $(date +%s) - start )) s in this call"
    [ "$rc" = 124 ] && echo "stopped at the ${budget} s budget (checkpoint saved): run the stage again to resume"
    for f in results.json ablation.md ablation.json ablation.png curves.png \
        progressive.md progressive.json; do
      [ -f "$wd/$f" ] && cp "$wd/$f" "$out/${stage}_$f"
    done
    [ -f "$wd/metrics.jsonl" ] && tail -n 40 "$wd/metrics.jsonl" > "$out/${stage}_metrics_tail.jsonl"
    ;;
  *) echo "gpu.sh: unknown stage '$stage' (pipeline, bench, w1, w2, w3, w4, w5, probe, main, extreme, ablation, affinity, affinity_multi_target, viral, cardiac, cardiac_vmapped)"; exit 2 ;;
esac

# A machine goes back after 30 s idle, so the next call usually starts bare:
# the compiled training steps come back in $out/jax-cache; copying them to
# ./.gpu-jax-cache here and carrying that path lets the next call on the same
# kind of GPU skip the compile (XLA keys the cache on device and flags).
if [ -d .gpu-jax-cache ] && [ "$(du -sm .gpu-jax-cache | cut -f1)" -le 48 ]; then
  rm -rf "$out/jax-cache" && cp -r .gpu-jax-cache "$out/jax-cache"
fi
