"""Inference: the one sampling loop (frame-wise or in windows), guidance, signer-image and
gloss-to-pose loading, ``SignPipeline`` and writing renders. Never imports ``signgen.training``."""
