"""Training: one driver (``driver.py``) and the per-stage objectives with their save/load,
plus pickle-free checkpoints."""
