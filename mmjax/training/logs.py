"""What a run leaves in its workdir besides checkpoints: metrics.jsonl,
TensorBoard event files (tensorboardX: no TensorFlow import) and curves.png."""

import json
import os

import numpy as np


class MetricsLog:
  """Appends one JSON object per logged point: step, epoch, split, metrics.

  On resume, lines past the restored step are dropped so the file reads as if
  the run had never been interrupted.
  """

  def __init__(self, workdir, resume_step=None, enabled=True):
    # In a multi-host job only the primary process writes (enabled=False
    # elsewhere): every process computes the same numbers.
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    if not enabled:
      return
    if resume_step is not None and os.path.exists(self.path):
      with open(self.path) as f:
        keep = [l for l in f if l.strip() and
                json.loads(l)["step"] <= resume_step]
      with open(self.path, "w") as f:
        f.writelines(keep)
    elif resume_step is None and os.path.exists(self.path):
      os.remove(self.path)
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"),
                            purge_step=resume_step)

  def write(self, step, epoch, split, metrics):
    if not self.enabled:
      return
    row = {"step": int(step), "epoch": int(epoch), "split": split}
    row.update({k: _plain(v) for k, v in metrics.items()})
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    for k, v in row.items():
      if k not in ("step", "epoch", "split") and isinstance(v, (int, float)):
        self.tb.add_scalar(f"{split}/{k}", v, int(step))

  def close(self):
    if self.enabled:
      self.tb.close()


def _plain(v):
  if isinstance(v, (np.generic, np.ndarray)):
    return v.item() if np.ndim(v) == 0 else np.asarray(v).tolist()
  return v


def read_metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(l) for l in f if l.strip()]


def plot_curves(workdir, main_metric, path=None):
  """Loss and the main metric per epoch, train and val, into curves.png."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = read_metrics(workdir)
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for split in ("train_epoch", "val"):
    pts = [r for r in rows if r["split"] == split]
    if not pts:
      continue
    ep = [r["epoch"] for r in pts]
    label = "train" if split == "train_epoch" else "val"
    axes[0].plot(ep, [r.get("loss") for r in pts], marker=".", label=label)
    axes[1].plot(ep, [r.get(main_metric) for r in pts], marker=".",
                 label=label)
  axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
  axes[1].set(xlabel="epoch", ylabel=main_metric, title=main_metric)
  for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path or os.path.join(workdir, "curves.png"), dpi=100)
  plt.close(fig)
