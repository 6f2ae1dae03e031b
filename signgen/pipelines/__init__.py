"""Inference: ``SignPipeline`` and the steps of a render, one module each (settings,
driving pose, signer photo, conditions, schedulers, denoising, post-processing, folder).
Never imports ``signgen.training``."""
