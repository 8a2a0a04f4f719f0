"""W3 benchmark, PyTorch side: reference recipe 003's genome transformer step.

  python benchmarks/w3_torch.py --variant eager
  python benchmarks/w3_torch.py --variant compile
  python benchmarks/w3_torch.py --variant eager --amp   # GPU
  python benchmarks/w3_torch.py --params_only           # count only

The W3 model (benchmarks/README.md) in PyTorch, layer for layer what mmjax
builds from w3_mmjax.get_config() (the `transformer` encoder of
mmjax/models/encoders.py, SequenceTransformer, and the multimodal head with
its confidence head), on a batch of 64 genomes of 512 tokens x 1024
features:

  Linear 1024 -> 512 + sinusoidal positions (mmjax's, a fixed buffer)
  8 x nn.TransformerEncoderLayer(512, 16 heads, 2048, dropout 0.1, gelu,
      batch_first, norm_first, LayerNorm eps 1e-6 as flax's), LayerNorm
      (eps 1e-6), mean and max over the 512 tokens -> 1024
  Linear 1024 -> 512 (mmjax's modality token), then
  classifier 512 -> 512 -> 256 -> 128 -> 2 and confidence head (on the
      detached embedding) 512 -> 256 -> 128 -> 1, each hidden Linear
      followed by LayerNorm (eps 1e-5), exact GELU and dropout 0.1.

Both sides have the same parameter count. torch's encoder layer also drops
attention weights and the MLP's hidden units (mmjax drops the residual
branches only); at W3's sizes that is a few elementwise kernels. mmjax
also multiplies the embedded tokens by the sequence mask, masks attention
and pools over the real tokens; here every genome fills its 512 tokens, so
this side, like the reference recipe, does none of that.

Loss: focal loss (gamma 2, alpha_t = 0.25 for class 1 and 0.75 for class
0) + 1.0 x the binary cross-entropy of the confidence logit against "the
classifier's argmax is right", averaged over the batch. Step:
zero_grad(set_to_none=True), forward, backward, clip_grad_norm_(1.0),
AdamW(lr 1e-4, weight decay 1e-5).

The batch is run_w3.make_batch()'s (the same tokens as the mmjax side),
moved to the device once. fp32 means TF32 off. `--amp` wraps forward and
loss in torch.autocast(bfloat16) (parameters stay fp32). `--small` runs
run_w3.SMALL's sizes (tests); `--params_only` reports the parameter count
and times nothing.

Prints one JSON line prefixed with 'RESULT ' (and appends it to --out); a
failure is reported in the line's 'error' field instead of a figure.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # pylint: disable=g-import-not-at-top
from torch import nn
import torch.nn.functional as F

from common import (add_step_args, add_torch_step_args, emit_result,
                    run_guarded, run_torch_train_step, torch_labels,
                    torch_setup, torch_sync)
import run_w3
from mmjax.models import positions  # numpy only: no JAX in this process

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
CONFIDENCE_WEIGHT = 1.0


def mlp(cin, hidden, cout, dropout):
  """mmjax.models.mlp.MLP(layer_norm=True, activation='gelu',
  final_activation=False): (Linear, LayerNorm, GELU, Dropout) per hidden
  width, then a linear output layer."""
  layers, dims = [], (cin,) + tuple(hidden)
  for a, b in zip(dims[:-1], dims[1:]):
    layers += [nn.Linear(a, b), nn.LayerNorm(b, eps=1e-5), nn.GELU(),
               nn.Dropout(dropout)]
  return nn.Sequential(*layers, nn.Linear(dims[-1], cout))


class GenomeTransformer(nn.Module):
  """Tokens [B, T, F] -> (class logits [B, C], confidence logit [B])."""

  def __init__(self, tokens=512, features=1024, width=512, depth=8,
               heads=16, mlp_ratio=4, token_dim=512, head=(512, 256, 128),
               confidence=(256, 128), classes=2, dropout=0.1):
    super().__init__()
    self.embed = nn.Linear(features, width)
    self.register_buffer(
        "pos", torch.from_numpy(positions.sinusoidal(tokens, width)))
    # flax's LayerNorm eps (1e-6) inside the transformer, as mmjax's.
    self.layers = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(width, heads, mlp_ratio * width, dropout,
                                   activation="gelu", layer_norm_eps=1e-6,
                                   batch_first=True, norm_first=True),
        depth, enable_nested_tensor=False)
    self.ln_out = nn.LayerNorm(width, eps=1e-6)
    self.token = nn.Linear(2 * width, token_dim)
    self.head = mlp(token_dim, head, classes, dropout)
    self.confidence = mlp(token_dim, confidence, 1, dropout)

  def forward(self, x):
    h = self.ln_out(self.layers(self.embed(x) + self.pos))   # [B, T, W]
    features = self.token(torch.cat([h.mean(1), h.amax(1)], -1))
    # The confidence head never changes the classifier: its input is
    # detached, as mmjax's is gradient-stopped.
    return (self.head(features),
            self.confidence(features.detach()).squeeze(-1))


def build_model(small=False):
  """The W3 model at run_w3.FULL's (or SMALL's) sizes."""
  s = run_w3.sizes(small)
  return GenomeTransformer(
      tokens=s["tokens"], features=s["features"], width=s["width"],
      depth=s["depth"], heads=s["heads"], mlp_ratio=s["mlp_ratio"],
      token_dim=s["token_dim"], head=s["head"], confidence=s["confidence"],
      classes=s["classes"], dropout=run_w3.DROPOUT)


def objective(model, tokens, label):
  """Focal loss + CONFIDENCE_WEIGHT x the confidence BCE, batch mean: what
  mmjax.tasks.classification.ClassificationTask computes for 2 classes."""
  logits, confidence = model(tokens)
  logits, confidence = logits.float(), confidence.float()
  ce = F.cross_entropy(logits, label, reduction="none")
  alpha_t = torch.where(label == 1, FOCAL_ALPHA, 1.0 - FOCAL_ALPHA)
  focal = alpha_t * (1.0 - torch.exp(-ce)) ** FOCAL_GAMMA * ce
  right = (logits.argmax(-1) == label).float()
  bce = F.binary_cross_entropy_with_logits(confidence, right,
                                           reduction="none")
  return (focal + CONFIDENCE_WEIGHT * bce).mean()


def run(args, res):
  device = torch_setup(args.device, res)  # fp32 = IEEE fp32: no TF32.
  batch_size = run_w3.sizes(args.small, args.batch)["batch"]

  t0 = time.perf_counter()
  batch = run_w3.make_batch(args.small, batch=args.batch)
  tokens = torch.from_numpy(batch["genome"]).to(device)
  label = torch.from_numpy(batch["label"]).long().to(device)
  torch_sync(device)
  res["data_s"] = time.perf_counter() - t0

  model = build_model(args.small).to(device).train()
  run_torch_train_step(res, args, device, model, objective,
                       lambda: (tokens, label), batch_size, lr=1e-4,
                       weight_decay=1e-5)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_torch_step_args(p)
  run_w3.add_size_args(p)
  add_step_args(p, "the first one")
  args = p.parse_args(argv)

  res = {"workload": run_w3.workload(args),
         "impl": "pytorch",
         **torch_labels(args),
         "loadavg_1min_start": os.getloadavg()[0],
         "versions": {"torch": torch.__version__}}
  if args.params_only:
    # Built on the meta device: shapes only, no memory, nothing initialised.
    with torch.device("meta"):
      res["n_params"] = sum(p.numel() for p in
                            build_model(args.small).parameters())
    emit_result(res, args.out)
    return
  run_guarded(run, args, res)
  res["loadavg_1min_end"] = os.getloadavg()[0]
  emit_result(res, args.out)


if __name__ == "__main__":
  main()
