"""Where a measurement came from: the fields every results JSON that a
script writes carries (command, date, commit, package versions, hardware)."""

import datetime
import importlib
import json
import os
import platform
import subprocess


def commit():
  """`git describe --always --dirty` of the checkout holding mmjax ('' if
  it is not a git checkout)."""
  return subprocess.run(["git", "describe", "--always", "--dirty"],
                        capture_output=True, text=True,
                        cwd=os.path.dirname(os.path.abspath(__file__))
                        ).stdout.strip()


def versions(packages=("numpy",)):
  """{'python': ..., package: __version__} of the named packages."""
  out = {"python": platform.python_version()}
  for name in packages:
    out[name] = importlib.import_module(name).__version__
  return out


def hardware(with_jax=False):
  """'N CPU cores (machine)', and the jax devices if `with_jax`."""
  text = f"{os.cpu_count()} CPU cores ({platform.machine()})"
  if with_jax:
    import jax  # pylint: disable=g-import-not-at-top
    dev = jax.devices()[0]
    text += (f"; jax on {len(jax.devices())} x {dev.platform} "
             f"({dev.device_kind})")
  return text


def record(script, argv, packages=("numpy",), with_jax=False):
  """{command, date, commit, versions, hardware} of `python <script>
  <argv>`."""
  return {"command": " ".join([f"python {script}"] + list(argv)),
          "date": datetime.date.today().isoformat(), "commit": commit(),
          "versions": versions(packages),
          "hardware": hardware(with_jax)}


def write_json(path, doc):
  """Writes a results document (its folder made if needed) and says so."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w") as f:
    json.dump(doc, f, indent=1)
  print(f"wrote {path}")
