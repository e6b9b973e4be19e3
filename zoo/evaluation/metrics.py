"""Reconstruction metrics, computed by well-kept libraries (zoo only wires them).

Images (``pred``/``target``: ``[B, 3, H, W]`` in ``[0, 1]``, reconstructions clamped and rounded
to 8 bits as if saved as PNG; PSNR and SSIM computed in float64, LPIPS and Inception in float32):

==========  ==============================================================  =============
``psnr``    torchmetrics ``peak_signal_noise_ratio(data_range=1)`` per image  dB, higher
``ssim``    torchmetrics ``structural_similarity_index_measure(data_range=1)``  higher
            (Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03) per image
``lpips``   torchmetrics' LPIPS network (AlexNet backbone by default, linear   lower
            layers shipped with torchmetrics), per image, inputs in ``[-1, 1]``
``rfid``    Frechet distance of Inception-v3 pool features (torchmetrics           lower
            ``FrechetInceptionDistance`` over torch-fidelity's FID Inception),
            reconstructions against their inputs; one value per set
==========  ==============================================================  =============

Audio (``pred``/``target``: mono ``[L]`` at the model's sample rate, trimmed to one length):

==========  ==============================================================  =============
``mrstft``  auraloss ``MultiResolutionSTFTLoss()`` (FFT 1024/2048/512: spectral  lower
            convergence + L1 log magnitude, averaged over resolutions)
``mel``     auraloss ``MelSTFTLoss(sample_rate, n_mels=80)`` (FFT 1024, hop 256;   lower
            spectral convergence + L1 log magnitude on a librosa mel scale)
``si_snr``  torchmetrics ``scale_invariant_signal_noise_ratio``                   dB, higher
``pesq``    torchmetrics ``perceptual_evaluation_speech_quality(fs=16000,         higher
            mode="wb")`` on both signals resampled to 16 kHz (the ``pesq`` package)
``stoi``    torchmetrics ``short_time_objective_intelligibility`` (``pystoi``)    higher
==========  ==============================================================  =============

Why these libraries: torchmetrics (Lightning AI, Apache-2.0) is the metric library most PyTorch
papers' code calls and tests its metrics against the reference implementations; its FID runs
torch-fidelity's port of the TensorFlow FID Inception, whose features match the original FID
code; auraloss (Apache-2.0) is the STFT-loss package audio codec work uses; ``pesq`` (MIT
wrapper around the ITU-T P.862 reference C code) and ``pystoi`` (MIT) are what torchmetrics
itself calls. PESQ and STOI are speech metrics: they mean little on music.

Example:
    >>> import torch
    >>> suite = MetricSuite("image", ["psnr", "ssim"])
    >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> scores = suite.item_scores(x, x)
    >>> scores["psnr"].tolist(), [round(v, 4) for v in scores["ssim"].tolist()]
    ([inf, inf], [1.0, 1.0])
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.errors import InputError

__all__ = [
    "AUDIO_METRICS", "IMAGE_METRICS", "METRICS", "FidAccumulator", "MetricInfo", "MetricSuite", "check_metrics",
    "default_metrics", "frechet_distance", "inception_network", "lpips_network", "to_uint8",
]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is: its modality, unit, direction, whether it scores items or a set, who computes it."""

    name: str
    modality: str
    label: str
    unit: str
    higher_is_better: bool
    per_item: bool
    library: str
    requires: tuple[str, ...] = ()  # importable modules it needs
    optional: bool = False  # in the default set only when ``requires`` are installed

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "unit": self.unit, "higher_is_better": self.higher_is_better,
                "per_item": self.per_item, "library": self.library}


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("psnr", "image", "PSNR", "dB", True, True, "torchmetrics peak_signal_noise_ratio(data_range=1)", ("torchmetrics",)),
    MetricInfo("ssim", "image", "SSIM", "", True, True,
               "torchmetrics structural_similarity_index_measure(data_range=1, gaussian 11, sigma 1.5)", ("torchmetrics",)),
    MetricInfo("lpips", "image", "LPIPS", "", False, True, "torchmetrics LPIPS (alex backbone, torchvision weights)",
               ("torchmetrics", "torchvision")),
    MetricInfo("rfid", "image", "rFID", "", False, False,
               "torchmetrics FrechetInceptionDistance(2048) over torch-fidelity's FID Inception", ("torchmetrics", "torch_fidelity")),
    MetricInfo("mrstft", "audio", "MR-STFT distance", "", False, True, "auraloss MultiResolutionSTFTLoss()", ("auraloss",)),
    MetricInfo("mel", "audio", "mel distance", "", False, True, "auraloss MelSTFTLoss(n_mels=80), librosa mel filters",
               ("auraloss", "librosa")),
    MetricInfo("si_snr", "audio", "SI-SNR", "dB", True, True, "torchmetrics scale_invariant_signal_noise_ratio", ("torchmetrics",)),
    MetricInfo("pesq", "audio", "PESQ (wb)", "", True, True,
               "torchmetrics perceptual_evaluation_speech_quality(16 kHz, wb) via pesq", ("torchmetrics", "pesq"), optional=True),
    MetricInfo("stoi", "audio", "STOI", "", True, True, "torchmetrics short_time_objective_intelligibility via pystoi",
               ("torchmetrics", "pystoi"), optional=True),
)}
IMAGE_METRICS = tuple(n for n, m in METRICS.items() if m.modality == "image")
AUDIO_METRICS = tuple(n for n, m in METRICS.items() if m.modality == "audio")

_EXTRA_HINT = "pip install 'zoo[eval]'"
_LPIPS_NETS = {"alex": "lpips-alex", "vgg": "lpips-vgg", "squeeze": "lpips-squeeze"}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def default_metrics(modality: str) -> list[str]:
    """The metrics ``zoo eval`` computes when none are named: every metric of the modality, the
    speech ones (PESQ, STOI) only when their packages are installed.

    Example:
        >>> default_metrics("image")
        ['psnr', 'ssim', 'lpips', 'rfid']
    """
    names = IMAGE_METRICS if modality == "image" else AUDIO_METRICS if modality == "audio" else ()
    if not names:
        raise InputError(f"zoo eval measures image and audio tokenizers; got modality {modality!r}")
    return [n for n in names if not METRICS[n].optional or all(_installed(r) for r in METRICS[n].requires)]


def check_metrics(names: Sequence[str], modality: str) -> list[str]:
    """``names`` checked against the modality and the installed packages (an :class:`InputError`
    names the unknown metric, the other modality's, or the package to install)."""
    out = []
    for name in names:
        name = name.strip().lower().replace("-", "_")
        if name not in METRICS:
            raise InputError(f"unknown metric {name!r}; image metrics: {', '.join(IMAGE_METRICS)}; "
                             f"audio metrics: {', '.join(AUDIO_METRICS)}")
        info = METRICS[name]
        if info.modality != modality:
            raise InputError(f"{name} is an {info.modality} metric; these are {modality} tokenizers "
                             f"({modality} metrics: {', '.join(IMAGE_METRICS if modality == 'image' else AUDIO_METRICS)})")
        missing = [r for r in info.requires if not _installed(r)]
        if missing:
            extra = f"pip install {' '.join(m.replace('_', '-') for m in missing)}" if info.optional else _EXTRA_HINT
            raise InputError(f"metric {name} needs {', '.join(missing)}, which is not installed: {extra}")
        if name not in out:
            out.append(name)
    return out


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` float images -> uint8, rounded (what saving as PNG does).

    Example:
        >>> to_uint8(torch.tensor([0.0, 0.5, 1.0])).tolist()
        [0, 128, 255]
    """
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


def _torchmetrics():
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()  # torchmetrics' image package imports torchvision
    try:
        import torchmetrics  # noqa: F401
    except ImportError:
        raise InputError(f"zoo eval's metrics need torchmetrics: {_EXTRA_HINT}") from None


def lpips_network(net: str = "alex", weights: str | os.PathLike | None = None, *, cache_dir: str | Path | None = None):
    """torchmetrics' LPIPS network with its backbone's weights resolved through zoo
    (:func:`~zoo.evaluation.metric_weights.resolve_metric_weights`); the linear layers are the
    ones torchmetrics ships. Call it as ``net(a, b)`` on ``[-1, 1]`` images -> ``[B, 1, 1, 1]``."""
    from zoo.evaluation.metric_weights import resolve_metric_weights
    from zoo.weights import load_pickle, load_state_dict_strict

    if net not in _LPIPS_NETS:
        raise InputError(f"LPIPS backbone must be one of {', '.join(_LPIPS_NETS)}, got {net!r}")
    path = resolve_metric_weights(_LPIPS_NETS[net], weights, cache_dir=cache_dir, check=False)  # read weights-only below
    _torchmetrics()
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    model = _NoTrainLpips(pretrained=True, net=net, pnet_rand=True)  # linear layers from torchmetrics; backbone below
    state = load_pickle(path)
    backbone = {}
    for key in model.net.state_dict():
        # torchmetrics holds torchvision's `features[i]` modules in slices: "slice1.0.weight" (alex, vgg)
        # or "slices.0.0.weight" (squeeze) <- torchvision's "features.0.weight"
        parts = key.split(".")
        backbone[key] = state.get("features." + ".".join(parts[2:] if parts[0] == "slices" else parts[1:]))
    missing = [k for k, v in backbone.items() if v is None]
    if missing:
        from zoo.errors import CheckpointError

        raise CheckpointError(f"{path} is not torchvision's {net} weights: no features.* tensors for {', '.join(missing[:4])}")
    load_state_dict_strict(model.net, backbone, what=f"LPIPS {net} backbone")
    return model.eval()


class _Features(torch.nn.Module):
    """Identity over precomputed Inception features (``FrechetInceptionDistance``'s custom
    feature-extractor hook), so features computed once per item are reused for every setting."""

    num_features = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def inception_network(weights: str | os.PathLike | None = None, *, cache_dir: str | Path | None = None):
    """torchmetrics' FID Inception-v3 (torch-fidelity's port) -> 2048-d pool features of uint8 images."""
    from zoo.evaluation.metric_weights import resolve_metric_weights

    path = resolve_metric_weights("inception", weights, cache_dir=cache_dir)  # read weights-only first: torch-fidelity unpickles it
    _torchmetrics()
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path))


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """torchmetrics' FID of two ``[N, 2048]`` feature sets (N >= 2 each)."""
    acc = FidAccumulator()
    acc.update(real, real=True)
    acc.update(fake, real=False)
    return acc.compute()


class MetricSuite:
    """The metrics of one run, their networks built once.

    ``item_scores(pred, target)`` -> ``{name: [B] tensor}`` for the per-item metrics;
    ``features(images_01)`` -> ``[B, 2048]`` Inception features when ``rfid`` is asked for.
    ``weights`` maps ``"lpips"`` / ``"rfid"`` (or ``"inception"``) to local weight files.
    """

    def __init__(self, modality: str, names: Sequence[str] | None = None, *, weights: Mapping[str, Any] | None = None,
                 lpips_net: str = "alex", device: str | torch.device = "cpu", cache_dir: str | Path | None = None):
        self.modality = modality
        self.names = check_metrics(names if names is not None else default_metrics(modality), modality)
        weights = dict(weights or {})
        unknown = set(weights) - {"lpips", "rfid", "inception"}
        if unknown:
            raise InputError(f"--metric-weights: unknown metric(s) {', '.join(sorted(unknown))}; weights apply to lpips and rfid")
        from zoo.errors import HubError

        try:
            self._build(weights, lpips_net, device, cache_dir)
        except HubError as exc:
            others = [n for n in self.names if n not in ("lpips", "rfid")] or ["psnr", "ssim"]
            raise HubError(f"{exc} (or measure without the networks: --metrics {','.join(others)})") from None

    def _build(self, weights: dict[str, Any], lpips_net: str, device: str | torch.device, cache_dir: str | Path | None) -> None:
        from zoo.evaluation.metric_weights import resolve_metric_weights

        self.device = torch.device(device)
        self.lpips_net = lpips_net
        self._lpips = None
        self._inception = None
        self._stft: dict[tuple[str, int], Any] = {}
        #: the local files the metric networks were built from (explicit, cached or downloaded)
        self.weight_paths: dict[str, str] = {}
        if "lpips" in self.names:
            if lpips_net not in _LPIPS_NETS:
                raise InputError(f"LPIPS backbone must be one of {', '.join(_LPIPS_NETS)}, got {lpips_net!r}")
            path = resolve_metric_weights(_LPIPS_NETS[lpips_net], weights.get("lpips"), cache_dir=cache_dir, check=False)
            self.weight_paths["lpips"] = str(path)
            self._lpips = lpips_network(lpips_net, path).to(self.device)
        if "rfid" in self.names:
            path = resolve_metric_weights("inception", weights.get("rfid", weights.get("inception")), cache_dir=cache_dir,
                                          check=False)  # inception_network reads it weights-only
            self.weight_paths["rfid"] = str(path)
            self._inception = inception_network(path).to(self.device)
        if any(METRICS[n].library.startswith("torchmetrics") for n in self.names):
            _torchmetrics()

    @property
    def wants_features(self) -> bool:
        """Whether rFID is asked for (then :meth:`features` of inputs and reconstructions are needed)."""
        return self._inception is not None

    @property
    def item_metrics(self) -> list[str]:
        return [n for n in self.names if METRICS[n].per_item]

    @property
    def set_metrics(self) -> list[str]:
        return [n for n in self.names if not METRICS[n].per_item]

    @torch.inference_mode()
    def item_scores(self, pred: torch.Tensor, target: torch.Tensor, sample_rate: int | None = None) -> dict[str, torch.Tensor]:
        """Per-item scores: images ``[B, 3, H, W]`` in ``[0, 1]``; audio ``[B, L]`` at ``sample_rate``."""
        if pred.shape != target.shape:
            raise InputError(f"metrics need equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
        if self.modality == "image":  # float64: SSIM's variance terms lose ~1e-4 to float32 cancellation
            return self._image_scores(pred.double(), target.double())
        if sample_rate is None:
            raise InputError("audio metrics need the sample rate")
        return self._audio_scores(pred.float(), target.float(), int(sample_rate))

    def _image_scores(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        if "psnr" in self.names:
            from torchmetrics.functional.image import peak_signal_noise_ratio

            out["psnr"] = peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3)).reshape(-1)
        if "ssim" in self.names:
            from torchmetrics.functional.image import structural_similarity_index_measure

            out["ssim"] = structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none").reshape(-1)
        if "lpips" in self.names:
            a, b = (t.float().to(self.device) * 2 - 1 for t in (pred, target))
            out["lpips"] = self._lpips(a, b).reshape(-1).cpu()
        return {k: v.detach().cpu().double() for k, v in out.items()}

    def _audio_scores(self, pred: torch.Tensor, target: torch.Tensor, sr: int) -> dict[str, torch.Tensor]:
        out: dict[str, list[float]] = {n: [] for n in self.item_metrics}
        for p, t in zip(pred, target):
            for name in self.item_metrics:
                out[name].append(self._audio_one(name, p, t, sr))
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}

    def _stft_loss(self, name: str, sr: int):
        key = (name, sr)
        if key not in self._stft:
            import auraloss

            self._stft[key] = (auraloss.freq.MultiResolutionSTFTLoss() if name == "mrstft"
                               else auraloss.freq.MelSTFTLoss(sample_rate=sr, n_mels=80))
        return self._stft[key]

    def _audio_one(self, name: str, p: torch.Tensor, t: torch.Tensor, sr: int) -> float:
        if name in ("mrstft", "mel"):
            return float(self._stft_loss(name, sr)(p[None, None], t[None, None]))
        if name == "si_snr":
            from torchmetrics.functional.audio import scale_invariant_signal_noise_ratio

            return float(scale_invariant_signal_noise_ratio(p, t))
        if name == "stoi":
            from torchmetrics.functional.audio import short_time_objective_intelligibility

            return float(short_time_objective_intelligibility(p, t, fs=sr))
        if name == "pesq":
            from torchmetrics.functional.audio import perceptual_evaluation_speech_quality

            from zoo.media.audio import resample

            p16, t16 = (resample(x[None], sr, 16000)[0] for x in (p, t))
            try:
                return float(perceptual_evaluation_speech_quality(p16, t16, fs=16000, mode="wb"))
            except Exception:  # noqa: BLE001 -- pesq raises on clips with no speech ("No utterances detected"); counted as non-finite
                return float("nan")
        raise InputError(f"unknown audio metric {name!r}")

    @torch.inference_mode()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 2048]`` Inception features of ``[0, 1]`` images (rounded to uint8 first, as FID does)."""
        if self._inception is None:
            raise InputError("features() needs the rfid metric")
        return self._inception(to_uint8(images).to(self.device)).reshape(images.shape[0], -1).double().cpu()


class FidAccumulator:
    """Streams Inception features into torchmetrics' ``FrechetInceptionDistance`` (its running
    sums: memory stays two 2048x2048 matrices however many images come) and computes rFID.

    Example:
        >>> acc = FidAccumulator()
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(8, 2048, generator=g, dtype=torch.float64)
        >>> acc.update(real, real=True); acc.update(real, real=False)
        >>> acc.n, abs(acc.compute()) < 0.05  # the same features on both sides: 0 up to the matrix square root's noise
        (8, True)
    """

    def __init__(self) -> None:
        _torchmetrics()
        from torchmetrics.image.fid import FrechetInceptionDistance

        self._fid = FrechetInceptionDistance(feature=_Features())
        self.n = 0

    def update(self, features: torch.Tensor, *, real: bool) -> None:
        """Add ``[B, 2048]`` features of real (input) or fake (reconstructed) images."""
        features = features.reshape(-1, 2048).double()
        self._fid.update(features, real=real)
        if not real:
            self.n += features.shape[0]

    def compute(self) -> float:
        return float(self._fid.compute())
