"""Batch evaluation (``signgen eval``): the per-video run, the shards of a ``torchrun`` job,
and the summary report."""
