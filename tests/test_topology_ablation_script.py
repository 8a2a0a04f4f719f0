"""scripts/topology_ablation.py: every variant is the recipe with one
ingredient changed and the same study overrides."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import topology_ablation  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_variants_share_the_overrides_and_differ_in_the_encoder():
  full = topology_ablation.variant_config("full", 3, 4000)
  assert (full.num_epochs, full.dataset.max_train) == (3, 4000)
  enc = full.model.encoders.kspace
  assert (enc.neighbourhood, enc.inputs, enc.pooling) == (
      "plaquette", "invariants", "sum")
  assert topology_ablation.variant_config(
      "max", 3, 4000).model.encoders.kspace.pooling == "max"
  assert topology_ablation.variant_config(
      "node", 3, 4000).model.encoders.kspace.neighbourhood == "node"


def test_table_and_bad_variant(capsys):
  st = {"mean": 0.5, "sd": 0.01, "members": [0.5]}
  row = {"train": st, "val": st, "test": st, "train_time_s": 12.0}
  assert "| node | 50.00 ± 1.00 |" in topology_ablation.markdown({"node": row})
  with pytest.raises(SystemExit):
    topology_ablation.main(["--workdir", "unused", "--variants", "nope"])
  assert "--variants: 'nope'" in capsys.readouterr().err
