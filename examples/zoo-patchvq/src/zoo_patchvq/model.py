"""A toy patch-VQ image tokenizer: the smallest real model a plugin can ship.

Example:
    >>> import torch
    >>> m = PatchVQ(PatchVQConfig())
    >>> tokens = m.encode(torch.zeros(2, 3, 32, 32))
    >>> tuple(tokens.ids.shape), m.decode(tokens).shape
    ((2, 64), torch.Size([2, 3, 32, 32]))
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import ConfigError, TokenError
from zoo.interfaces import Tokens, as_tokens
from zoo.model import ZooModel
from zoo.nn.quantize import nearest_code
from zoo.weights import load_safetensors


@dataclass
class PatchVQConfig:
    image_size: int = 32
    patch_size: int = 4
    dim: int = 8
    codebook_size: int = 64


class PatchVQ(ZooModel, torch.nn.Module):  # ZooModel: one-line repr, name = card name, module_tree()
    """Patches -> linear -> nearest code; codes -> linear -> patches."""

    def __init__(self, config: PatchVQConfig):
        super().__init__()
        self.cfg = config
        self.image_size = config.image_size
        patch_dim = 3 * config.patch_size**2
        self.proj_in = torch.nn.Linear(patch_dim, config.dim)
        self.codebook = torch.nn.Parameter(torch.randn(config.codebook_size, config.dim))
        self.proj_out = torch.nn.Linear(config.dim, patch_dim)

    def _name(self) -> str:
        return getattr(getattr(self, "card", None), "name", "") or "patchvq"

    def _check(self, x: torch.Tensor) -> None:
        """Core's image check: float [B, 3, S, S], finite, in [-1, 1] (MediaError naming the size)."""
        from zoo.media.image import check_images

        check_images(x, size=self.cfg.image_size, model=self._name())

    def encode(self, x: torch.Tensor) -> Tokens:
        """``[B, 3, H, W]`` in [-1, 1] -> Tokens of ``(H/p)*(W/p)`` ids, row-major."""
        self._check(x)
        x = x.to(self.codebook.dtype)
        p = self.cfg.patch_size
        patches = F.unfold(x, p, stride=p).transpose(1, 2)  # [B, N, 3*p*p]
        z = self.proj_in(patches)
        ids = nearest_code(z, self.codebook)  # core's shared codebook search
        return Tokens(ids=ids, codebook_size=self.cfg.codebook_size, tokenizer=self._name())

    def decode(self, tokens) -> torch.Tensor:
        """Tokens (any prefix) -> images; patches past a prefix are mid-grey."""
        tokens = as_tokens(tokens, self.cfg.codebook_size, self._name())  # refuses another tokenizer's tokens
        n = (self.cfg.image_size // self.cfg.patch_size) ** 2
        if tokens.ids.dim() != 2 or tokens.max_length > n:
            raise TokenError(f"{self._name()} decodes at most {n} ids per image ([B, k], k <= {n}), got {tuple(tokens.ids.shape)}")
        patches = self.proj_out(self.codebook[tokens.ids])  # [B, k, 3*p*p]
        valid = torch.arange(tokens.max_length)[None, :] < tokens.lengths[:, None]
        patches = patches * valid[..., None].to(patches)
        full = patches.new_zeros(len(tokens), n, patches.shape[-1])
        full[:, : tokens.max_length] = patches
        p = self.cfg.patch_size
        return F.fold(full.transpose(1, 2), self.cfg.image_size, p, stride=p).clamp(-1, 1)


class PatchVQBuilder(ModelBuilder):
    """Release format: ``model.safetensors`` with the config as JSON in metadata key ``config``."""

    name = "patchvq"
    config_class = PatchVQConfig

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        state, meta = load_safetensors(files["model.safetensors"])
        try:
            config = json.loads(meta.get("config", "{}"))  # data only: never imported or evaluated
        except ValueError as exc:
            raise ConfigError(f"{files.origin}: the 'config' metadata is not JSON ({exc})") from None
        if not isinstance(config, dict):
            raise ConfigError(f"{files.origin}: the 'config' metadata must be a JSON object, got {type(config).__name__}")
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: PatchVQConfig) -> PatchVQ:
        return PatchVQ(config)
