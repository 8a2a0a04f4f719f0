r"""Runs a recipe: `python launch.py --config=configs/optimized.py`.

Config files are Python files with `get_config(arg)` (ml_collections), so
nothing is unpickled to read them. Override any key with
`--config.some.key=value`; `--config=FILE:variant` picks a variant (`smoke`
is the tiny one tests use). Re-running the same command resumes the run in
--workdir, or prints its results if it finished.
"""

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Where checkpoints, logs and results go "
    "(default: runs/<config name>[_<variant>]).")

# Multi-host jobs (docs/multihost.md): one launch.py per host, same flags.
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0's coordinator; "
    "with --num_processes and --process_id joins a multi-host job through "
    "jax.distributed.initialize.")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Number of processes (hosts) in the job.")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index in [0, --num_processes).")
_DISTRIBUTED = flags.DEFINE_boolean(
    "distributed", False, "Join a multi-host job with what "
    "jax.distributed.initialize() detects by itself (Cloud TPU pods, SLURM, "
    "Open MPI, Kubernetes JobSets).")
_CPU_COLLECTIVES = flags.DEFINE_enum(
    "cpu_collectives", "gloo", ["gloo", "mpi", "none"],
    "Cross-process collectives of the CPU backend in a multi-process job.")


def _default_workdir():
  spec = flags.FLAGS["config"].config_filename
  path, _, variant = spec.partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  return os.path.join("runs", name + (f"_{variant}" if variant else ""))


def _loaded_config():
  """The parsed config, checked leaf by leaf against the file's own defaults
  (ml_collections checks scalar types; this also checks tuple elements)."""
  from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top
  spec = flags.FLAGS["config"].config_filename
  try:
    config = _CONFIG.value
    config.to_dict()
  except OSError as e:
    raise UserError(f"--config={spec}: cannot load the config file "
                    f"({str(e).splitlines()[-1].strip()})") from e
  path, _, arg = spec.partition(":")
  module = config_flags.config_flags._LoadConfigModule("defaults", path)  # pylint: disable=protected-access
  defaults = module.get_config(arg) if arg else module.get_config()
  _check_types(config.to_dict(), defaults.to_dict(), "config")
  return config


def _check_types(value, default, key):
  from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top
  if isinstance(default, dict):
    for k in default:
      _check_types(value[k], default[k], f"{key}.{k}")
  elif isinstance(default, (tuple, list)) and default:
    kinds = {type(x) for x in default}
    if not isinstance(value, (tuple, list)) or not all(
        type(x) in kinds or (float in kinds and type(x) is int)
        for x in value):
      raise UserError(f"--{key}={value!r}: expected a tuple like "
                      f"{tuple(default)!r}")


def _init_distributed():
  """Joins the multi-host job the flags describe (a no-op without them).

  Must run before anything touches a JAX backend."""
  from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top
  explicit = {"--coordinator_address": _COORDINATOR.value,
              "--num_processes": _NUM_PROCESSES.value,
              "--process_id": _PROCESS_ID.value}
  given = [k for k, v in explicit.items() if v is not None]
  if not given and not _DISTRIBUTED.value:
    return
  if given and _DISTRIBUTED.value:
    raise UserError("--distributed detects the job by itself: drop "
                    f"{', '.join(given)} or --distributed")
  if given and len(given) != 3:
    missing = [k for k in explicit if k not in given]
    raise UserError(f"{', '.join(given)} also needs {', '.join(missing)}")
  if given and not 0 <= _PROCESS_ID.value < _NUM_PROCESSES.value:
    raise UserError(f"--process_id={_PROCESS_ID.value} is not in "
                    f"[0, --num_processes={_NUM_PROCESSES.value})")
  import jax  # pylint: disable=g-import-not-at-top
  if _CPU_COLLECTIVES.value != "none":
    jax.config.update("jax_cpu_collectives_implementation",
                      _CPU_COLLECTIVES.value)
  try:
    if given:
      jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                                 num_processes=_NUM_PROCESSES.value,
                                 process_id=_PROCESS_ID.value)
    else:
      jax.distributed.initialize()
  except (RuntimeError, ValueError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise UserError(f"cannot join the multi-host job "
                    f"({type(e).__name__}: {first[:300]})") from e


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  try:
    _init_distributed()
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  from mmjax.training import preemption  # pylint: disable=g-import-not-at-top
  from mmjax.training import trainer  # pylint: disable=g-import-not-at-top
  workdir = _WORKDIR.value or _default_workdir()
  try:
    with preemption.stop_on_signals():
      config = _loaded_config()
      if config.get("driver") == "ablation":
        from mmjax.drivers import ablation  # pylint: disable=g-import-not-at-top
        ablation.run(config, workdir)
        print(open(os.path.join(workdir, "ablation.md")).read())
        print(f"ablation: {os.path.join(workdir, 'ablation.md')}")
        return
      if config.get("driver") == "progressive":
        from mmjax.drivers import progressive  # pylint: disable=g-import-not-at-top
        progressive.run(config, workdir)
        print(open(os.path.join(workdir, "progressive.md")).read())
        print(f"progressive: {os.path.join(workdir, 'progressive.md')}")
        return
      results, done_before = trainer.train_and_evaluate(config, workdir)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except preemption.Preempted as e:
    print(str(e), file=sys.stderr)
    sys.exit(128 + e.signum)
  if done_before:
    print(f"{workdir} holds a finished run; its results:")
  summary = {k: results[k] for k in ("best_stage", "test", "val",
                                     "best_epoch", "train_time_s",
                                     "samples_per_s") if k in results}
  if "summary" in results:  # Replicates: the chosen stage's mean ± sd.
    test = results["summary"][results["best_stage"]]["test"]
    summary["test_mean_sd"] = {k: f"{v['mean']:.4f} ± {v['sd']:.4f}"
                               for k, v in test.items()}
  print(json.dumps(summary, indent=2))
  print(f"results: {os.path.join(workdir, 'results.json')}")


def parse_flags(argv):
  """absl's parser, with every config mistake reported as one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    msg = str(e)
    if "Traceback" in msg:  # The config file raised: keep its last line.
      msg = [l for l in msg.splitlines() if l.strip()][-1].strip()
      msg = f"--config: {msg}"
    sys.exit(f"error: {' '.join(msg.split())}")
  except (KeyError, AttributeError) as e:
    # ml_collections raises these for --config.KEY=VALUE with an unknown KEY.
    key = str(e).strip("'\"")
    bad = [a.split("=")[0] for a in argv if a.startswith("--config.") and
           key in a.split("=")[0].split(".")]
    sys.exit(f"error: {bad[0] if bad else '--config'}: the config has no "
             f"key '{key}'")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main, flags_parser=parse_flags)
