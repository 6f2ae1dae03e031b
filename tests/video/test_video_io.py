"""Video reading/writing and side-by-side layouts, on real encoded files."""

import os
import sys

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from signgen.errors import SigngenError
from signgen.video.io import read_frame_folder, read_video, video_info, write_gif, write_video
from signgen.video.layout import LABEL_BAR_HEIGHT, side_by_side


def smooth_video(frames=12, height=260, width=210):
    """Colour gradients with an anti-aliased disc moving across, PHOENIX-sized by default.

    (yuv420p halves the colour resolution, so at tiny sizes the disc's saturated edge alone
    pulls the PSNR under 35 dB; at 260 x 210 the round trip is near 40 dB.)
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    video = []
    for t in range(frames):
        image = np.stack([20 + 200 * xx / width, 20 + 200 * yy / height, np.full_like(xx, 120)], axis=-1)
        distance = np.hypot(xx - (40 + 6 * t), yy - (60 + 4 * t))
        disc = np.clip(30 - distance, 0, 1)[..., None]  # 1 inside, a one-pixel soft edge
        video.append(image * (1 - disc) + np.array([230, 60, 40]) * disc)
    return np.stack(video).round().astype(np.uint8)


def files_in(folder):
    return sorted(os.listdir(folder))


def test_mp4_round_trip_keeps_frames_and_quality(tmp_path):
    video = smooth_video()
    path = tmp_path / "out.mp4"
    write_video(video, path, fps=25)
    decoded = read_video(path)
    assert decoded.shape == video.shape and decoded.dtype == np.uint8
    assert peak_signal_noise_ratio(video, decoded) > 35
    info = video_info(path)
    assert (info.num_frames, info.fps, info.height, info.width) == (12, 25.0, 260, 210)
    assert files_in(tmp_path) == ["out.mp4"]  # no temporary file left beside it


def test_the_same_frames_give_a_byte_identical_mp4(tmp_path):
    # A textured, moving clip long enough for x264's look-ahead; the allocations between
    # the writes are what made the bytes differ when frames were dropped during encoding.
    # (The old writer gave four different files for this clip in four writes.)
    rng = np.random.default_rng(7)
    rows, columns = np.mgrid[0:260, 0:420]
    pattern = np.stack([(columns * 0.6) % 256, (rows * 0.9) % 256, ((columns + rows) * 0.4) % 256], -1).astype(np.uint8)
    frames = np.stack([np.roll(pattern, 2 * t, axis=1)[:, :210] for t in range(80)])
    written = []
    for attempt in range(3):
        write_video(frames, tmp_path / f"take{attempt}.mp4")
        _ = [rng.random((256, 256)) for _ in range(20)]
        written.append((tmp_path / f"take{attempt}.mp4").read_bytes())
    assert written[0] == written[1] == written[2]


def test_pyav_reads_when_decord_is_missing(tmp_path, monkeypatch):
    video = smooth_video()
    write_video(video, tmp_path / "out.mp4")
    with_decord = read_video(tmp_path / "out.mp4")
    monkeypatch.setitem(sys.modules, "decord", None)  # import decord now raises ImportError
    with_pyav = read_video(tmp_path / "out.mp4")
    assert with_pyav.shape == video.shape
    assert peak_signal_noise_ratio(video, with_pyav) > 35
    assert np.abs(with_pyav.astype(int) - with_decord).max() <= 2  # same stream, same colour conversion


def test_odd_sizes_are_padded_to_even(tmp_path):
    video = smooth_video(frames=3, height=131, width=105)
    write_video(video, tmp_path / "odd.mp4")
    decoded = read_video(tmp_path / "odd.mp4")
    assert decoded.shape == (3, 132, 106, 3)
    assert peak_signal_noise_ratio(video, decoded[:, :131, :105]) > 30  # not shifted by the padding


def test_gif_writes_a_looping_preview(tmp_path):
    video = smooth_video(frames=5)
    write_gif(video, tmp_path / "preview.gif", fps=25)
    decoded = read_video(tmp_path / "preview.gif")
    assert decoded.shape == video.shape
    assert peak_signal_noise_ratio(video, decoded) > 25  # 256-colour palette
    assert video_info(tmp_path / "preview.gif").fps == pytest.approx(25)
    assert files_in(tmp_path) == ["preview.gif"]


def write_phoenix_folder(folder, count, names="images{:04d}.png"):
    folder.mkdir(parents=True)
    for index in range(1, count + 1):
        frame = np.full((26, 21, 3), index * 10, np.uint8)  # 210x260 aspect, tiny
        Image.fromarray(frame).save(folder / names.format(index))


def test_png_folder_in_natural_order(tmp_path):
    write_phoenix_folder(tmp_path / "video", 12, names="images{}.png")  # images2 < images10
    frames = read_frame_folder(tmp_path / "video")
    assert frames.shape == (12, 26, 21, 3)
    assert list(frames[:, 0, 0, 0]) == [10 * i for i in range(1, 13)]
    assert np.array_equal(read_video(tmp_path / "video"), frames)


def test_folder_with_glob_characters_in_its_name(tmp_path):
    write_phoenix_folder(tmp_path / "clip[1]", 2)
    assert read_video(tmp_path / "clip[1]").shape == (2, 26, 21, 3)


def test_phoenix_csv_glob(tmp_path):
    write_phoenix_folder(tmp_path / "train" / "sample-1" / "1", 3)
    frames = read_video(str(tmp_path / "train" / "sample-1" / "1" / "*.png"))
    assert list(frames[:, 0, 0, 0]) == [10, 20, 30]
    assert video_info(str(tmp_path / "train" / "sample-1" / "1" / "*.png")).num_frames == 3
    # PHOENIX-2014-T: the CSV still says "<name>/1/*.png" but the frames lie in "<name>/"
    write_phoenix_folder(tmp_path / "test" / "sample-2", 4)
    assert read_video(str(tmp_path / "test" / "sample-2" / "1" / "*.png")).shape == (4, 26, 21, 3)


def one_line_naming(error, name):
    message = str(error.value)
    assert "\n" not in message and name in message


def test_missing_file(tmp_path):
    with pytest.raises(SigngenError) as error:
        read_video(tmp_path / "absent.mp4")
    one_line_naming(error, "absent.mp4")


def test_text_file_named_mp4(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video\n")
    with pytest.raises(SigngenError) as error:
        read_video(tmp_path / "notes.mp4")
    one_line_naming(error, "notes.mp4")


def test_video_without_frames(tmp_path):
    import av

    path = tmp_path / "empty.avi"
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height = 64, 64
        container.start_encoding()
    with pytest.raises(SigngenError) as error:
        read_video(path)
    one_line_naming(error, "empty.avi")


def test_truncated_png(tmp_path):
    write_phoenix_folder(tmp_path / "video", 3)
    broken = tmp_path / "video" / "images0002.png"
    broken.write_bytes(broken.read_bytes()[:60])
    with pytest.raises(SigngenError) as error:
        read_video(tmp_path / "video")
    one_line_naming(error, "images0002.png")


def test_empty_folder_and_unmatched_glob(tmp_path):
    (tmp_path / "video").mkdir()
    for target in (tmp_path / "video", str(tmp_path / "video" / "*.png")):
        with pytest.raises(SigngenError) as error:
            read_video(target)
        one_line_naming(error, "video")


def test_bad_frames_leave_no_file(tmp_path):
    for bad in (np.zeros((4, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8), np.zeros((0, 8, 8, 3), np.uint8)):
        with pytest.raises(SigngenError):
            write_video(bad, tmp_path / "out.mp4")
        with pytest.raises(SigngenError):
            write_gif(bad, tmp_path / "out.gif")
    assert files_in(tmp_path) == []


def test_failure_while_encoding_leaves_no_file(tmp_path, monkeypatch):
    import av

    encoded = []
    real_from_ndarray = av.VideoFrame.from_ndarray

    def fail_on_third_frame(array, format):
        encoded.append(1)
        if len(encoded) == 3:
            raise KeyboardInterrupt  # an interrupted render
        return real_from_ndarray(array, format=format)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", fail_on_third_frame)
    with pytest.raises(KeyboardInterrupt):
        write_video(smooth_video(), tmp_path / "out.mp4")
    assert files_in(tmp_path) == []


def test_missing_output_folder(tmp_path):
    with pytest.raises(SigngenError) as error:
        write_video(smooth_video(frames=2), tmp_path / "absent" / "out.mp4")
    one_line_naming(error, "absent")


def test_side_by_side_resizes_labels_and_holds_last_frame():
    pose = np.zeros((5, 48, 40, 3), np.uint8)
    generated = np.full((3, 96, 80, 3), 200, np.uint8)
    generated[-1] = 100
    reference = np.full((5, 96, 120, 3), 50, np.uint8)
    laid_out = side_by_side([pose, generated, reference], ["pose", "generated", "reference"])
    assert laid_out.shape == (5, LABEL_BAR_HEIGHT + 96, 80 + 80 + 120, 3) and laid_out.dtype == np.uint8
    # the generated column holds its last frame where it has none
    assert (laid_out[3:, LABEL_BAR_HEIGHT:, 80:160] == 100).all()
    assert (laid_out[:2, LABEL_BAR_HEIGHT:, 80:160] == 200).all()
    # each bar carries bright text on a dark ground; an empty label leaves it blank
    bars = laid_out[0, :LABEL_BAR_HEIGHT]
    for left, right in ((0, 80), (80, 160), (160, 280)):
        assert bars[:, left:right].max() > 150 and np.median(bars[:, left:right]) < 60
    blank = side_by_side([pose], [""])[0, :LABEL_BAR_HEIGHT]
    assert blank.max() < 60


def test_side_by_side_without_labels_and_bad_input():
    video = np.zeros((2, 10, 12, 3), np.uint8)
    assert side_by_side([video, video]).shape == (2, 10, 24, 3)
    assert side_by_side([video], height=20).shape == (2, 20, 24, 3)
    with pytest.raises(SigngenError):
        side_by_side([video, video], ["one"])
    with pytest.raises(SigngenError):
        side_by_side([video.astype(np.float32)])
