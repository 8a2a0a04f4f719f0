"""Flax Linen modules: encoders, fusions, heads and their assembly."""
