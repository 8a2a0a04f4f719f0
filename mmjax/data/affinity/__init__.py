"""Protein-ligand binding affinity data (reference recipe 002): measured Ki
values from ChEMBL, receptor pockets, modelled poses, voxel grids and
ligand graphs."""
