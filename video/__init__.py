"""Video: reading, writing, side-by-side layouts, and the metrics."""
