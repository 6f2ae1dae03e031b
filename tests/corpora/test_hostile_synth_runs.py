"""`signgen data synth` against itself and against absurd settings (issue 26, classes 8
and 11): a second run into the --out another run is writing is refused in one line
naming the holder (it used to delete the first run's half-written video as stale and
crash it); a lock left by a killed run is taken over; more unseen signers than
test_unseen videos (or signers than videos) is refused at once instead of drawing
identities that appear in no video."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time

import pytest

from signgen.atomic import LOCK_NAME, folder_lock
from signgen.corpora.synthsign import SynthSignSettings
from signgen.errors import SigngenError


def snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture
def small_cli_settings(monkeypatch, small_synthsign_settings):
    """The command line's sentences shortened to the shared corpus's (so that a resumed
    run matches its manifest)."""
    import signgen.corpora.synthsign

    monkeypatch.setattr(signgen.corpora.synthsign, "SynthSignSettings",
                        functools.partial(SynthSignSettings, min_glosses=small_synthsign_settings.min_glosses,
                                          max_glosses=small_synthsign_settings.max_glosses))
    return ["--signers", "2", "--videos", "4", "--seed", "0", "--unseen-signers", "1"]


@pytest.fixture
def holder(tmp_path):
    """``holder(folder)``: another process holding the lock of ``folder`` until the test ends."""
    processes = []

    def hold(folder):
        ready = tmp_path / f"ready-{len(processes)}"
        code = (f"import pathlib, time\nfrom signgen.atomic import folder_lock\nwith folder_lock({str(folder)!r}):\n"
                f"    pathlib.Path({str(ready)!r}).touch()\n    time.sleep(60)\n")
        process = subprocess.Popen([sys.executable, "-c", code])
        processes.append(process)
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the holder did not start"
            time.sleep(0.05)
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


def test_a_second_synth_into_a_folder_being_written_is_refused_and_touches_nothing(
        synthsign_corpus, tmp_path, small_cli_settings, holder, run_cli_fd, cli_error_line):
    root = tmp_path / "corpus"
    shutil.copytree(synthsign_corpus, root)
    # The first run is half-way through a video: the second would take it for stale.
    partial = next((root / "features" / "fullFrame-210x260px" / "test").iterdir())
    partial.rename(partial.with_name(f".{partial.name}.partial"))
    first = holder(root)
    before = snapshot(root)
    code, _, err = run_cli_fd("data", "synth", "--out", root, *small_cli_settings)
    assert code == 2
    assert f"is being written by another signgen process (PID {first.pid})" in cli_error_line(err)
    assert snapshot(root) == before


def test_a_lock_left_by_a_killed_run_is_taken_over_and_released(synthsign_corpus, tmp_path, small_cli_settings, holder,
                                                                 run_cli_fd):
    root = tmp_path / "corpus"
    shutil.copytree(synthsign_corpus, root)
    killed = holder(root)
    killed.kill()  # SIGKILL: no cleanup runs, the lock file stays
    killed.wait()
    assert (root / LOCK_NAME).read_text().strip() == str(killed.pid)
    code, out, err = run_cli_fd("data", "synth", "--out", root, *small_cli_settings)
    assert code == 0, err
    assert "kept 4 already written" in out
    assert not (root / LOCK_NAME).exists()


def test_the_lock_is_released_when_the_work_fails(tmp_path):
    with pytest.raises(SigngenError, match="boom"):
        with folder_lock(tmp_path):
            raise SigngenError("boom")
    with folder_lock(tmp_path) as lock:  # free again
        assert lock.read_text().strip() == str(os.getpid())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- signers without videos


@pytest.mark.parametrize("args, message", [
    (["--unseen-signers", "1000", "--videos", "4"],
     "--unseen-signers 1000 is more than the 1 test_unseen video of --videos 4"),
    (["--unseen-signers", "3", "--videos", "20"], "--unseen-signers 3 is more than the 2 test_unseen videos of --videos 20"),
    (["--signers", "1000", "--videos", "4"], "--signers 1000 is more than --videos 4"),
])
def test_signers_no_video_would_show_are_refused_at_once(args, message, tmp_path, run_cli_fd, cli_error_line):
    started = time.perf_counter()
    code, _, err = run_cli_fd("data", "synth", "--out", tmp_path / "corpus", *args)
    assert code == 2 and message in cli_error_line(err)
    assert time.perf_counter() - started < 5
    assert list(tmp_path.iterdir()) == []


def test_the_default_unseen_signers_never_outnumber_test_unseen_videos():
    assert SynthSignSettings(signers=40, videos=40).unseen_signers == 4  # not a quarter of 40
    assert SynthSignSettings(signers=8, videos=200).unseen_signers == 2
