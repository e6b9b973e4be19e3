"""The ``languagecodec`` builder: the official Lightning ``.ckpt`` -> :class:`~.model.LanguageCodec`.

The architecture is the card's (the values of the official yaml; the release has one config);
``read_checkpoint`` checks the widths and sizes the weights imply against it before loading.

Example:
    >>> b = LanguageCodecBuilder()
    >>> b.name, b.config_class.__name__
    ('languagecodec', 'LanguageCodecConfig')
"""

from __future__ import annotations

from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder, weights_file

from .config import LanguageCodecConfig

__all__ = ["LanguageCodecBuilder", "config_from_state_dict"]

_WEIGHT_SUFFIXES = (".ckpt", ".safetensors", ".bin", ".pt", ".pth")


def config_from_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """Sizes the zoo-layout weights imply (codebooks, widths, layers)."""
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("quantizer.layers.")})
    embed = state["quantizer.layers.0._codebook.embed"]
    blocks = {int(k.split(".")[2]) for k in state if k.startswith("backbone.convnext.")}
    return {"num_quantizers": len(layers), "codebook_size": int(embed.shape[0]), "dimension": int(embed.shape[1]),
            "n_filters": int(state["encoder.model.0.weight"].shape[0]), "backbone_dim": int(state["backbone.embed.weight"].shape[0]),
            "intermediate_dim": int(state["backbone.convnext.0.pwconv1.weight"].shape[0]), "num_layers": len(blocks),
            "adanorm_num_embeddings": int(state["backbone.norm.scale.weight"].shape[0]),
            "n_fft": int(state["head.out.weight"].shape[0]) - 2}


class LanguageCodecBuilder(ModelBuilder):
    """Builds the Language-Codec release (8 x 1024 masked-channel RVQ, 75 Hz)."""

    name = "languagecodec"
    config_class = LanguageCodecConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.errors import CheckpointError

        from .checkpoint import convert_state_dict, load_ckpt

        path, raw = weights_file(files, "Language-Codec", _WEIGHT_SUFFIXES, read_pickle=load_ckpt, expected="a .ckpt")
        state = convert_state_dict(raw)
        try:
            config = config_from_state_dict(state)
        except KeyError as exc:
            raise CheckpointError(f"{path.name} lacks {exc} : not a complete Language-Codec checkpoint") from None
        return Checkpoint(state_dict=state, config=config, extra={"path": str(path)})

    def build(self, config: LanguageCodecConfig):
        from .model import LanguageCodec

        return LanguageCodec(config)

    def convert(self, state_dict: Mapping[str, Any], config: Any) -> Mapping[str, Any]:
        from .checkpoint import convert_state_dict

        return convert_state_dict(state_dict)
