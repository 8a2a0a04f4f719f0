"""Multi-run procedures built on the one trainer (ablations, ...)."""
