"""benchmarks/gpu_check.sh end to end on a CPU with tiny configs, so that the prepared GPU check cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_check.sh"


def test_the_gpu_check_runs_end_to_end_on_a_cpu_and_prints_one_table(tmp_path, synthsign_corpus):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "check"), "--data", str(synthsign_corpus), "--tiny",
                           "--steps", "2", "--frames", "5", "--num-steps", "1"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "check" / ".signgen-gpu-check").is_file()  # a later check may replace this folder
    table = done.stdout[done.stdout.index("gpu_check on cpu"):].splitlines()
    assert table[1].startswith("| model | train s/step |") and len(table) == 5
    assert table[3].startswith("| frame model (frame-wise) |") and table[4].startswith("| + temporal adapter |")
    assert all(float(cell) >= 0 for row in table[3:] for cell in row.strip("|").split("|")[1:])


def test_the_check_replaces_only_its_own_work_folder(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "results.txt").write_text("keep me")
    done = subprocess.run([sys.executable, str(SCRIPT.with_suffix(".py")), "--out", str(precious)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 2 and "refusing to replace it" in done.stderr.strip().splitlines()[-1]
    assert (precious / "results.txt").read_text() == "keep me"
