"""``--device`` that this process does not have (issue 17, items 10 and 11 of the follow-up
sweep): a name torch does not know, a device type signgen does not run on and a CUDA device
on a CPU-only torch (or a GPU index beyond the ones there are) are one error line ("no such
device"), exit code 2, no traceback, and no run folder written."""

from __future__ import annotations

import shutil

import pytest
import torch

from signgen.errors import SigngenError
from signgen.pipelines.devices import check_device

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ("--fid-frames-per-video", "0", "--no-pose-fidelity", "--limit", "1")
# cuda:99 exists nowhere: on a CPU-only torch there is no CUDA, on a GPU machine not 100 GPUs.
BAD_DEVICES = ["bogus", "cuda:99", "meta", "cuda:-1", "", "x" * 500]


@pytest.mark.parametrize("device", BAD_DEVICES)
def test_check_device_refuses_what_is_not_here(device):
    with pytest.raises(SigngenError, match="no such device"):
        check_device(device)


def test_check_device_takes_the_cpu_and_names_it():
    assert check_device("cpu") == "cpu"
    assert check_device(" cpu:0 ") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message for a torch without CUDA")
def test_cuda_on_a_cpu_only_torch_says_so():
    with pytest.raises(SigngenError, match="no usable cuda device"):
        check_device("cuda")


@pytest.mark.parametrize("device", ["bogus", "cuda:99", "meta"])
def test_eval_with_a_device_that_is_not_here_is_one_line(device, tmp_path, phoenix_fixture, tiny_pipelines,
                                                          run_cli, cli_error_line):
    corpus = tmp_path / "corpus"
    shutil.copytree(phoenix_fixture, corpus)
    before = sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*"))
    out = tmp_path / "run"
    code, stdout, err = run_cli("eval", "--data", corpus, "--model", tiny_pipelines["frame_only"], "--out", out,
                                "--steps", "1", "--no-progress", *FAST, "--device", device)
    assert code == 2 and "Traceback" not in err
    line = cli_error_line(err)
    assert "no such device" in line and repr(device) in line
    assert not out.exists()
    assert sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*")) == before
