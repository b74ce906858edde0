"""Batch plans: the plan file, per-job options and pruning, the solve flow, realisation, re-check and diagnosis."""
