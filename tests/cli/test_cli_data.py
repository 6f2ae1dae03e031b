"""``signgen data signer-photo``: the bundled signer photo, drawn again through the CLI."""

from __future__ import annotations

import pytest

from signgen.cli.main import main
from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "signer-photo", "--help"])
    assert exit_info.value.code == 0
    assert "usage: signgen data signer-photo" in capsys.readouterr().out


def test_the_drawn_photo_is_the_bundled_one_byte_for_byte(tmp_path, capsys):
    out = tmp_path / "signer.png"
    assert main(["data", "signer-photo", "-o", str(out)]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_bytes() == DEFAULT_SIGNER_PHOTO.read_bytes()


def test_the_default_output_is_the_bundled_photo(tmp_path, monkeypatch, capsys):
    import signgen.pipelines.signer_image as signer_image

    target = tmp_path / "bundled.png"
    monkeypatch.setattr(signer_image, "DEFAULT_SIGNER_PHOTO", target)
    assert main(["data", "signer-photo", "--garment", "200,40,40"]) == 0, capsys.readouterr().err
    assert target.is_file() and target.read_bytes() != DEFAULT_SIGNER_PHOTO.read_bytes()


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing folder", "output folder does not exist"),
        ("not a png", "-o must name a .png file"),
        ("bad garment", "--garment needs three numbers"),
        ("garment out of range", "--garment needs three numbers"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, case, message, cli_error_line):
    argv = {
        "missing folder": ["-o", str(tmp_path / "no" / "signer.png")],
        "not a png": ["-o", str(tmp_path / "signer.jpg")],
        "bad garment": ["-o", str(tmp_path / "signer.png"), "--garment", "red"],
        "garment out of range": ["-o", str(tmp_path / "signer.png"), "--garment", "300,0,0"],
    }[case]
    assert main(["data", "signer-photo", *argv]) == 2
    assert message in cli_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
