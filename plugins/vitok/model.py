"""ViTok-v2: a ViT autoencoder over NaFlex patch sequences (any resolution, ragged batches).

Encoder: ``patch_embed`` (linear on ``3*p*p`` pixels) -> ``encoder_blocks`` -> ``to_code`` ->
LayerNorm without affine (float32) = latents ``[N, C]``. Decoder: ``decoder_embed`` ->
``decoder_blocks`` -> ``to_pixels`` -> patches -> image. Blocks are :class:`zoo.nn.prenorm.PreNormBlock`
in their parallel form (RMS norm, qk RMS norm, 2-D axial RoPE on the patch's row/column with
interleaved pairs, SwiGLU, LayerScale on ``attn + mlp``, no biases). Images of different sizes
in one batch are padded and masked (key padding), as the reference's SDPA path does.

Latents: :class:`zoo.interfaces.Latents` ``[B, N, C]`` (row-major over each image's patch grid,
zero-padded), ``lengths`` = patches per image; ``meta["grid"]`` = (rows, cols) and ``meta["size"]``
= (H, W) when every image has the same size, else per-image ``meta["grids"]`` and ``meta["sizes"]``
(sliced with the batch).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError, TokenError
from zoo.model import ZooModel
from zoo.nn.masks import KeyPaddingMask
from zoo.nn.prenorm import BlockConfig, PreNormBlock
from zoo.nn.rope import rope_tables

from .config import TowerArch, ViTokConfig

__all__ = ["ViTokV2"]


def _block_config(t: TowerArch) -> BlockConfig:
    return BlockConfig(dim=t.width, heads=t.heads, mlp_hidden=t.mlp_hidden, norm="rms", norm_eps=1e-6, mlp="swiglu",
                       mlp_bias=False, qkv_bias=False, proj_bias=False, qk_norm="rms", qk_norm_eps=1e-6,
                       layer_scale=True, parallel=True, rope_rotation="interleaved")


class ViTokV2(ZooModel, nn.Module):
    """``encode(images) -> Latents``, ``decode(latents) -> images`` (see the module doc).

    Example:
        >>> m = ViTokV2(ViTokConfig(variant="w32_d1_h2-w32_d2_h2/1x8x4", image_size=16)).eval()
        >>> z = m.encode(torch.zeros(2, 3, 16, 24))
        >>> tuple(z.values.shape), z.meta["grid"]
        ((2, 6, 4), (2, 3))
        >>> tuple(m.decode(z).shape)
        (2, 3, 16, 24)
        >>> ragged = m.encode([torch.zeros(3, 16, 16), torch.zeros(3, 10, 20)])
        >>> ragged.lengths.tolist(), [tuple(x.shape) for x in m.decode(ragged)]
        ([4, 6], [(3, 16, 16), (3, 10, 20)])
    """

    def __init__(self, config: ViTokConfig):
        super().__init__()
        self.config = config
        a = config.arch()
        self.arch = a
        self.patch_embed = nn.Linear(a.pixels_per_token, a.encoder.width)
        self.encoder_blocks = nn.ModuleList(PreNormBlock(_block_config(a.encoder)) for _ in range(a.encoder.depth))
        self.to_code = nn.Linear(a.encoder.width, a.channels)
        self.decoder_embed = nn.Linear(a.channels, a.decoder.width)
        self.decoder_blocks = nn.ModuleList(PreNormBlock(_block_config(a.decoder)) for _ in range(a.decoder.depth))
        self.to_pixels = nn.Linear(a.decoder.width, a.pixels_per_token)

    # ------------------------------------------------------------------ facts
    @property
    def patch_size(self) -> int:
        return self.arch.patch

    @property
    def latent_channels(self) -> int:
        return self.arch.channels

    @property
    def image_size(self) -> int:
        """The side ``zoo reconstruct`` resizes to (the model itself takes any size)."""
        return int(self.config.image_size)

    def describe_facts(self) -> dict[str, Any]:
        return {"latents": f"(H/{self.patch_size})x(W/{self.patch_size})x{self.latent_channels}", "any_size": True}

    default_name = "vitok"

    # ------------------------------------------------------------------ stages
    def _rope(self, rows: torch.Tensor, cols: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.stack([rows, cols], dim=-1).float()
        return rope_tables(pos, [head_dim // 2, head_dim // 2], self.config.rope_theta)

    def _run(self, x: torch.Tensor, blocks: nn.ModuleList, tower: TowerArch, rows: torch.Tensor, cols: torch.Tensor,
             valid: torch.Tensor | None) -> torch.Tensor:
        rope = self._rope(rows, cols, tower.width // tower.heads)
        if valid is None:  # every sequence full: one position table for the batch
            rope = (rope[0][0], rope[1][0])
        mask = None if valid is None else KeyPaddingMask(valid)
        for block in blocks:
            x = block(x, rope=rope, mask=mask)
        return x

    def _images(self, images: Any) -> list[torch.Tensor]:
        from zoo.media.image import check_images

        if isinstance(images, torch.Tensor):
            check_images(images, model=self.name)
            return list(images.unbind(0))
        if not isinstance(images, (list, tuple)) or not images:
            raise InputError(f"{self.name} encodes images [B, 3, H, W] in [-1, 1] or a non-empty list of [3, H, W]")
        for i, im in enumerate(images):
            if not isinstance(im, torch.Tensor) or im.dim() != 3:
                raise InputError(f"image {i} must be a [3, H, W] tensor, got "
                                 f"{tuple(im.shape) if isinstance(im, torch.Tensor) else type(im).__name__}")
            check_images(im[None], model=self.name)
        return list(images)

    def encode_patches(self, images: Any):
        """Images -> (``[B, N, C]`` latents, the :class:`~zoo.nn.naflex.PatchDict` they came from)."""
        from zoo.nn.naflex import patchify

        p = self.patch_embed.weight
        items = [im.to(device=p.device, dtype=p.dtype) for im in self._images(images)]
        pd = patchify(items, self.patch_size)
        valid = None if pd.uniform else pd.mask
        x = self._run(self.patch_embed(pd.patches), self.encoder_blocks, self.arch.encoder, pd.rows, pd.cols, valid)
        code = self.to_code(x)
        z = F.layer_norm(code.float(), (code.shape[-1],), eps=1e-6).to(code.dtype)
        if valid is not None:
            z = z * valid[..., None]
        return z, pd

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def encode(self, images: Any):
        """Images ``[B, 3, H, W]`` in [-1, 1] (any H, W) or a list of ``[3, H, W]`` of different sizes
        -> :class:`zoo.interfaces.Latents` (see the module doc)."""
        from zoo.interfaces import Latents

        z, pd = self.encode_patches(images)
        meta: dict[str, Any] = {"patch": self.patch_size}
        if len(set(pd.sizes)) == 1:  # one shared grid and size
            meta.update(grid=pd.grids[0], size=pd.sizes[0])
        else:  # per image (sliced with the batch)
            meta.update(grids=list(pd.grids), sizes=list(pd.sizes))
        return Latents(values=z.contiguous(), tokenizer=self.name, lengths=pd.lengths, meta=meta)

    def _layout(self, latents: Any, grid: Sequence[int] | None, sizes: Sequence[Sequence[int]] | None):
        from zoo.interfaces import Latents, as_latents

        c = self.latent_channels
        lat = as_latents(latents, dim=c, tokenizer=self.name)
        meta = latents.meta if isinstance(latents, Latents) else {}
        b = lat.batch_size
        if grid is not None:
            grids = [tuple(int(v) for v in grid)] * b
        elif "grids" in meta:
            grids = [tuple(int(v) for v in g) for g in meta["grids"]]
        elif meta.get("grid") is not None:
            grids = [tuple(int(v) for v in meta["grid"])] * b
        else:
            grids = []
            for n in lat.lengths.tolist():
                side = int(round(n ** 0.5))
                if side * side != n:
                    raise TokenError(f"{n} latents are not a square grid; pass grid=(rows, cols) or the Latents from "
                                     "encode() (they carry meta['grid'])")
                grids.append((side, side))
        if len(grids) != b:
            raise TokenError(f"{len(grids)} grids for a batch of {b} latent sequences")
        for i, ((r, cc), n) in enumerate(zip(grids, lat.lengths.tolist())):
            if r * cc != n:
                raise TokenError(f"{self.name} decodes whole patch grids: item {i} has {n} latents, its "
                                 f"{r}x{cc} grid needs {r * cc}")
        if sizes is None and meta.get("sizes") is not None:
            sizes = meta["sizes"]
        elif sizes is None and meta.get("size") is not None and grid is None:
            sizes = [meta["size"]] * b
        elif sizes is None:
            sizes = [(r * self.patch_size, cc * self.patch_size) for r, cc in grids]
        if len(sizes) != b:
            raise TokenError(f"{len(sizes)} image sizes for a batch of {b} latent sequences")
        if not bool(torch.isfinite(lat.values).all()):
            raise TokenError("latents must be finite (NaN or Inf found)")
        return lat, grids, [tuple(int(v) for v in s) for s in sizes]

    @torch.no_grad()
    def decode(self, latents: Any, *, grid: Sequence[int] | None = None, sizes: Sequence[Sequence[int]] | None = None,
               clamp: bool = True) -> torch.Tensor | list[torch.Tensor]:
        """Latents from :meth:`encode` (or ``[B, N, C]`` with ``grid=(rows, cols)``; square grids
        are inferred) -> images ``[B, 3, H, W]`` in [-1, 1], cropped to ``meta["sizes"]``; a list of
        ``[3, H, W]`` when the sizes differ. ``clamp=False`` keeps the raw decoder output."""
        from zoo.nn.naflex import PatchDict, unpatchify

        lat, grids, sizes = self._layout(latents, grid, sizes)
        p = self.decoder_embed.weight
        z = lat.values.to(device=p.device, dtype=p.dtype)
        b, n = z.shape[:2]
        rows = torch.zeros(b, n, dtype=torch.long, device=z.device)
        cols = torch.zeros_like(rows)
        valid = torch.zeros(b, n, dtype=torch.bool, device=z.device)
        for i, (r, cc) in enumerate(grids):
            k = r * cc
            idx = torch.arange(k, device=z.device)
            rows[i, :k], cols[i, :k], valid[i, :k] = idx // cc, idx % cc, True
        uniform = bool(valid.all())
        x = self._run(self.decoder_embed(z), self.decoder_blocks, self.arch.decoder, rows, cols,
                      None if uniform else valid)
        patches = self.to_pixels(x)
        pd = PatchDict(patches=patches, mask=valid, rows=rows, cols=cols, sizes=sizes, grids=grids, patch=self.patch_size)
        out = unpatchify(patches, pd)
        if clamp:
            out = out.clamp(-1.0, 1.0) if isinstance(out, torch.Tensor) else [o.clamp(-1.0, 1.0) for o in out]
        return out
