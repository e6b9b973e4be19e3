"""What differs between the transformers codecs: class names, rates, and one encode/decode call each.

A :class:`CodecSpec` names the transformers config, model and feature-extractor classes of one
family and says how to call its ``encode`` / ``decode`` for a batch of equal-length items; the
model wrapper (``model.py``) owns everything else (inputs, resampling, batching, chunking,
Tokens). Class names are strings: transformers is imported only when a model is built.

Example:
    >>> SPECS["dac"].model_class, SPECS["encodec"].feature_extractor
    ('DacModel', 'EncodecFeatureExtractor')
    >>> SPECS["xcodec2"].local, SPECS["dac"].local
    (False, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["CodecSpec", "SPECS", "transformers_module"]

#: transformers' first release with every class this plugin and its tests use (WavTokenizerModel
#: arrived in 5.24.0; Xcodec2Model between 5.10.4 and 5.14.1).
MIN_TRANSFORMERS = "5.24.0"


def transformers_module():
    """``import transformers`` (after ``zoo.compat.torchvision`` makes torchvision importable), or
    a :class:`~zoo.errors.ZooError` naming the extra to install."""
    from zoo.compat.torchvision import ensure_torchvision
    from zoo.errors import ZooError

    ensure_torchvision()
    try:
        import transformers
    except ModuleNotFoundError:
        raise ZooError("this codec runs on transformers, which is not installed: "
                       f"`pip install 'zoo[transformers]'` (transformers>={MIN_TRANSFORMERS})") from None
    from packaging.version import Version

    if Version(transformers.__version__.split("+")[0]) < Version(MIN_TRANSFORMERS):
        raise ZooError(f"transformers {transformers.__version__} is too old for zoo's codecs: "
                       f"`pip install -U 'transformers>={MIN_TRANSFORMERS}'`")
    return transformers


@dataclass(frozen=True)
class CodecSpec:
    """One transformers codec family.

    ``local``: the encoder and decoder are convolutional only, so a window with a margin wider
    than their receptive field gives exactly the frames of one full pass (chunking is exact);
    otherwise chunking changes results near window edges (LSTM state, attention, or a global
    semantic model).
    """

    family: str
    config_class: str
    model_class: str
    feature_extractor: str
    local: bool

    # ------------------------------------------------------------------ rates
    def sample_rate(self, cfg: Any) -> int:
        return int(getattr(cfg, "sampling_rate", None) or cfg.sample_rate)

    def channels(self, cfg: Any) -> int:
        return int(getattr(cfg, "audio_channels", 1) or 1)

    def hop(self, cfg: Any) -> int:
        """Samples per token frame."""
        if self.family == "mimi":
            return int(round(self.sample_rate(cfg) / cfg.frame_rate))
        return int(cfg.hop_length)

    def num_frames(self, cfg: Any, length: int) -> int:
        """Token frames of a clip of ``length`` samples (X-Codec 2's extractor appends one sample)."""
        return math.ceil((length + (1 if self.family == "xcodec2" else 0)) / self.hop(cfg))

    def codebook_size(self, cfg: Any) -> int:
        if self.family == "xcodec2":
            return int(math.prod(cfg.quantization_levels)) if hasattr(cfg, "quantization_levels") else int(cfg.codebook_size)
        return int(cfg.codebook_size)

    def num_codebooks(self, cfg: Any) -> int:
        """All residual levels the checkpoint has (the most ``codebooks=`` can ask for)."""
        if self.family == "xcodec2":
            return 1
        if self.family == "dac":
            return int(cfg.n_codebooks)
        if self.family in ("encodec", "xcodec"):
            return int(_quantizers_for_bandwidth(self, cfg, max(cfg.target_bandwidths)))
        return int(cfg.num_quantizers)

    # ------------------------------------------------------------------ calls
    def encode(self, model: Any, inputs: dict[str, Any], q: int) -> tuple[Any, dict[str, Any]]:
        """Codes ``[B, Q>=q, T]`` of one batch from the feature extractor's ``inputs`` (plus, for
        chunked EnCodec, what decoding needs: ``scales`` and ``last_frame_pad_length``)."""
        cfg = model.config
        if self.family == "encodec":
            bw = _bandwidth_for(self, cfg, q)
            out = model.encode(inputs["input_values"], inputs.get("padding_mask"), bandwidth=bw, return_dict=True)
            codes = out.audio_codes  # [chunks, B, Q, F]
            extra = {"chunks": codes.shape[0], "last_frame_pad_length": int(out.last_frame_pad_length or 0),
                     "scales": None if out.audio_scales[0] is None else [s for s in out.audio_scales]}
            return codes.permute(1, 2, 0, 3).flatten(2), extra
        if self.family == "dac":
            return model.encode(inputs["input_values"], n_quantizers=q, return_dict=True).audio_codes, {}
        if self.family == "mimi":
            return model.encode(inputs["input_values"], num_quantizers=q).audio_codes, {}
        if self.family == "xcodec":
            bw = _bandwidth_for(self, cfg, q)
            return model.encode(inputs["input_values"], bandwidth=bw, return_dict=True).audio_codes, {}
        out = model.encode(inputs["input_values"], inputs["input_features"],
                           input_features_mask=inputs.get("input_features_mask"))
        return out.audio_codes, {}

    def decode(self, model: Any, codes: Any, extra: dict[str, Any]) -> Any:
        """Waveform ``[B, C, L]`` of codes ``[B, Q, T]`` (one batch of equal lengths)."""
        if self.family == "encodec":
            chunks = int(extra.get("chunks", 1))
            b, q, t = codes.shape
            framed = codes.view(b, q, chunks, t // chunks).permute(2, 0, 1, 3)
            scales = extra.get("scales") or [None] * chunks
            wav = model.decode(framed, scales, last_frame_pad_length=int(extra.get("last_frame_pad_length", 0)),
                               return_dict=True).audio_values
        elif self.family == "dac":
            wav = model.decode(audio_codes=codes, return_dict=True).audio_values
        elif self.family == "mimi":
            wav = model.decode(codes).audio_values
        elif self.family == "xcodec":
            wav = model.decode(codes, return_dict=True).audio_values
        else:
            wav = model.decode(audio_codes=codes).audio_values
        return wav if wav.dim() == 3 else wav[:, None]


def _quantizers_for_bandwidth(spec: CodecSpec, cfg: Any, bandwidth: float) -> int:
    """transformers' rule (``get_num_quantizers_for_bandwidth``) in config terms."""
    frame_rate = cfg.frame_rate
    bits = math.log2(cfg.codebook_size) * frame_rate
    return int(max(1, math.floor(bandwidth * 1000 / bits)))


def _bandwidth_for(spec: CodecSpec, cfg: Any, q: int) -> float:
    """The smallest published bandwidth that computes at least ``q`` levels (RVQ levels are
    sequential, so the first ``q`` codes do not depend on how many more are computed)."""
    for bw in sorted(cfg.target_bandwidths):
        if _quantizers_for_bandwidth(spec, cfg, bw) >= q:
            return bw
    return max(cfg.target_bandwidths)


SPECS: dict[str, CodecSpec] = {
    "encodec": CodecSpec("encodec", "EncodecConfig", "EncodecModel", "EncodecFeatureExtractor", local=False),
    "dac": CodecSpec("dac", "DacConfig", "DacModel", "DacFeatureExtractor", local=True),
    "mimi": CodecSpec("mimi", "MimiConfig", "MimiModel", "EncodecFeatureExtractor", local=False),
    "xcodec": CodecSpec("xcodec", "XcodecConfig", "XcodecModel", "DacFeatureExtractor", local=False),
    "xcodec2": CodecSpec("xcodec2", "Xcodec2Config", "Xcodec2Model", "Xcodec2FeatureExtractor", local=False),
}
