"""Back-translation: WER and BLEU-4 over glosses, ``signgen eval --recogniser`` (rows,
summary, refusals) and ``signgen recognise``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from signgen.corpora.phoenix import PhoenixCorpus
from signgen.errors import SigngenError
from signgen.evaluation.back_translation import EMBEDDED_RECOGNISERS, is_synthsign, load_readers
from signgen.models.recogniser import Recogniser
from signgen.poses.holistic import pose_from_arrays
from signgen.poses.io import write_pose
from signgen.video.readability import (
    bleu_statistics,
    corpus_bleu,
    corpus_wer,
    edit_distance,
    pool_readings,
    readability_ratio,
    reading_row,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALPHABET = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ["Ä", "Ö", "Ü", "ß"]
TINY = {"hidden_size": 8, "conv_layers": 1, "temporal_layers": 1, "cnn_channels": [4], "hand_size": 8,
        "frame_size": [10, 8], "frame_stride": 2, "dropout": 0.0}


def test_wer_is_levenshtein_over_glosses_pooled_over_videos():
    assert edit_distance(["A", "B", "C"], ["A", "C"]) == 1
    assert edit_distance(["A", "B"], ["X", "A", "B", "Y"]) == 2
    assert edit_distance(["schön"], ["SCHÖN"]) == 0
    assert corpus_wer([["A", "B", "C"], ["D"]], [["A", "C"], []]) == pytest.approx(2 / 4)
    assert corpus_wer([["A"]], [["B", "C", "D"]]) == 3.0  # insertions can take WER past 100 %
    assert corpus_wer([[]], [["A"]]) is None


def test_bleu4_is_one_for_a_perfect_reading_and_penalises_short_ones():
    references = [["A", "B", "C", "D", "E"], ["F", "G", "H", "I"]]
    assert corpus_bleu(references, references) == pytest.approx(1.0)
    assert corpus_bleu(references, [[], []]) == 0.0
    # every n-gram of the hypothesis is right, but it is 8 glosses for 9: brevity penalty e^(1 - 9/8)
    short = [["A", "B", "C", "D"], ["F", "G", "H", "I"]]
    assert corpus_bleu(references, short) == pytest.approx(np.exp(1 - 9 / 8))
    assert bleu_statistics(["A", "A"], ["A", "A", "A"])["matches"][0] == 2  # clipped counts


def test_pooled_readings_and_the_readability_ratio():
    rows = [reading_row(["A", "B"], ["A", "B"]), reading_row(["C", "D"], ["C"])]
    pooled = pool_readings(rows)
    assert pooled["wer"] == pytest.approx(0.25) and pooled["reference_glosses"] == 4 and pooled["videos"] == 2
    assert readability_ratio(0.5, 0.0) == pytest.approx(0.5)
    assert readability_ratio(1.4, 0.1) == 0.0
    assert readability_ratio(0.5, 1.0) is None


# ------------------------------------------------------------------ eval


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    """Random tiny readers of every SynthSign letter, in one folder as video/ and pose/."""
    root = tmp_path_factory.mktemp("readers") / "readers"
    torch.manual_seed(0)
    for reader in ("video", "pose"):
        Recogniser(glosses=ALPHABET, reader=reader, **TINY).save_folder(root / reader)
    return root


def eval_args(corpus, model, out, *extra):
    return ["eval", "--data", corpus, "--split", "test", "--model", model, "--out", out, "--steps", "1",
            "--no-progress", "--fid-frames-per-video", "0", "--no-pose-fidelity", *extra]


def test_eval_rows_and_summary_carry_the_back_translation(synthsign_corpus, tiny_pipelines, readers, tmp_path, run_cli):
    out = tmp_path / "run"
    code, stdout, err = run_cli(*eval_args(synthsign_corpus, tiny_pipelines["frame_only"], out, "--recogniser", readers))
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "per_video.jsonl").read_text().splitlines()]
    sample = PhoenixCorpus(synthsign_corpus).split("test")[0]
    reading = rows[0]["readability"]
    assert set(reading) == {"video", "pose", "dtw_mje"}
    assert set(reading["video"]) == {"reference", "generated"} and set(reading["pose"]) == {"driving", "generated"}
    for part in (reading["video"]["reference"], reading["pose"]["generated"]):
        assert part["reference_length"] == len(sample.glosses) and set(part["glosses"]) <= set(ALPHABET)
        assert part["edits"] == edit_distance(sample.glosses, part["glosses"])
    figures = json.loads((out / "summary.json").read_text())["metrics"]["readability"]
    assert figures["video"]["generated"]["wer"] == pytest.approx(reading["video"]["generated"]["wer"])
    assert figures["video"]["readability"] == readability_ratio(figures["video"]["generated"]["wer"],
                                                                figures["video"]["reference"]["wer"])
    assert {"wer", "bleu4", "videos"} <= set(figures["pose"]["driving"])
    assert "value" in figures["dtw_mje"] and "back-translation" in figures["protocol"]
    table = (out / "summary.md").read_text()
    assert "| readability (video reader) |" in table and "| pose reader WER / BLEU-4, generated |" in table
    assert "readability (pose reader)" in stdout


def test_eval_refuses_bad_recognisers_in_one_line_and_writes_nothing(synthsign_corpus, tiny_pipelines, readers, tmp_path,
                                                                       run_cli, cli_error_line):
    out = tmp_path / "run"
    few = tmp_path / "few"
    Recogniser(glosses=["A"], reader="pose", **TINY).save_folder(few)
    for folder, words in ((few, "does not know glosses of this split"),
                          (tiny_pipelines["frame_only"], "not a signgen recogniser folder"),
                          (tmp_path / "nowhere", "folder not found")):
        code, _, err = run_cli(*eval_args(synthsign_corpus, tiny_pipelines["frame_only"], out, "--recogniser", folder))
        assert code == 2 and words in cli_error_line(err)
        assert not out.exists()


def test_readers_are_found_by_default_on_synthsign_only(synthsign_corpus, phoenix_fixture):
    assert is_synthsign(synthsign_corpus) and not is_synthsign(phoenix_fixture)
    assert not load_readers(None, phoenix_fixture)
    embedded = load_readers(None, synthsign_corpus)
    assert embedded.source == "embedded" and embedded.video is not None and embedded.pose is not None
    assert EMBEDDED_RECOGNISERS.is_dir()
    total = sum(path.stat().st_size for path in EMBEDDED_RECOGNISERS.rglob("*") if path.is_file())
    assert total < 8 * 2**20  # a few MB at most, shipped in the package


# ------------------------------------------------------------------ signgen recognise


def test_recognise_prints_the_glosses_on_its_last_line(synthsign_corpus, readers, tmp_path, run_cli):
    sample = PhoenixCorpus(synthsign_corpus).split("test")[0]
    code, out, err = run_cli("recognise", sample.pose_paths[0], "--recogniser", readers / "pose")
    assert code == 0, err
    last = out.splitlines()[-1] if out.strip() else ""
    assert set(last.split()) <= set(ALPHABET)
    code, out, err = run_cli("recognise", sample.pose_paths[0])  # the embedded pose reader
    assert code == 0, err


def test_recognise_refuses_bad_input_in_one_line(synthsign_corpus, readers, tmp_path, run_cli, cli_error_line):
    sample = PhoenixCorpus(synthsign_corpus).split("test")[0]
    empty = tmp_path / "empty.pose"
    write_pose(pose_from_arrays(np.zeros((0, 178, 2), np.float32), np.zeros((0, 178), np.float32), 25, 210, 260), empty)
    empty_folder = tmp_path / "frames"
    empty_folder.mkdir()
    for arguments, words in (((tmp_path / "nothing.mp4",), "not found"),
                             ((empty, "--recogniser", readers / "pose"), ""),
                             ((empty_folder, "--recogniser", readers / "video"), ""),
                             ((sample.pose_paths[0], "--recogniser", readers / "video"), "needs frames"),
                             ((sample.pose_paths[0], "--recogniser", tmp_path), "not a signgen recogniser folder")):
        code, out, err = run_cli("recognise", *arguments)
        assert code == 2, (arguments, out, err)
        assert words in cli_error_line(err)
