"""Catalog records and loaders: GPUs, instances, precisions, model shapes; data first, extensible with --catalog."""
