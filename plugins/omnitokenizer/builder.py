"""The ``omnitokenizer`` builder: a release's Lightning ``.ckpt`` -> :class:`~.model.OmniTokenizer`.

``read_checkpoint`` loads the file with ``weights_only=True``, allowing exactly
``argparse.Namespace`` (the training arguments Lightning stores under ``hyper_parameters["args"]``;
any other class becomes an inert placeholder), and maps the architecture fields of those
arguments onto :class:`~.config.OmniTokenizerConfig` as data. ``convert`` drops
:data:`~.model.DROPPED_PREFIXES` (the two discriminators and the LPIPS network) by name; every other
key loads strictly.

Example:
    >>> b = OmniTokenizerBuilder()
    >>> b.name, sorted(b.convert({"image_discriminator.a": 0, "perceptual_model.b": 0, "codebook.embeddings": 1}, None))
    ('omnitokenizer', ['codebook.embeddings'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder

from .config import OmniTokenizerConfig, from_hparams

__all__ = ["OmniTokenizerBuilder", "read_release"]


def read_release(path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state_dict, config fields)`` of an OmniTokenizer ``.ckpt``."""
    import argparse

    from zoo.errors import CheckpointError
    from zoo.weights import load_checkpoint

    ckpt = load_checkpoint(path, what="OmniTokenizer", allow=(argparse.Namespace,), inert_unknown=True)
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: no 'state_dict' in this OmniTokenizer checkpoint (keys: {sorted(ckpt)[:8]}); "
                              "the releases are Lightning .ckpt files from Daniel0724/OmniTokenizer")
    hparams = ckpt.get("hyper_parameters") or {}
    args = hparams.get("args", hparams) if isinstance(hparams, Mapping) else hparams
    args = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    return dict(state), from_hparams(args) if args else {}


class OmniTokenizerBuilder(ModelBuilder):
    """Builds every OmniTokenizer release (VQ and VAE)."""

    name = "omnitokenizer"
    config_class = OmniTokenizerConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.errors import CheckpointError

        ckpts = [p for n, p in files.paths.items() if n.endswith(".ckpt")]
        if not ckpts:
            raise CheckpointError(f"no OmniTokenizer .ckpt among {sorted(files.paths)} ({files.origin})")
        state, config = read_release(ckpts[0])
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: OmniTokenizerConfig):
        from .model import OmniTokenizer

        return OmniTokenizer(config)

    def convert(self, state_dict: Mapping[str, Any], config: OmniTokenizerConfig) -> Mapping[str, Any]:
        from .model import DROPPED_PREFIXES

        return {k: v for k, v in state_dict.items() if not k.startswith(DROPPED_PREFIXES)}
