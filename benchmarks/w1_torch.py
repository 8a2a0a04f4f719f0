"""W1 benchmark, PyTorch + PyTorch Geometric side: the reference recipe's model and step.

  python benchmarks/w1_torch.py --variant eager
  python benchmarks/w1_torch.py --variant compile
  python benchmarks/w1_torch.py --variant eager --amp   # GPU

The W1 model (benchmarks/README.md) in PyTorch + PyG: crystal GCN 3->64->128->128 and
k-space GCN 64->128->256->256 (GCNConv, self-loops, symmetric normalisation
computed by PyG's gcn_norm once per step and graph modality, residual on the
last layer), global_mean_pool + global_max_pool
over the batched graphs; scalar MLP 10->64->128, decomposition MLP
64->128->256; a Linear to 288 per modality; nn.MultiheadAttention(288, 8,
batch_first=True) over the 4 modality tokens [B,4,288] with a residual;
flatten to 1152; classifier 1152->256->128->2 with BatchNorm/ReLU/Dropout 0.3.
Loss: focal (gamma 2) + 0.1 x feature diversity (-log(mean std + 1e-8)).
Step: zero_grad(set_to_none=True), forward, backward, clip_grad_norm_(1.0),
AdamW(lr 2e-4, wd 1e-4).

The batched PyG tensors (x, edge_index, batch vector per graph modality) are
built once from benchmarks/w1_data.py (the same graphs as the mmjax side) and
moved to the device before timing. fp32 means TF32 off. `--amp` wraps forward
and loss in torch.autocast(bfloat16) (parameters stay fp32).

Prints one JSON line prefixed with 'RESULT ' (and appends it to --out); a
failure (e.g. torch.compile on this machine) is reported in the line's
'error' field instead of a figure.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # pylint: disable=g-import-not-at-top
from torch import nn
import torch.nn.functional as F
import torch_geometric
from torch_geometric.nn import GCNConv, global_max_pool, global_mean_pool
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from common import (add_step_args, add_torch_step_args, emit_result,
                    run_guarded, run_torch_train_step, torch_labels,
                    torch_setup, torch_sync)
import w1_data


class GCNEncoder(nn.Module):
  """GCN stack, ReLU, residual on the last layer, mean+max pooling.

  `graph` is (edge_index, edge_weight) from `normalize_graphs`: self-loops
  and the symmetric normalisation computed once per batch, not per layer.
  """

  def __init__(self, in_dim, widths, dropout=0.0):
    super().__init__()
    dims = [in_dim] + list(widths)
    self.convs = nn.ModuleList(
        GCNConv(dims[i], dims[i + 1], cached=False, normalize=False)
        for i in range(len(widths)))
    self.dropout = dropout

  def forward(self, x, graph, batch, num_graphs):
    edge_index, edge_weight = graph
    h = x
    for i, conv in enumerate(self.convs):
      out = conv(h, edge_index, edge_weight)
      if i == len(self.convs) - 1 and h.shape[-1] == out.shape[-1]:
        out = out + h
      h = F.dropout(F.relu(out), self.dropout, self.training)
    return torch.cat([global_mean_pool(h, batch, num_graphs),
                      global_max_pool(h, batch, num_graphs)], dim=-1)


def mlp(dims):
  layers = []
  for i in range(len(dims) - 1):
    layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
  return nn.Sequential(*layers)


class W1Model(nn.Module):

  def __init__(self, token_dim=288, heads=8, num_classes=2, dropout=0.3):
    super().__init__()
    self.crystal = GCNEncoder(3, (64, 128, 128))
    self.kspace = GCNEncoder(64, (128, 256, 256))
    self.scalar = mlp((10, 64, 128))
    self.decomp = mlp((64, 128, 256))
    self.tokens = nn.ModuleList([nn.Linear(256, token_dim),
                                 nn.Linear(512, token_dim),
                                 nn.Linear(128, token_dim),
                                 nn.Linear(256, token_dim)])
    self.attention = nn.MultiheadAttention(token_dim, heads, batch_first=True)
    self.head = nn.Sequential(
        nn.Linear(4 * token_dim, 256), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(128, num_classes))

  def forward(self, cx, cei, cb, kx, kei, kb, scalar, decomp, present):
    b = scalar.shape[0]
    embs = [self.crystal(cx, cei, cb, b), self.kspace(kx, kei, kb, b),
            self.scalar(scalar), self.decomp(decomp)]
    tokens = torch.stack([p(e) for p, e in zip(self.tokens, embs)], dim=1)
    tokens = tokens * present[..., None]                    # [B, 4, 288]
    att, _ = self.attention(tokens, tokens, tokens, need_weights=False)
    fused = (tokens + att) * present[..., None]
    features = fused.flatten(1)                             # [B, 1152]
    return self.head(features), features


def objective(model, data, gamma=2.0, diversity_weight=0.1):
  logits, features = model(*data["inputs"])
  ce = F.cross_entropy(logits.float(), data["label"], reduction="none")
  pt = torch.exp(-ce)
  focal = ((1.0 - pt) ** gamma * ce).mean()
  div = -torch.log(features.float().std(dim=0).mean() + 1e-8)
  return focal + diversity_weight * div


def normalize_graphs(inputs):
  """The model's inputs with each edge_index replaced by (edge_index with
  self-loops, symmetric-normalisation weights): PyG's gcn_norm, what
  GCNConv(normalize=True) computes in every layer. Run eagerly once per step
  (shared by all layers, and by all members in W2): its self-loop handling
  has a data-dependent shape, which broke a compiled graph 6 times."""
  cx, cei, cb, kx, kei, kb, *rest = inputs
  return (cx, gcn_norm(cei, None, cx.shape[0]), cb,
          kx, gcn_norm(kei, None, kx.shape[0]), kb, *rest)


def load_batch(device):
  """benchmarks/w1_data.py's batch as PyG tensors on `device`: (the model's
  inputs, label)."""
  g = w1_data.to_pyg(w1_data.make_batch())
  t = {n: torch.from_numpy(v).to(device) for n, v in g.items()}
  inputs = (t["crystal_x"], t["crystal_edge_index"], t["crystal_batch"],
            t["kspace_x"], t["kspace_edge_index"], t["kspace_batch"],
            t["scalar"], t["decomp"], t["modality_mask"])
  return inputs, t["label"]


def run(args, res):
  device = torch_setup(args.device, res)  # fp32 = IEEE fp32: no TF32.

  t0 = time.perf_counter()
  inputs, label = load_batch(device)
  torch_sync(device)
  res["data_s"] = time.perf_counter() - t0

  model = W1Model().to(device).train()
  # The graphs are normalised in every step, outside autocast and compile.
  run_torch_train_step(
      res, args, device, model, objective,
      lambda: ({"inputs": normalize_graphs(inputs), "label": label},),
      w1_data.BATCH, lr=2e-4, weight_decay=1e-4)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_torch_step_args(p)
  add_step_args(p, "the first one")
  args = p.parse_args(argv)

  res = {"workload": "W1", "impl": "pytorch+pyg", **torch_labels(args),
         "versions": {"torch": torch.__version__,
                      "torch_geometric": torch_geometric.__version__}}
  run_guarded(run, args, res)
  emit_result(res, args.out)


if __name__ == "__main__":
  main()
