"""Gloss-to-pose stitching: trimming, transitions, smoothing, fingerspelling, CLI."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

import signgen.cli.main as cli_main
from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays, pose_from_arrays
from signgen.poses.io import read_pose
from signgen.poses.lexicon import Lexicon, LexiconEntry, default_lexicon
from signgen.poses.stitch import (
    GlossSpan,
    glosses_to_pose,
    parse_glosses,
    prepare_clip,
    signing_frames,
    smooth,
    spell,
    stitch_poses,
    stitch_with_spans,
    transition,
)
from signgen.poses.transform import PHOENIX_FRAMING, Framing

FIXTURE = Path(__file__).parents[1] / "data" / "lexicon" / "index.csv"
HANDS = np.r_[skeleton.LEFT_HAND, skeleton.RIGHT_HAND]


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.from_csv(FIXTURE)


def letters_lexicon(letters: str) -> Lexicon:
    """Lookup-only lexicon (no clip files) with one entry per letter."""
    return Lexicon(LexiconEntry(Path(f"/nowhere/{i}.pose"), "de", "gsg", 0, 0, letter, letter, 0, i + 2)
                   for i, letter in enumerate(letters))


def hand_jumps(xy: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Largest frame-to-frame move of any hand point seen in both frames, per step."""
    seen = (confidence[1:] > 0) & (confidence[:-1] > 0)
    steps = np.where(seen, np.linalg.norm(np.diff(xy, axis=0), axis=-1), 0.0)
    return steps[:, HANDS].max(axis=1)


@pytest.mark.parametrize("seconds", [0.0, 0.2, 0.44])
def test_length_is_trimmed_spans_plus_transitions(lexicon, seconds):
    glosses = "H A L L O".split()
    pose, spans = stitch_with_spans(glosses, lexicon=lexicon, transition_seconds=seconds)
    between = round(seconds * 25)
    trimmed = [prepare_clip(lexicon.clip(lexicon.lookup(g))).body.data.shape[0] for g in glosses]
    assert pose.body.data.shape == (sum(trimmed) + between * (len(glosses) - 1), 1, 178, 2)
    assert [span.gloss for span in spans] == glosses
    assert [span.end - span.start for span in spans] == trimmed
    assert spans[0].start == 0 and spans[-1].end == pose.body.data.shape[0]
    assert all(b.start - a.end == between for a, b in zip(spans, spans[1:]))
    # Trimming really cut something from the 30 fps source clips, which were resampled.
    source_frames = [lexicon.clip(lexicon.lookup(g)).body.data.shape[0] for g in glosses]
    assert all(t <= round(n * 25 / 30) for t, n in zip(trimmed, source_frames))
    assert sum(trimmed) < sum(round(n * 25 / 30) for n in source_frames)


def test_output_is_178_points_at_25_fps_in_the_framing(lexicon):
    framing = Framing(width=320, height=240, shoulder_center=(160.0, 150.0), shoulder_width=100.0)
    pose, spans = stitch_with_spans("H A L O", lexicon=lexicon, framing=framing)
    assert pose.body.fps == 25
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (320, 240)
    assert [len(c.points) for c in pose.header.components] == [8, 128, 21, 21]
    xy, confidence = pose_arrays(pose)
    for span in spans:  # every clip normalised to the same body position and size
        shoulders = xy[span.start:span.end, [skeleton.LEFT_SHOULDER, skeleton.RIGHT_SHOULDER]]
        np.testing.assert_allclose(np.median(shoulders.mean(axis=1), axis=0), framing.shoulder_center, atol=2.0)
        np.testing.assert_allclose(np.median(np.linalg.norm(shoulders[:, 0] - shoulders[:, 1], axis=-1)), 100.0, rtol=0.03)
    assert (confidence[:, skeleton.RIGHT_HAND] > 0).all()  # the signing hand is never lost


def test_no_seam_jump_larger_than_inside_a_clip(lexicon):
    glosses = "H A L L O ö A".split()
    pose, spans = stitch_with_spans(glosses, lexicon=lexicon)
    jumps = hand_jumps(*pose_arrays(pose))
    inside = max(hand_jumps(*pose_arrays(prepare_clip(lexicon.clip(lexicon.lookup(g))))).max() for g in glosses)
    # Steps from the last frame of one clip, through the transition, into the next clip.
    seams = [jumps[a.end - 1:b.start].max() for a, b in zip(spans, spans[1:])]
    assert len(seams) == len(glosses) - 1
    assert max(seams) <= inside, (seams, inside)


def test_smoothing_never_touches_the_face(lexicon):
    clips = [("H", [lexicon.clip(lexicon.lookup("H"))]), ("O", [lexicon.clip(lexicon.lookup("O"))])]
    smoothed, _ = stitch_poses(clips, smoothing=True)
    raw, _ = stitch_poses(clips, smoothing=False)
    smoothed_xy, smoothed_confidence = pose_arrays(smoothed)
    raw_xy, raw_confidence = pose_arrays(raw)
    assert smoothed_xy[:, skeleton.FACE].tobytes() == raw_xy[:, skeleton.FACE].tobytes()
    np.testing.assert_array_equal(smoothed_confidence, raw_confidence)
    for part in (skeleton.BODY, skeleton.RIGHT_HAND):
        change = np.abs(smoothed_xy[:, part] - raw_xy[:, part])
        assert change.max() > 1 and np.median(change) < 1  # smoothed, but lightly (pixels)


def test_smooth_keeps_missing_points_and_short_runs():
    rng = np.random.default_rng(0)
    xy = rng.normal(100, 5, (12, 178, 2)).astype(np.float32)
    confidence = np.ones((12, 178), np.float32)
    confidence[:, skeleton.LEFT_HAND] = 0
    xy[:, skeleton.LEFT_HAND] = 0
    confidence[4:, 0] = 0  # a 4-frame run, shorter than the window
    confidence[9:, 2] = 0  # a 9-frame run, then missing
    out = smooth(xy, confidence)
    np.testing.assert_array_equal(out[:, skeleton.LEFT_HAND], 0)
    np.testing.assert_array_equal(out[:, 0], xy[:, 0])
    np.testing.assert_array_equal(out[9:, 2], xy[9:, 2])
    assert np.abs(out[:9, 2] - xy[:9, 2]).max() > 0.1
    assert out[:, skeleton.FACE].tobytes() == xy[:, skeleton.FACE].tobytes()
    assert np.abs(out[:, skeleton.RIGHT_HAND] - xy[:, skeleton.RIGHT_HAND]).max() > 0.1
    assert np.diff(out[:, 1], axis=0).std() < np.diff(xy[:, 1], axis=0).std()


def test_transition_eases_and_fades_one_sided_points():
    start_xy = np.zeros((178, 2), np.float32)
    end_xy = np.full((178, 2), 10.0, np.float32)
    start_confidence = np.ones(178, np.float32)
    end_confidence = np.ones(178, np.float32)
    start_confidence[skeleton.LEFT_HAND] = 0  # appears in the next clip
    end_confidence[skeleton.RIGHT_HAND] = 0  # disappears in the next clip
    end_confidence[skeleton.FACE.start] = start_confidence[skeleton.FACE.start] = 0  # seen at neither end
    xy, confidence = transition(start_xy, start_confidence, end_xy, end_confidence, 4)
    assert xy.shape == (4, 178, 2) and confidence.shape == (4, 178)
    both = xy[:, 0, 0]
    assert (np.diff(both) > 0).all() and 0 < both[0] < 5 < both[-1] < 10
    assert both[0] == pytest.approx(10 - both[-1])  # symmetric ease
    np.testing.assert_array_equal(xy[:, skeleton.LEFT_HAND], 10.0)  # held where it will be
    np.testing.assert_array_equal(xy[:, skeleton.RIGHT_HAND], 0.0)  # held where it was
    assert (np.diff(confidence[:, skeleton.LEFT_HAND.start]) > 0).all()
    assert (np.diff(confidence[:, skeleton.RIGHT_HAND.start]) < 0).all()
    assert (confidence[:, skeleton.FACE.start] == 0).all()
    assert transition(start_xy, start_confidence, end_xy, end_confidence, 0)[0].shape == (0, 178, 2)


def test_signing_frames_cut_missing_and_lowered_hands():
    frames = 10
    xy = np.zeros((frames, 178, 2), np.float32)
    confidence = np.ones((frames, 178), np.float32)
    confidence[:, skeleton.LEFT_HAND] = 0
    confidence[:2, skeleton.RIGHT_HAND] = 0  # hand not yet seen
    elbow = skeleton.BODY_POINTS.index("RIGHT_ELBOW")
    xy[:, elbow, 1] = 100
    xy[:, skeleton.RIGHT_HAND.start, 1] = [0, 0, 120, 90, 80, 80, 80, 95, 110, 130]  # wrist y: below, above, below
    assert signing_frames(xy, confidence) == slice(3, 8)
    xy[:, skeleton.RIGHT_HAND.start, 1] = 150  # never raised: the frames with a hand
    assert signing_frames(xy, confidence) == slice(2, 10)
    confidence[:, skeleton.RIGHT_HAND] = 0  # no hand at all: whole clip
    assert signing_frames(xy, confidence) == slice(0, 10)


def test_unknown_gloss_is_fingerspelled(lexicon):
    spelled, spans = stitch_with_spans("HALLO", lexicon=lexicon)
    letters, _ = stitch_with_spans("H A L L O", lexicon=lexicon)
    assert spans == [GlossSpan("HALLO", 0, spelled.body.data.shape[0])]
    np.testing.assert_array_equal(pose_arrays(spelled)[0], pose_arrays(letters)[0])


def test_all_unknown_letters_are_named(lexicon):
    with pytest.raises(SigngenError) as excinfo:
        glosses_to_pose("HALLO WELT QUIZ", lexicon=lexicon)
    message = str(excinfo.value)
    assert "\n" not in message
    assert "W E T in WELT" in message and "Q U I Z in QUIZ" in message and "HALLO" not in message


def test_on_missing_error_names_every_gloss_and_skip_drops_them(lexicon):
    with pytest.raises(SigngenError) as excinfo:
        glosses_to_pose("H WETTER A REGEN WETTER", lexicon=lexicon, on_missing="error")
    assert str(excinfo.value).endswith(": WETTER REGEN")
    pose, spans = stitch_with_spans("H WETTER A", lexicon=lexicon, on_missing="skip")
    assert [s.gloss for s in spans] == ["H", "A"]
    with pytest.raises(SigngenError, match="none of the glosses"):
        glosses_to_pose("WETTER", lexicon=lexicon, on_missing="skip")
    with pytest.raises(SigngenError, match="on_missing must be one of"):
        glosses_to_pose("H", lexicon=lexicon, on_missing="guess")


def test_umlaut_spelling_choices():
    lexicon = letters_lexicon("ABCDEFGHIJKLMNOPQRSTUVWXYZäöüß")

    def spelled(gloss: str, lexicon: Lexicon = lexicon) -> str:
        entries, unknown = spell(gloss, lexicon)
        assert not unknown
        return " ".join(entry.gloss for entry in entries)

    assert spelled("SCHOEN") == "S C H ö N"
    assert spelled("KAESE") == "K ä S E"
    assert spelled("GRUEN") == "G R ü N"
    assert spelled("FEUER") == "F E U E R"  # EU diphthong
    assert spelled("BAUER") == "B A U E R"  # AU diphthong
    assert spelled("QUELLE") == "Q U E L L E"
    assert spelled("WASSER") == "W A S S E R"
    assert spelled("GROß") == "G R O ß"
    assert spelled("nord-west") == "N O R D W E S T"
    plain = letters_lexicon("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert spelled("SCHOEN", plain) == "S C H O E N"
    assert spelled("GRÖß", plain) == "G R O E S S"
    assert spell("ZWEI2", plain)[1] == ["2"]


def test_bad_gloss_input():
    for empty in ("", "   ", []):
        with pytest.raises(SigngenError, match="no glosses given"):
            parse_glosses(empty)
    with pytest.raises(SigngenError) as excinfo:
        parse_glosses("REGEN . ?! --")
    assert str(excinfo.value) == "not glosses (no letter or digit): . ?! --"
    assert parse_glosses(["__ON__ MORGEN", "REGEN", "__OFF__"]) == ["MORGEN", "REGEN"]
    with pytest.raises(SigngenError, match="only annotation markers"):
        parse_glosses("__ON__ __OFF__")
    with pytest.raises(SigngenError, match="transition must be a non-negative"):
        glosses_to_pose("H", transition_seconds=-0.1)


def test_language_without_entries_is_an_error(lexicon):
    with pytest.raises(SigngenError, match="no entries for signed language 'ase' \\(it has: gsg\\)"):
        glosses_to_pose("H", lexicon=lexicon, language="ase")


def test_default_lexicon_spells_offline():
    pose = glosses_to_pose("H A L L O")
    assert pose.body.fps == 25 and pose.body.data.shape[2] == 178
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (PHOENIX_FRAMING.width, PHOENIX_FRAMING.height)
    umlauts, spans = stitch_with_spans("SCHOEN GROß", lexicon=default_lexicon())
    assert [s.gloss for s in spans] == ["SCHOEN", "GROß"]


def test_stitch_poses_takes_any_holistic_clips(lexicon):
    clip = lexicon.clip(lexicon.lookup("A"))
    xy, confidence = pose_arrays(clip)
    doubled = pose_from_arrays(xy * 2, confidence, 50.0, 1000, 1000)  # bigger signer, faster camera
    pose, spans = stitch_poses([("A", [clip]), ("A2", [doubled])], transition_seconds=0)
    first, second = (pose_arrays(pose)[0][span.start:span.end] for span in spans)
    assert spans[1].end - spans[1].start == pytest.approx((spans[0].end - spans[0].start) / 2, abs=1)
    np.testing.assert_allclose(np.median(first[:, :2], axis=0), np.median(second[:, :2], axis=0), atol=1.0)


# CLI: only this module's commands, so that the test does not depend on other command modules.
@pytest.fixture
def run_cli(run_cli, monkeypatch):
    """conftest's run_cli, for ``signgen poses from-gloss``."""
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ["gloss"])
    return functools.partial(run_cli, "poses", "from-gloss")


def test_cli_module_is_registered():
    assert "gloss" in cli_main.COMMAND_MODULES
    assert cli_main.COMMAND_MODULES.index("gloss") > cli_main.COMMAND_MODULES.index("poses")


def test_cli_writes_a_pose(run_cli, tmp_path):
    out = tmp_path / "hallo.pose"
    code, stdout, _ = run_cli("HALLO", "--lexicon", str(FIXTURE), "--transition", "0.12", "-o", str(out))
    assert code == 0 and "1 glosses" in stdout
    pose = read_pose(out)
    assert pose.body.fps == 25 and pose.body.data.shape[2] == 178
    expected = glosses_to_pose("HALLO", lexicon=Lexicon.from_csv(FIXTURE), transition_seconds=0.12)
    np.testing.assert_allclose(pose.body.data.filled(0), expected.body.data.filled(0))


def test_cli_bundled_lexicon_and_video(run_cli, tmp_path):
    code, _, err = run_cli("A B", "-o", str(tmp_path / "ab.pose"), "--video", str(tmp_path / "ab.mp4"))
    assert code == 0, err
    assert read_pose(tmp_path / "ab.pose").body.data.shape[2] == 178
    assert (tmp_path / "ab.mp4").stat().st_size > 1000


def _lexicon_with_row(folder: Path, row: str, header: str = "path,spoken_language,signed_language,start,end,words,glosses,priority") -> str:
    folder.mkdir()
    (folder / "index.csv").write_text(f"{header}\n{row}\n", encoding="utf-8")
    return str(folder / "index.csv")


BAD_CLI_INPUT = {
    "empty": (lambda tmp, out: ["  ", "-o", out], "no glosses given"),
    "punctuation": (lambda tmp, out: [". ,", "-o", out], "no letter or digit"),
    "outside": (lambda tmp, out: ["A", "--lexicon", _lexicon_with_row(tmp / "lex", "../a.pose,de,gsg,0,0,a,A,0"), "-o", out],
                "leaves the lexicon folder"),
    "missing clip": (lambda tmp, out: ["A", "--lexicon", _lexicon_with_row(tmp / "lex", "gsg/gone.pose,de,gsg,0,0,a,A,0"), "-o", out],
                     "gsg/gone.pose"),
    "columns": (lambda tmp, out: ["A", "--lexicon", _lexicon_with_row(tmp / "lex", "a.pose,A", header="path,glosses"), "-o", out],
                "lacks columns spoken_language"),
    "letters": (lambda tmp, out: ["X1 Y2", "--lexicon", str(FIXTURE), "-o", out], "X 1 in X1; Y 2 in Y2"),
    "output": (lambda tmp, out: ["A", "-o", str(tmp / "out.mp4")], "must name a .pose file"),
}


@pytest.mark.parametrize("case", BAD_CLI_INPUT)
def test_cli_bad_input_is_one_line_and_exit_2(run_cli, tmp_path, case):
    out = tmp_path / "out.pose"
    make_args, expected = BAD_CLI_INPUT[case]
    code, _, err = run_cli(*make_args(tmp_path, str(out)))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("signgen: error: ") and expected in err
    assert not out.exists() and list(tmp_path.iterdir()) in ([], [tmp_path / "lex"])
