"""benchmarks/bench_frame_ablation.py: the hands_found and hands_placed columns count the hands
MediaPipe finds where the driving pose shows them, and those it finds in place."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from bench_frame_ablation import COLUMNS, evaluate, found_hands, ground_truth, scored_frames  # noqa: E402


def blank(sample, frames, xy, confidence, targets):
    return np.full_like(frames[targets], 128)


def test_hands_found_is_high_on_the_corpus_frames_and_zero_on_blank_ones(synthsign_corpus):
    from signgen.corpora.phoenix import PhoenixCorpus

    samples = PhoenixCorpus(synthsign_corpus).split("test")
    truth, _ = evaluate(ground_truth, samples, stride=1, max_frames=24, detect_hands=True)
    nothing, _ = evaluate(blank, samples, stride=1, max_frames=24, detect_hands=True)
    assert truth["hands_found"] > 0.3 and nothing["hands_found"] == 0.0
    assert 0.3 < truth["hands_placed"] <= truth["hands_found"] and nothing["hands_placed"] == 0.0
    # The same frames against a pose whose hands lie elsewhere: found, but not in place.
    sample = samples[0]
    frames, xy, confidence, targets, _ = scored_frames(sample, 1, 24)
    shown, found, placed = found_hands(frames[targets], xy[targets], confidence[targets])
    moved = found_hands(frames[targets], xy[targets] + (0.0, 80.0), confidence[targets])
    assert shown > 0 and placed > 0 and moved[1] == found and moved[2] == 0
    assert truth["ssim_rgb"] == 1.0 and set(truth) == {*COLUMNS, "hands_found", "hands_placed"}
    plain, _ = evaluate(ground_truth, samples, stride=1, max_frames=24)
    assert "hands_found" not in plain
