"""WavTokenizer's typed config, the official yaml it is paired with, and sniffing from weights.

The official release pairs every ``.ckpt`` with one of the repo's Lightning-CLI yaml files
(the large checkpoints ship without one), and the pairing is easy to get wrong: a 40-token
checkpoint run with the 75-token yaml builds a model whose shapes do not fit. zoo therefore
carries the pairing on the card (``config:`` with the values below, plus ``yaml:`` naming the
official file for provenance) *and* checks it against the checkpoint itself: the encoder's
strided-conv kernels give the downsampling ratios, the ISTFT window gives ``n_fft``.

Only plain values are read from a yaml (``yaml.safe_load``); its ``class_path`` strings are
never imported.

Example:
    >>> cfg = WavTokenizerConfig(ratios=[6, 5, 5, 4], n_fft=2400, hop_length=600)
    >>> cfg.frame_rate, cfg.hop
    (40.0, 600)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

__all__ = ["WavTokenizerConfig", "config_from_yaml", "config_from_state_dict", "check_pairing"]


@dataclass
class WavTokenizerConfig:
    """Architecture and inference settings of one WavTokenizer checkpoint.

    ``ratios`` are the SEANet ratios as the official yaml writes them (``dowmsamples``, in
    decoder order: the encoder applies them reversed); their product is the hop in samples.
    ``bandwidth_id`` selects the AdaLayerNorm embedding row (every release uses 0).
    ``chunk_seconds``/``context_seconds`` bound memory on long audio (see ``model.py``).
    """

    sample_rate: int = 24000
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])
    n_filters: int = 32
    dimension: int = 512
    lstm_layers: int = 2
    codebook_size: int = 4096
    backbone_dim: int = 768
    intermediate_dim: int = 2304
    num_layers: int = 12
    adanorm_num_embeddings: int = 4
    n_fft: int = 1280
    hop_length: int = 320
    padding: str = "same"
    bandwidth_id: int = 0
    chunk_seconds: float = 30.0
    yaml: str = ""

    @property
    def hop(self) -> int:
        """Samples per token frame (product of the SEANet ratios)."""
        return int(math.prod(self.ratios))

    @property
    def frame_rate(self) -> float:
        """Tokens per second."""
        return self.sample_rate / self.hop

    def validate(self) -> "WavTokenizerConfig":
        """Raise ConfigError when fields contradict each other (names the fix)."""
        from ._core import ConfigError

        if self.hop != self.hop_length:
            raise ConfigError(
                f"WavTokenizer config: SEANet ratios {list(self.ratios)} give a hop of {self.hop} samples but "
                f"the ISTFT head has hop_length={self.hop_length}; a 40-token model needs ratios [6, 5, 5, 4] "
                "with n_fft 2400 / hop 600, a 75-token model ratios [8, 5, 4, 2] with n_fft 1280 / hop 320"
            )
        if self.padding != "same":
            raise ConfigError(f"WavTokenizer config: padding must be 'same' (every release), got {self.padding!r}")
        if not 0 <= self.bandwidth_id < self.adanorm_num_embeddings:
            raise ConfigError(
                f"WavTokenizer config: bandwidth_id {self.bandwidth_id} is outside [0, {self.adanorm_num_embeddings})"
            )
        if self.n_fft < self.hop_length:
            raise ConfigError(f"WavTokenizer config: n_fft {self.n_fft} must be >= hop_length {self.hop_length}")
        return self


_YAML_MAP = {
    # (section, yaml key) -> config field
    ("feature_extractor", "dowmsamples"): "ratios",
    ("feature_extractor", "vq_bins"): "codebook_size",
    ("backbone", "input_channels"): "dimension",
    ("backbone", "dim"): "backbone_dim",
    ("backbone", "intermediate_dim"): "intermediate_dim",
    ("backbone", "num_layers"): "num_layers",
    ("backbone", "adanorm_num_embeddings"): "adanorm_num_embeddings",
    ("head", "n_fft"): "n_fft",
    ("head", "hop_length"): "hop_length",
    ("head", "padding"): "padding",
}


def config_from_yaml(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Map an official WavTokenizer yaml (Lightning CLI layout) onto config fields.

    Example:
        >>> y = {"model": {"init_args": {"sample_rate": 24000, "head": {"init_args": {"n_fft": 2400}}}}}
        >>> config_from_yaml(y)
        {'sample_rate': 24000, 'n_fft': 2400}
    """
    from ._core import ConfigError

    if isinstance(source, Mapping):
        raw = source
    else:
        import yaml

        try:
            raw = yaml.safe_load(Path(source).read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:  # e.g. a `!!python/...` tag: never constructed
            raise ConfigError(f"{source}: not a plain-data yaml ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                              "zoo reads values only, tags such as !!python/object are refused") from None
    try:
        init = raw["model"]["init_args"]
    except (KeyError, TypeError):
        raise ConfigError(
            f"{source if not isinstance(source, Mapping) else 'yaml'}: not a WavTokenizer training yaml "
            "(expected model.init_args.{feature_extractor,backbone,head})"
        ) from None
    out: dict[str, Any] = {}
    if "sample_rate" in init:
        out["sample_rate"] = int(init["sample_rate"])
    for (section, key), name in _YAML_MAP.items():
        args = (init.get(section) or {}).get("init_args") or {}
        if key in args:
            value = args[key]
            out[name] = list(value) if isinstance(value, (list, tuple)) else value
    fe = (init.get("feature_extractor") or {}).get("init_args") or {}
    if fe.get("num_quantizers", 1) != 1:
        raise ConfigError(f"WavTokenizer yaml: num_quantizers={fe['num_quantizers']}; zoo supports the released single-VQ models only")
    return out


def config_from_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """Read the architecture from tensor shapes (official key layout, prefix-stripped or not).

    Returns only what the shapes determine; an incomplete state dict yields fewer fields.
    """
    def find(suffix: str):
        for key, value in state.items():
            if key.endswith(suffix):
                return value
        return None

    out: dict[str, Any] = {}
    embed = find("quantizer.vq.layers.0._codebook.embed")
    if embed is None:
        embed = state.get("quantizer.embed")  # zoo layout
    if embed is not None:
        out["codebook_size"], out["dimension"] = int(embed.shape[0]), int(embed.shape[1])
    window = find("head.istft.window")
    if window is not None:
        out["n_fft"] = int(window.shape[0])
    head = find("head.out.weight")
    if head is not None:
        out["backbone_dim"] = int(head.shape[1])
        out.setdefault("n_fft", int(head.shape[0]) - 2)
    norm = find("backbone.norm.scale.weight")
    if norm is not None:
        out["adanorm_num_embeddings"] = int(norm.shape[0])
    pw = find("backbone.convnext.0.pwconv1.weight")
    if pw is not None:
        out["intermediate_dim"] = int(pw.shape[0])
    layers = {k.split("backbone.convnext.", 1)[1].split(".", 1)[0] for k in state if "backbone.convnext." in k}
    if layers:
        out["num_layers"] = len(layers)
    # Encoder downsampling convs sit at model.3, 6, 9, 12 with kernel 2 * ratio (encoder order).
    kernels = []
    for idx in (3, 6, 9, 12):
        w = None
        for suffix in (".conv.conv.weight_v", ".conv.conv.parametrizations.weight.original1", ".conv.conv.weight", ".weight"):
            w = find(f"encoder.model.{idx}{suffix}")
            if w is not None:
                break
        if w is None:
            break
        kernels.append(int(w.shape[-1]) // 2)
    if len(kernels) == 4:
        out["ratios"] = list(reversed(kernels))
        out["hop_length"] = int(math.prod(kernels))
    first = find("encoder.model.0.conv.conv.weight_v")
    if first is None:
        first = find("encoder.model.0.weight")
    if first is not None:
        out["n_filters"] = int(first.shape[0])
    return out


def check_pairing(card_config: Mapping[str, Any], sniffed: Mapping[str, Any], *, what: str = "checkpoint") -> None:
    """Raise ConfigError when the card's (yaml) config disagrees with the checkpoint's shapes."""
    from ._core import ConfigError

    known = {f.name for f in fields(WavTokenizerConfig)}
    bad = [
        f"{k}: card/yaml says {card_config[k]!r}, {what} has {sniffed[k]!r}"
        for k in sorted(set(card_config) & set(sniffed) & known)
        if _norm(card_config[k]) != _norm(sniffed[k])
    ]
    if bad:
        raise ConfigError(
            f"WavTokenizer: the config paired with this {what} does not fit it ({'; '.join(bad)}). "
            "40-token checkpoints (*_600_*) pair with wavtokenizer_smalldata_frame40_*.yaml, "
            "75-token ones (*_320_*) with a frame75 yaml; pick the matching card or drop the override."
        )


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value
