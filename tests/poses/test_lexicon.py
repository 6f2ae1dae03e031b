"""Lexicon index.csv reading, lookups, clip loading and the bundled fingerspelling lexicon."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from signgen.errors import SigngenError
from signgen.poses import lexicon as lexicon_module
from signgen.poses.holistic import pose_arrays
from signgen.poses.lexicon import COLUMNS, Lexicon, default_lexicon, write_compact_lexicon

FIXTURE = Path(__file__).parents[1] / "data" / "lexicon"
HEADER = ",".join(COLUMNS)
FLOAT16_PIXEL = 0.25  # float16 spacing for values in [256, 1024)


def write_csv(folder: Path, *rows: str, header: str = HEADER) -> Path:
    path = folder / "index.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def copy_fixture(folder: Path) -> Path:
    shutil.copytree(FIXTURE / "gsg", folder / "gsg")
    return folder


def fixture_path(gloss: str) -> str:
    return Lexicon.from_csv(FIXTURE / "index.csv").lookup(gloss).path.relative_to(FIXTURE.resolve()).as_posix()


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_lookup_is_case_insensitive_and_per_language():
    lexicon = Lexicon.from_csv(FIXTURE / "index.csv")
    assert len(lexicon) == 5 and lexicon.languages == {"gsg"}
    assert lexicon.lookup("h") is lexicon.lookup("H")
    assert lexicon.lookup("h").gloss == "H"
    assert lexicon.lookup("H", language="GSG") is lexicon.lookup("H")
    assert lexicon.lookup("H", language="ase") is None
    assert lexicon.lookup("B") is None
    assert lexicon.lookup("H").path.is_file()


def test_umlauts_match_phoenix_spellings_and_exact_spelling_wins(tmp_path):
    path = write_csv(tmp_path,
                     "a.pose,de,gsg,0,0,schön,SCHÖN,0",
                     "b.pose,de,gsg,0,0,groß,GROß,0",
                     "c.pose,de,gsg,0,0,süß,SÜSS,0",
                     "d.pose,de,gsg,0,0,kuehl,KUEHL,0",
                     "e.pose,de,gsg,0,0,kühl,KÜHL,0")
    lexicon = Lexicon.from_csv(path)
    assert lexicon.lookup("SCHOEN").gloss == "SCHÖN"
    assert lexicon.lookup("schoen").gloss == "SCHÖN"
    assert lexicon.lookup("GROSS").gloss == "GROß"
    assert lexicon.lookup("SÜß").gloss == "SÜSS"
    # Both spellings present: each finds its own row.
    assert lexicon.lookup("KUEHL").gloss == "KUEHL"
    assert lexicon.lookup("kühl").gloss == "KÜHL"
    # Decomposed umlaut (a + combining diaeresis) is the same gloss.
    assert lexicon.lookup("SCHO\u0308N").gloss == "SCHÖN"


def test_lower_priority_wins_then_earlier_row(tmp_path):
    path = write_csv(tmp_path,
                     "late.pose,de,gsg,0,0,regen,REGEN,2",
                     "best.pose,de,gsg,0,0,regen,REGEN,1",
                     "tie.pose,de,gsg,0,0,regen,REGEN,1",
                     "other.pose,de,sgg,0,0,regen,REGEN,0",
                     "blank.pose,de,gsg,0,0,sonne,SONNE,")
    lexicon = Lexicon.from_csv(path)
    assert lexicon.lookup("regen").path.name == "best.pose"
    assert lexicon.lookup("regen", "sgg").path.name == "other.pose"
    assert lexicon.lookup("SONNE").priority == 0


def test_index_is_built_once_not_per_lookup(tmp_path, monkeypatch):
    rows = [f"clip{i}.pose,de,gsg,0,0,w{i},GLOSS{i},0" for i in range(200)]
    lexicon = Lexicon.from_csv(write_csv(tmp_path, *rows))
    calls = []
    original = lexicon_module.folded_key
    monkeypatch.setattr(lexicon_module, "folded_key", lambda gloss: calls.append(gloss) or original(gloss))
    for i in range(50):
        assert lexicon.lookup(f"gloss{i}").gloss == f"GLOSS{i}"
    assert lexicon.lookup("NOPE") is None
    assert len(calls) <= 1  # only the miss needs the folded key, and never per entry


@pytest.mark.parametrize("clip", ["../outside.pose", "gsg/../../outside.pose", "/etc/outside.pose"])
def test_clip_path_leaving_the_folder_is_refused(tmp_path, clip):
    folder = tmp_path / "lexicon"
    folder.mkdir()
    (tmp_path / "outside.pose").write_bytes(b"x")
    with pytest.raises(SigngenError) as excinfo:
        Lexicon.from_csv(write_csv(folder, f"{clip},de,gsg,0,0,a,A,0"))
    message = one_line_error(excinfo)
    assert "leaves the lexicon folder" in message and "line 2" in message


def test_missing_columns_are_named(tmp_path):
    path = write_csv(tmp_path, "a.pose,de,gsg,0,0,A", header="path,spoken_language,signed_language,start,end,words")
    with pytest.raises(SigngenError) as excinfo:
        Lexicon.from_csv(path)
    message = one_line_error(excinfo)
    assert "glosses, priority" in message
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SigngenError, match="lacks columns path, spoken_language"):
        Lexicon.from_csv(empty)


@pytest.mark.parametrize("row, problem", [
    ("a.pose,de,gsg,500,400,a,A,0", "bad span"),
    ("a.pose,de,gsg,0,0,a,A,first", "priority is not a number"),
    ("a.pose,de,gsg,0,0,a,,0", "empty glosses"),
    ("a.pose,de,gsg,0,0,a,A,0,extra", "expected 8 fields"),
    ("a.mp4,de,gsg,0,0,a,A,0", "neither .pose nor .npz"),
])
def test_bad_rows_are_one_line_errors(tmp_path, row, problem):
    with pytest.raises(SigngenError) as excinfo:
        Lexicon.from_csv(write_csv(tmp_path, row))
    assert problem in one_line_error(excinfo)


def test_missing_clip_file_is_named(tmp_path):
    lexicon = Lexicon.from_csv(write_csv(tmp_path, "gsg/missing.pose,de,gsg,0,0,a,A,0"))
    with pytest.raises(SigngenError) as excinfo:
        lexicon.clip(lexicon.lookup("A"))
    assert str(tmp_path / "gsg" / "missing.pose") in one_line_error(excinfo)


def test_missing_index_is_an_error(tmp_path):
    with pytest.raises(SigngenError, match="lexicon index not found"):
        Lexicon.from_csv(tmp_path / "index.csv")


def test_clip_is_cut_to_its_milliseconds_and_cached(tmp_path):
    copy_fixture(tmp_path)
    h = fixture_path("H")
    lexicon = Lexicon.from_csv(write_csv(tmp_path, f"{h},de,gsg,0,0,h,H,0", f"{h},de,gsg,200,600,wave,WINKEN,0"))
    whole = lexicon.clip(lexicon.lookup("H"))
    xy, confidence = pose_arrays(whole)
    assert xy.shape[1:] == (178, 2) and whole.body.fps == 30
    cut_xy, cut_confidence = pose_arrays(lexicon.clip(lexicon.lookup("WINKEN")))
    # 200 ms and 600 ms at 30 fps are frames 6 and 18.
    np.testing.assert_array_equal(cut_xy, xy[6:18])
    np.testing.assert_array_equal(cut_confidence, confidence[6:18])
    # Cached: the file is not needed again, and each call gets its own Pose.
    (tmp_path / h).unlink()
    whole.body.data[:] = -1  # a caller changing its Pose does not change the cache
    again = lexicon.clip(lexicon.lookup("H"))
    assert again is not whole
    np.testing.assert_array_equal(pose_arrays(again)[0], xy)
    assert Lexicon.from_csv(tmp_path).lookup("WINKEN").start_ms == 200  # a folder means its index.csv


def test_end_past_the_clip_is_clamped():
    lexicon = Lexicon.from_csv(FIXTURE / "index.csv")
    entry = lexicon.lookup("H")
    frames = lexicon.clip(entry).body.data.shape[0]
    assert entry.end_ms / 1000 * 30 > frames  # the source's end time lies past the clip
    assert frames > 20


def test_span_outside_the_clip_is_an_error(tmp_path):
    copy_fixture(tmp_path)
    lexicon = Lexicon.from_csv(write_csv(tmp_path, f"{fixture_path('H')},de,gsg,60000,61000,h,H,0"))
    with pytest.raises(SigngenError, match="is empty in its clip"):
        lexicon.clip(lexicon.lookup("H"))


def test_compact_lexicon_round_trip(tmp_path):
    index = write_compact_lexicon(FIXTURE / "index.csv", tmp_path / "compact")
    compact = Lexicon.from_csv(index)
    source = Lexicon.from_csv(FIXTURE / "index.csv")
    assert (tmp_path / "compact" / "LICENSE").read_text() == (FIXTURE / "LICENSE").read_text()
    assert sorted(e.gloss for e in compact) == sorted(e.gloss for e in source)
    for entry in compact:
        assert entry.path.suffix == ".npz" and (entry.start_ms, entry.end_ms) == (0, 0)
        xy, confidence = pose_arrays(compact.clip(entry))
        want_xy, want_confidence = pose_arrays(source.clip(source.lookup(entry.gloss)))
        np.testing.assert_array_equal(confidence > 0, want_confidence > 0)
        np.testing.assert_allclose(xy, want_xy, atol=FLOAT16_PIXEL)
        np.testing.assert_allclose(confidence, want_confidence, atol=0.5 / 255 + 1e-6)


def test_bad_compact_clip_is_an_error(tmp_path):
    np.savez(tmp_path / "a.npz", xy=np.zeros((3, 10, 2), np.float16), confidence=np.zeros((3, 10), np.uint8),
             fps=np.float32(25), size=np.array([10, 10]))
    (tmp_path / "b.npz").write_bytes(b"not a zip")
    lexicon = Lexicon.from_csv(write_csv(tmp_path, "a.npz,de,gsg,0,0,a,A,0", "b.npz,de,gsg,0,0,b,B,0"))
    with pytest.raises(SigngenError, match="wrong shape"):
        lexicon.clip(lexicon.lookup("A"))
    with pytest.raises(SigngenError, match="not a readable compact clip"):
        lexicon.clip(lexicon.lookup("B"))


def test_bundled_default_is_the_dgs_fingerspelling_alphabet():
    lexicon = default_lexicon()
    assert lexicon is default_lexicon()
    letters = {entry.gloss.upper() if len(entry.gloss.upper()) == 1 else entry.gloss for entry in lexicon}
    assert letters == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") | {"Ä", "Ö", "Ü", "ß"}
    assert lexicon.languages == {"gsg"}
    assert (lexicon_module.DEFAULT_LEXICON_CSV.parent / "LICENSE").read_text().startswith("MIT License")
    for entry in lexicon:
        assert entry.path.suffix == ".npz" and entry.path.stat().st_size < 40_000
    # The bundled clips are the shared source clips, reduced: compare with the fixture copies.
    source = Lexicon.from_csv(FIXTURE / "index.csv")
    for gloss in ("H", "ö"):
        xy, confidence = pose_arrays(lexicon.clip(lexicon.lookup(gloss)))
        want_xy, want_confidence = pose_arrays(source.clip(source.lookup(gloss)))
        np.testing.assert_array_equal(confidence > 0, want_confidence > 0)
        np.testing.assert_allclose(xy, want_xy, atol=FLOAT16_PIXEL)
