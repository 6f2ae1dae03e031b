"""Video: reading, writing, side-by-side layouts, and the metrics.

- :mod:`signgen.video.io`: ``read_video`` (mp4 and other containers via decord or PyAV,
  PHOENIX frame folders and globs), ``write_video`` (H.264 mp4), ``write_gif``, ``video_info``.
- :mod:`signgen.video.layout`: ``side_by_side`` labelled comparison videos.
- :mod:`signgen.video.metrics`: SSIM (two named conventions), PSNR, temporal difference
  error, Fréchet distance and its streaming accumulator.
- :mod:`signgen.video.features` (imports torch): the FID, FID-VID and FVD feature
  extractors, with the networks in :mod:`signgen.video.resnet3d` and :mod:`signgen.video.i3d`.

Frames at every boundary are uint8 RGB arrays (T, H, W, 3). Nothing here imports torch
except the feature modules.
"""
