"""Preparing mmjax's own TFDS builders: array_record, built once per
data_dir, a config name checked against the builder's configs; and
reading their per-record columns."""

import numpy as np


def prepare(builder_cls, config_name, data_dir, what, **kwargs):
  """Builds `<builder>/<config_name>` in data_dir if absent (a no-op when
  it is already prepared) and returns the builder.

  Args:
    builder_cls: a tfds GeneratorBasedBuilder subclass.
    config_name: one of builder_cls.BUILDER_CONFIGS' names.
    data_dir: TFDS data directory.
    what: the config key or name an unknown config_name is reported under
      (e.g. 'dataset.variant').
    **kwargs: the builder's own constructor keywords (e.g. a test size).
  """
  names = [c.name for c in builder_cls.BUILDER_CONFIGS]
  if config_name not in names:
    raise ValueError(f"{what}: '{config_name}' is not a {builder_cls.name} "
                     f"config (known: {', '.join(names)})")
  builder = builder_cls(config=config_name, data_dir=data_dir,
                        file_format="array_record", **kwargs)
  builder.download_and_prepare(file_format="array_record")
  return builder


def text(value):
  """A stored TFDS text feature (bytes, or str) as str."""
  return value.decode() if isinstance(value, bytes) else str(value)


def read_index(source, columns):
  """Per-record columns of a stored source, sorted by the records' `id`
  whatever order TFDS stored them in.

  Args:
    source: a random-access TFDS data source.
    columns: {name: (record field, numpy dtype)}; a str dtype reads a text
      field.

  Returns:
    {'ids': str [N], name: [N] for each column, 'rows': int64 [N] (the
    stored row of each sorted record)}.
  """
  ids = []
  cols = {name: [] for name in columns}
  for r in range(len(source)):
    rec = source[r]
    ids.append(text(rec["id"]))
    for name, (field, dtype) in columns.items():
      v = rec[field]
      cols[name].append(text(v) if dtype is str else v)
  order = np.argsort(np.asarray(ids), kind="stable")
  out = {"ids": np.asarray(ids)[order]}
  for name, (_, dtype) in columns.items():
    out[name] = np.asarray(cols[name], dtype)[order]
  out["rows"] = order.astype(np.int64)
  return out
