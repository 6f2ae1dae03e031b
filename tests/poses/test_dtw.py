import numpy as np
import pytest

from signgen.poses.dtw import corpus_dtw_mje, dtw_alignment, dtw_mje, pose_dtw_mje
from signgen.errors import SigngenError
from signgen.poses.holistic import pose_from_arrays


def smooth_sequence(frames: int, joints: int = 178, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(joints, 2))
    t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
    return (base + 0.3 * np.sin(t + rng.uniform(0, 2 * np.pi, size=(joints, 2)))).astype(np.float32)


def warping_paths(rows: int, cols: int):
    """Every monotone continuous path from (0, 0) to (rows-1, cols-1)."""
    def extend(path):
        i, j = path[-1]
        if (i, j) == (rows - 1, cols - 1):
            yield path
            return
        for di, dj in ((1, 1), (1, 0), (0, 1)):
            if i + di < rows and j + dj < cols:
                yield from extend(path + [(i + di, j + dj)])
    yield from extend([(0, 0)])


def test_identical_sequences_score_zero():
    sequence = smooth_sequence(40)
    assert dtw_mje(sequence, sequence) == 0.0


def test_repeating_frames_does_not_change_the_error():
    sequence = smooth_sequence(30)
    warped = np.repeat(sequence, np.random.default_rng(1).integers(1, 4, size=30), axis=0)
    assert len(warped) > len(sequence)
    assert dtw_mje(warped, sequence) == pytest.approx(0.0, abs=1e-12)
    assert dtw_mje(sequence, warped) == pytest.approx(0.0, abs=1e-12)


def test_matches_brute_force_over_all_warping_paths():
    rng = np.random.default_rng(3)
    prediction = rng.normal(size=(4, 5, 2))
    reference = rng.normal(size=(5, 5, 2))
    best_cost, best_path = np.inf, None
    for path in warping_paths(4, 5):
        cost = sum(np.linalg.norm((prediction[i] - reference[j]).ravel()) for i, j in path)
        if cost < best_cost:
            best_cost, best_path = cost, path
    expected = np.mean([np.linalg.norm(prediction[i] - reference[j], axis=-1).mean() for i, j in best_path])

    alignment = dtw_alignment(prediction, reference)
    assert list(zip(alignment.prediction_frames, alignment.reference_frames)) == best_path
    assert alignment.mje == pytest.approx(expected, rel=1e-9)


def test_missing_points_are_left_out_not_counted_as_errors():
    sequence = smooth_sequence(20)
    corrupted = sequence.copy()
    confidence = np.ones(sequence.shape[:2], dtype=np.float32)
    corrupted[:, 150:] = 1e6  # garbage coordinates behind a zero confidence
    confidence[:, 150:] = 0
    assert dtw_mje(corrupted, sequence, prediction_confidence=confidence) == pytest.approx(0.0, abs=1e-9)
    # A frame without any visible point is dropped, not aligned at (0, 0).
    confidence_with_blank = np.ones((21, 178), dtype=np.float32)
    confidence_with_blank[10] = 0
    with_blank = np.insert(sequence, 10, 0.0, axis=0)
    assert dtw_mje(with_blank, sequence, prediction_confidence=confidence_with_blank) == pytest.approx(0.0, abs=1e-9)


def test_constant_offset_gives_its_length():
    sequence = smooth_sequence(25)
    assert dtw_mje(sequence + np.array([0.3, 0.4], dtype=np.float32), sequence) == pytest.approx(0.5, rel=1e-5)


def test_corpus_mean_pools_aligned_joints():
    a = smooth_sequence(10)
    long_reference = smooth_sequence(30, seed=2)
    short = dtw_alignment(a + 0.1, a)
    long = dtw_alignment(long_reference + 1.0, long_reference)
    pooled = corpus_dtw_mje([short, long])
    assert short.mje < pooled < long.mje
    assert pooled == pytest.approx((short.joint_error_sum + long.joint_error_sum) / (short.joint_count + long.joint_count))


def test_poses_are_compared_in_shoulder_widths_whatever_their_frame():
    sequence = smooth_sequence(20) * 10 + 100  # pixels
    confidence = np.ones(sequence.shape[:2], dtype=np.float32)
    pose = pose_from_arrays(sequence, confidence, 25, 640, 480)
    moved = pose_from_arrays(sequence * 2.5 + 40, confidence, 25, 1280, 960)
    assert pose_dtw_mje(moved, pose) == pytest.approx(0.0, abs=1e-5)


def test_shape_mismatch_is_a_user_error():
    with pytest.raises(SigngenError):
        dtw_mje(np.zeros((5, 178, 2)), np.zeros((5, 100, 2)))
