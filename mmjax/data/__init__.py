"""Datasets (TFDS builders), padding to fixed budgets and batching."""
