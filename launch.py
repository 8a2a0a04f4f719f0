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


def _default_workdir():
  spec = flags.FLAGS["config"].config_filename
  path, _, variant = spec.partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  return os.path.join("runs", name + (f"_{variant}" if variant else ""))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top
  from mmjax.training import trainer  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  workdir = _WORKDIR.value or _default_workdir()
  try:
    results, done_before = trainer.train_and_evaluate(_CONFIG.value, workdir)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except trainer.Preempted as e:
    print(str(e), file=sys.stderr)
    sys.exit(128 + e.signum)
  if done_before:
    print(f"{workdir} holds a finished run; its results:")
  summary = {k: results[k] for k in ("test", "val", "best_epoch",
                                     "train_time_s", "samples_per_s")
             if k in results}
  print(json.dumps(summary, indent=2))
  print(f"results: {os.path.join(workdir, 'results.json')}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
