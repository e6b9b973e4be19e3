"""zoo eval's metrics: each agrees with its library's reference call on the same tensors, PSNR and
SSIM with a hand check, and the metric networks take stand-in weights (random init, saved to a
file) through zoo's resolver."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch

from zoo.compat.torchvision import ensure_torchvision  # noqa: E402

ensure_torchvision()  # torchmetrics' image metrics import torchvision
pytest.importorskip("torchmetrics")

from zoo.evaluation.metric_weights import write_standin_weights  # noqa: E402
from zoo.evaluation.metrics import FidAccumulator, MetricSuite, check_metrics, default_metrics, to_uint8  # noqa: E402


def _images(n=3, size=48, noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 3, size, size, generator=g)
    # smooth the target a little so SSIM sees structure, then perturb it
    target = torch.nn.functional.avg_pool2d(target, 3, 1, 1)
    pred = (target + noise * torch.randn(target.shape, generator=g)).clamp(0, 1)
    return pred, target


@pytest.fixture(scope="module")
def alex(tmp_path_factory):
    return write_standin_weights("lpips-alex", tmp_path_factory.mktemp("w") / "alexnet-standin.pth", seed=1)


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    return write_standin_weights("inception", tmp_path_factory.mktemp("w") / "inception-standin.pth", seed=2)


# -- PSNR ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("noise", [0.01, 0.05, 0.2])
def test_psnr_matches_hand_formula(noise):
    pred, target = _images(noise=noise)
    got = MetricSuite("image", ["psnr"]).item_scores(pred, target)["psnr"]
    mse = ((pred.double() - target.double()) ** 2).flatten(1).mean(1)
    hand = 10 * torch.log10(1.0 / mse)
    # (torchmetrics turns ln into log10 with a float32 constant: agreement to ~1e-6 dB)
    assert torch.allclose(got, hand, atol=1e-5), (got, hand)


def test_psnr_of_a_known_error_is_exact():
    target = torch.zeros(1, 3, 8, 8)
    pred = torch.full((1, 3, 8, 8), 0.1)  # mse 0.01 -> 20 dB
    assert MetricSuite("image", ["psnr"]).item_scores(pred, target)["psnr"].item() == pytest.approx(20.0, abs=1e-5)  # 0.1 in float32


def test_psnr_and_ssim_match_torchmetrics_module_api():
    from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

    pred, target = _images(n=4, noise=0.07, seed=3)
    pred, target = pred.double(), target.double()  # zoo computes PSNR/SSIM in float64
    got = MetricSuite("image", ["psnr", "ssim"]).item_scores(pred, target)
    for i in range(4):  # the library's stateful metric, one image at a time
        psnr = PeakSignalNoiseRatio(data_range=1.0)
        ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        assert got["psnr"][i].item() == pytest.approx(psnr(pred[i : i + 1], target[i : i + 1]).item(), abs=1e-4)
        # (the stateful metric sums into a float32 state: agreement to float32 precision)
        assert got["ssim"][i].item() == pytest.approx(ssim(pred[i : i + 1], target[i : i + 1]).item(), abs=1e-6)


# -- SSIM ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [(0.2, 0.2), (0.2, 0.3), (0.5, 0.9), (0.0, 1.0)])
def test_ssim_of_flat_images_matches_the_closed_form(a, b):
    # constant images: the variance/covariance terms are (0 + C2) / (0 + C2) = 1, so
    # SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * data_range)^2
    pred, target = torch.full((1, 3, 32, 32), a), torch.full((1, 3, 32, 32), b)
    a, b = float(pred[0, 0, 0, 0]), float(target[0, 0, 0, 0])  # the float32 values the images hold
    c1 = 0.01**2
    hand = (2 * a * b + c1) / (a * a + b * b + c1)
    got = MetricSuite("image", ["ssim"]).item_scores(pred, target)["ssim"].item()
    assert got == pytest.approx(hand, abs=1e-9)


def _ssim_scipy(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM by hand (Wang et al. 2004) with scipy's Gaussian filter: sigma 1.5, 11 taps
    (truncate 5/1.5), the image mirrored at its borders (numpy/torch "reflect", scipy "mirror")
    and the map averaged over every pixel: torchmetrics' convention."""
    from scipy.ndimage import gaussian_filter

    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for ch in range(x.shape[0]):
        a, b = x[ch].astype(np.float64), y[ch].astype(np.float64)

        def f(z):
            return gaussian_filter(z, sigma=1.5, truncate=5 / 1.5, mode="mirror")

        mu_a, mu_b = f(a), f(b)
        saa, sbb, sab = np.maximum(f(a * a) - mu_a**2, 0), np.maximum(f(b * b) - mu_b**2, 0), f(a * b) - mu_a * mu_b
        m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
        vals.append(m)
    return float(np.mean(vals))


@pytest.mark.parametrize("noise,seed", [(0.02, 0), (0.1, 1), (0.3, 2)])
def test_ssim_matches_a_hand_computation(noise, seed):
    pred, target = _images(n=2, size=40, noise=noise, seed=seed)
    got = MetricSuite("image", ["ssim"]).item_scores(pred, target)["ssim"]
    for i in range(2):
        assert got[i].item() == pytest.approx(_ssim_scipy(pred[i].numpy(), target[i].numpy()), abs=1e-7)


# -- LPIPS -----------------------------------------------------------------------------------------

def _torchvision_download_returns(state):
    """Make torchvision's weight download hand back ``state`` (the stand-in) so the library's own
    LPIPS call runs on the same backbone weights as zoo's."""
    import torchvision.models._api as api

    return mock.patch.object(api, "load_state_dict_from_url", lambda *a, **k: state)


def test_lpips_matches_torchmetrics_reference_call(alex):
    from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity

    pred, target = _images(n=3, size=64, noise=0.1, seed=4)
    got = MetricSuite("image", ["lpips"], weights={"lpips": alex}).item_scores(pred, target)["lpips"]
    with _torchvision_download_returns(torch.load(alex, weights_only=True)):
        ref = learned_perceptual_image_patch_similarity(pred * 2 - 1, target * 2 - 1, net_type="alex", reduction="none")
    assert torch.allclose(got.float(), ref.float(), atol=1e-6), (got, ref)
    assert (got > 0).all()
    same = MetricSuite("image", ["lpips"], weights={"lpips": alex}).item_scores(target, target)["lpips"]
    assert torch.allclose(same, torch.zeros_like(same), atol=1e-7)


def test_lpips_squeeze_backbone(tmp_path):
    from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity

    path = write_standin_weights("lpips-squeeze", tmp_path / "squeeze.pth", seed=5)
    pred, target = _images(n=2, size=64, noise=0.2, seed=5)
    got = MetricSuite("image", ["lpips"], weights={"lpips": path}, lpips_net="squeeze").item_scores(pred, target)["lpips"]
    with _torchvision_download_returns(torch.load(path, weights_only=True)):
        ref = learned_perceptual_image_patch_similarity(pred * 2 - 1, target * 2 - 1, net_type="squeeze", reduction="none")
    assert torch.allclose(got.float(), ref.float(), atol=1e-6)


def test_lpips_refuses_weights_of_another_network(tmp_path, inception):
    from zoo.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not torchvision's alex weights"):
        MetricSuite("image", ["lpips"], weights={"lpips": inception})


# -- rFID ------------------------------------------------------------------------------------------

def test_rfid_matches_torchmetrics_fid(inception):
    from torchmetrics.image.fid import FrechetInceptionDistance

    pred, target = _images(n=6, size=64, noise=0.15, seed=6)
    suite = MetricSuite("image", ["rfid"], weights={"rfid": inception})
    acc = FidAccumulator()
    for lo, hi in ((0, 4), (4, 6)):  # streamed in two batches, as zoo eval does
        acc.update(suite.features(target[lo:hi]), real=True)
        acc.update(suite.features(pred[lo:hi]), real=False)
    ref = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(inception))
    ref.update(to_uint8(target), real=True)
    ref.update(to_uint8(pred), real=False)
    want = float(ref.compute())
    assert acc.n == 6
    assert acc.compute() == pytest.approx(want, rel=1e-6)
    assert want > 0


def test_fid_accumulator_matches_scipy_frechet_distance():
    import scipy.linalg

    g = torch.Generator().manual_seed(7)
    a = torch.randn(40, 64, generator=g, dtype=torch.float64)
    b = 0.8 * a + 0.3 * torch.randn(40, 64, generator=g, dtype=torch.float64) + 0.1
    acc = FidAccumulator()  # 64 live feature dimensions, the other 1984 zero (scipy's sqrtm of 2048x2048 takes minutes)
    acc.update(torch.nn.functional.pad(a, (0, 2048 - 64)), real=True)
    acc.update(torch.nn.functional.pad(b, (0, 2048 - 64)), real=False)
    s1, s2 = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    hand = float(((a.mean(0) - b.mean(0)) ** 2).sum()) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert acc.compute() == pytest.approx(hand, rel=1e-4)


# -- audio -----------------------------------------------------------------------------------------

def _voice(sr=16000, seconds=2.0, seed=0):
    """A voiced, syllable-like test signal (harmonics of a gliding f0, amplitude-modulated)."""
    t = np.arange(int(sr * seconds)) / sr
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    sig = sum(np.sin(k * phase) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    sig = 0.3 * sig / np.abs(sig).max()
    noisy = sig + 0.02 * np.random.default_rng(seed).standard_normal(sig.shape)
    return torch.tensor(noisy, dtype=torch.float32), torch.tensor(sig, dtype=torch.float32)


def test_audio_stft_distances_match_auraloss():
    import auraloss

    pred, target = _voice(sr=24000)
    got = MetricSuite("audio", ["mrstft", "mel"]).item_scores(pred[None], target[None], 24000)
    mr = auraloss.freq.MultiResolutionSTFTLoss()(pred[None, None], target[None, None])
    mel = auraloss.freq.MelSTFTLoss(sample_rate=24000, n_mels=80)(pred[None, None], target[None, None])
    assert got["mrstft"].item() == pytest.approx(mr.item(), rel=1e-6)
    assert got["mel"].item() == pytest.approx(mel.item(), rel=1e-6)
    same = MetricSuite("audio", ["mrstft"]).item_scores(target[None], target[None], 24000)["mrstft"].item()
    assert same == pytest.approx(0.0, abs=1e-6) and got["mrstft"].item() > 0.05


def test_si_snr_matches_torchmetrics_and_the_formula():
    from torchmetrics.functional.audio import scale_invariant_signal_noise_ratio

    pred, target = _voice(seed=1)
    got = MetricSuite("audio", ["si_snr"]).item_scores(pred[None], target[None], 16000)["si_snr"].item()
    assert got == pytest.approx(scale_invariant_signal_noise_ratio(pred, target).item(), abs=1e-4)
    p, s = pred.double() - pred.double().mean(), target.double() - target.double().mean()
    s_target = (p @ s) / (s @ s) * s
    hand = 10 * math.log10(float(s_target @ s_target) / float((p - s_target) @ (p - s_target)))
    assert got == pytest.approx(hand, abs=1e-3)


def test_pesq_matches_the_pesq_package():
    pesq = pytest.importorskip("pesq")
    from zoo.media.audio import resample

    pred, target = _voice(sr=24000, seconds=3.0, seed=2)
    got = MetricSuite("audio", ["pesq"]).item_scores(pred[None], target[None], 24000)["pesq"].item()
    p16, t16 = (resample(x[None], 24000, 16000)[0].numpy() for x in (pred, target))
    assert got == pytest.approx(pesq.pesq(16000, t16, p16, "wb"), abs=1e-4)


def test_stoi_matches_pystoi():
    pystoi = pytest.importorskip("pystoi")
    pred, target = _voice(seed=3)
    got = MetricSuite("audio", ["stoi"]).item_scores(pred[None], target[None], 16000)["stoi"].item()
    assert got == pytest.approx(pystoi.stoi(target.numpy(), pred.numpy(), 16000), abs=1e-5)


# -- the metric set --------------------------------------------------------------------------------

@pytest.mark.parametrize("names,modality,message", [
    (["psnr", "nope"], "image", "unknown metric 'nope'"),
    (["mel"], "image", "mel is an audio metric"),
    (["lpips"], "audio", "lpips is an image metric"),
])
def test_check_metrics_names_the_problem(names, modality, message):
    from zoo.errors import InputError

    with pytest.raises(InputError, match=message):
        check_metrics(names, modality)


def test_default_metrics_cover_each_modality():
    assert default_metrics("image") == ["psnr", "ssim", "lpips", "rfid"]
    audio = default_metrics("audio")
    assert audio[:3] == ["mrstft", "mel", "si_snr"]
    assert ("pesq" in audio) == _installed("pesq") and ("stoi" in audio) == _installed("pystoi")


def _installed(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None
