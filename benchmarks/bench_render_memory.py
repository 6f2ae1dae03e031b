"""Peak memory of `signgen render` against the video's length.

Renders fingerspelled glosses of N letters (a repeated alphabet) with the embedded default
through the command line in a fresh process each, and prints its peak resident memory
(getrusage's ru_maxrss of the child) and the video's length. Memory does not depend on the
number of denoising steps (every chunk takes all its steps before the next starts), so
`--steps 1` by default keeps the long cases short; pass `--steps 10` to time them too.

    python benchmarks/bench_render_memory.py --letters 5 200 1000
"""

from __future__ import annotations

import argparse
import os
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def render(letters: int, steps: int, threads: int, out: Path) -> tuple[float, float, int, str]:
    glosses = " ".join((string.ascii_uppercase * (letters // 26 + 1))[:letters])
    command = [sys.executable, "-m", "signgen.cli.main", "render", "--gloss", glosses, "--steps", str(steps), "-o", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    seconds = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(f"render of {letters} letters failed: {result.stderr.strip().splitlines()[-1]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kb <= before:
        print(f"note: a previous child peaked higher ({before} KB); run one length per call for its own peak")
    return peak_kb / 2**20, seconds, letters, result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters", type=int, nargs="+", default=[5, 200])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print("| letters | video | peak RSS | wall |\n|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for letters in args.letters:
            peak, seconds, _, line = render(letters, args.steps, args.threads, Path(folder) / f"{letters}.mp4")
            video = line.split("(")[1].split(")")[0] if "(" in line else line
            print(f"| {letters} | {video} | {peak:.2f} GB | {seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
