"""Datasets of the materials recipes (reference recipes 000 and 001).

The example format (`schema`); the synthetic `materials_tb` dataset
(`tight_binding` models, exact `chern` labels, `tb_features`,
`tb_generation`, the `materials_tb` builder); and user folders of CIF files
(`cif_labels`, `cif_structure`, `cif_graphs`, `npz_modalities`,
`cif_material`, the `cif_folder` builder); both as registered datasets
(`registered`). Splits: `mmjax.data.splits`."""
