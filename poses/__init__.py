"""Keypoints: .pose I/O, the 178-point holistic set, normalisation, resampling, stitching, rasterising and drawing."""
