"""Losses, schedules, optimizers, metrics and the train/eval steps."""
