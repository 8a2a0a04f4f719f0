"""W2 benchmark, PyTorch + PyTorch Geometric side: K ensemble members.

  python benchmarks/w2_torch.py --variant loop --members 5
  python benchmarks/w2_torch.py --variant loop-compile --members 5
  python benchmarks/w2_torch.py --variant vmap --members 5
  python benchmarks/w2_torch.py --variant vmap-compile --members 5
  python benchmarks/w2_torch.py --variant vmap-math --members 5

The W2 model (benchmarks/README.md, reference recipe 001 `extreme_boost`), built to match
configs/extreme_boost.py layer for layer (11,513,218 parameters per member on
both sides):
  crystal GCN 3->512->512->512 and k-space GCN 64->512->512->512 (w1_torch's
  GCNEncoder: GCNConv, residual on the last layer, global mean + max pooling)
  + Linear 1024->512; scalar MLP 10->256->512, decomposition MLP
  64->256->512 (ReLU after each layer); a Linear 512->512 token per modality;
  cross-modal attention: per modality its own nn.MultiheadAttention(512, 8)
  with that modality's token as the query and the other three as keys and
  values, plus a residual; then nn.MultiheadAttention(512, 8) self-attention
  over the 4 tokens with a residual; flatten to 2048; classifier
  2048->1024->512->256->128->2 with BatchNorm/ReLU/Dropout 0.3.
  Mixup as mmjax does it: one partner permutation and one lam ~ Beta(0.2,
  0.2) per member and step; vector modalities mixed at the input, graph
  modalities on their pooled+projected embedding; targets = lam y +
  (1-lam) y[perm] with y the label-smoothed (0.2) one-hot; soft-target
  cross-entropy. AdamW (lr 2e-4, wd 1e-4), global-norm clipping 1.0 per
  member.

Variants (all members see the same batch of 64; samples/s counts K*64):
  loop          K models and K AdamW optimizers, one after the other, eager.
  loop-compile  the same, forward + loss under torch.compile (default mode;
                one compiled function shared by the K models).
  vmap          torch.func.stack_module_state + torch.func.vmap(functional_call)
                (randomness="different"); the K members' stacked parameters
                are leaves of one autograd graph (sum of member losses ->
                backward gives each member its own gradient); per-member
                global-norm clipping on the stacked gradients; one AdamW over
                the stacked tensors (elementwise, so the same as K AdamWs).
                BatchNorm's running-stat buffers are stacked too, so their
                in-place update is a batched update.
  vmap-compile  the vmapped forward + loss under torch.compile.
  vmap-math, vmap-compile-math
                the two above with scaled_dot_product_attention held to its
                MATH backend (torch.nn.attention.sdpa_kernel). On CUDA the
                default picks the memory-efficient kernel, whose backward
                fails under vmap ("LSE is not correctly aligned (strideH)",
                H100, torch 2.11, 2026-11-26; a known limitation noted in
                pytorch/pytorch#191085); the math backend is plain matmuls
                and softmax, which vmap batches.
A variant that fails keeps its row: the 'error' field of the JSON line holds
the exception's first line.

The batch, timing, device handling, TF32-off and peak memory follow
benchmarks/w1_torch.py (its GCNEncoder, mlp and load_batch are reused;
timing, memory and the JSON line come from benchmarks/common.py, as there).
"""

import argparse
import contextlib
import copy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # pylint: disable=g-import-not-at-top
from torch import nn
import torch.nn.functional as F
import torch_geometric

from common import (W2_TORCH_VARIANTS, add_step_args, emit_result,
                    run_guarded, time_torch_step, torch_setup, torch_sync)
import w1_data
from w1_torch import GCNEncoder, load_batch, mlp, normalize_graphs

WIDTH, HEADS, NUM_CLASSES = 512, 8, 2
SMOOTHING, ALPHA = 0.2, 0.2


class W2Model(nn.Module):

  def __init__(self, w=WIDTH, heads=HEADS, num_classes=NUM_CLASSES,
               dropout=0.3):
    super().__init__()
    self.crystal = GCNEncoder(3, (w, w, w))
    self.kspace = GCNEncoder(64, (w, w, w))
    self.crystal_proj = nn.Linear(2 * w, w)
    self.kspace_proj = nn.Linear(2 * w, w)
    self.scalar = mlp((10, 256, w))
    self.decomp = mlp((64, 256, w))
    self.tokens = nn.ModuleList(nn.Linear(w, w) for _ in range(4))
    self.cross = nn.ModuleList(
        nn.MultiheadAttention(w, heads, batch_first=True) for _ in range(4))
    self.attention = nn.MultiheadAttention(w, heads, batch_first=True)
    dims = (4 * w, 1024, 512, 256, 128)
    layers = []
    for i in range(len(dims) - 1):
      layers += [nn.Linear(dims[i], dims[i + 1]), nn.BatchNorm1d(dims[i + 1]),
                 nn.ReLU(), nn.Dropout(dropout)]
    self.head = nn.Sequential(*layers, nn.Linear(dims[-1], num_classes))

  def forward(self, cx, cei, cb, kx, kei, kb, scalar, decomp, present,
              perm, lam):
    b = scalar.shape[0]
    mix = lambda x: lam * x + (1 - lam) * x[perm]
    embs = [mix(self.crystal_proj(self.crystal(cx, cei, cb, b))),
            mix(self.kspace_proj(self.kspace(kx, kei, kb, b))),
            self.scalar(mix(scalar)), self.decomp(mix(decomp))]
    tokens = torch.stack([p(e) for p, e in zip(self.tokens, embs)], dim=1)
    tokens = tokens * present[..., None]                    # [B, 4, 512]
    out = []
    for i, att in enumerate(self.cross):
      q = tokens[:, i:i + 1]
      kv = torch.cat([tokens[:, :i], tokens[:, i + 1:]], dim=1)  # [B, 3, 512]
      a, _ = att(q, kv, kv, need_weights=False)
      out.append(q + a)
    tokens = torch.cat(out, dim=1) * present[..., None]
    a, _ = self.attention(tokens, tokens, tokens, need_weights=False)
    fused = (tokens + a) * present[..., None]
    return self.head(fused.flatten(1))                      # [B, 2]


def soft_targets(label, perm, lam):
  y = F.one_hot(label, NUM_CLASSES).float()
  y = y * (1 - SMOOTHING) + SMOOTHING / NUM_CLASSES
  return lam * y + (1 - lam) * y[perm]


def objective(model, inputs, label, perm, lam):
  logits = model(*inputs, perm, lam)
  return F.cross_entropy(logits.float(), soft_targets(label, perm, lam))


def mixup_draw(k, b, device, gen):
  """Per member: a partner permutation [K, B] and lam [K] ~ Beta(a, a)."""
  lam = torch.distributions.Beta(ALPHA, ALPHA).sample((k,))
  perm = torch.stack([torch.randperm(b, generator=gen) for _ in range(k)])
  return perm.to(device), lam.to(device)


def build_loop(args, device, k, inputs, label):
  models = [W2Model().to(device).train() for _ in range(k)]
  fused = device.type == "cuda"
  opts = [torch.optim.AdamW(m.parameters(), lr=2e-4, weight_decay=1e-4,
                            **({"fused": True} if fused else {}))
          for m in models]
  loss_fn = torch.compile(objective) if args.variant == "loop-compile" \
      else objective
  gen = torch.Generator().manual_seed(1)
  b = label.shape[0]

  def step():
    perm, lam = mixup_draw(k, b, device, gen)
    graphs = normalize_graphs(inputs)  # once for all members
    losses = []
    for i, (m, opt) in enumerate(zip(models, opts)):
      opt.zero_grad(set_to_none=True)
      loss = loss_fn(m, graphs, label, perm[i], lam[i])
      loss.backward()
      torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
      opt.step()
      losses.append(loss.detach())
    return torch.stack(losses)

  return step, sum(p.numel() for p in models[0].parameters()), \
      "fused" if fused else "foreach"


def build_vmap(args, device, k, inputs, label):
  from torch.func import functional_call, stack_module_state, vmap  # pylint: disable=g-import-not-at-top
  models = [W2Model().to(device).train() for _ in range(k)]
  params, buffers = stack_module_state(models)  # dicts of [K, ...] tensors
  base = copy.deepcopy(models[0]).to("meta")
  n_params = sum(p.numel() for p in models[0].parameters())
  del models
  # stack_module_state returns leaves that require grad (params); buffers
  # (BatchNorm running stats, num_batches_tracked) are plain stacked tensors.
  plist = list(params.values())
  fused = device.type == "cuda"
  opt = torch.optim.AdamW(plist, lr=2e-4, weight_decay=1e-4,
                          **({"fused": True} if fused else {}))

  def member_loss(p, bufs, graphs, perm, lam):
    logits = functional_call(base, (p, bufs), (*graphs, perm, lam))
    return F.cross_entropy(logits.float(), soft_targets(label, perm, lam))

  vloss = vmap(member_loss, in_dims=(0, 0, None, 0, 0),
               randomness="different")
  if "compile" in args.variant:
    vloss = torch.compile(vloss)
  if args.variant.endswith("-math"):
    from torch.nn.attention import SDPBackend, sdpa_kernel  # pylint: disable=g-import-not-at-top
    backend = lambda: sdpa_kernel(SDPBackend.MATH)
  else:
    backend = contextlib.nullcontext
  gen = torch.Generator().manual_seed(1)
  b = label.shape[0]

  def clip_per_member(max_norm=1.0):
    sq = sum(p.grad.reshape(k, -1).pow(2).sum(1) for p in plist)  # [K]
    coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for p in plist:
      p.grad.mul_(coef.view((k,) + (1,) * (p.grad.ndim - 1)))

  def step():
    perm, lam = mixup_draw(k, b, device, gen)
    opt.zero_grad(set_to_none=True)
    with backend():  # the forward picks the kernel; backward follows it
      losses = vloss(params, buffers, normalize_graphs(inputs), perm,
                     lam)                     # [K]
    losses.sum().backward()
    with torch.no_grad():
      clip_per_member()
    opt.step()
    return losses.detach()

  return step, n_params, "fused" if fused else "foreach"


def run(args, res):
  device = torch_setup(args.device, res)
  t0 = time.perf_counter()
  inputs, label = load_batch(device)
  torch_sync(device)
  res["data_s"] = time.perf_counter() - t0

  k = args.members
  build = build_vmap if args.variant.startswith("vmap") else build_loop
  step, res["n_params_per_member"], res["adamw"] = build(
      args, device, k, inputs, label)

  time_torch_step(res, args, device, step, k * w1_data.BATCH, members=k)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--variant", default="loop", choices=W2_TORCH_VARIANTS)
  p.add_argument("--members", type=int, default=5, help="K")
  p.add_argument("--device", default="", help="cuda | cpu (default: auto)")
  add_step_args(p, "the first one")
  args = p.parse_args(argv)

  res = {"workload": "W2", "impl": "pytorch+pyg", "precision": "fp32",
         "variant": args.variant, "members": args.members,
         "loadavg_1min_start": os.getloadavg()[0],
         "versions": {"torch": torch.__version__,
                      "torch_geometric": torch_geometric.__version__}}
  run_guarded(run, args, res)
  res["loadavg_1min_end"] = os.getloadavg()[0]
  emit_result(res, args.out)


if __name__ == "__main__":
  main()
