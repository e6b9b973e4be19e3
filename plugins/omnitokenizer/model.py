"""OmniTokenizer (Wang et al. 2024): one transformer tokenizer for images and videos.

Parameter names are those of ``FoundationVision/OmniTokenizer`` ``VQGAN`` (``encoder.*``,
``decoder.*``, ``pre_vq_conv.1``, ``post_vq_conv.1``, ``codebook.embeddings`` and its EMA buffers);
the discriminators and the LPIPS network of the Lightning checkpoint are dropped by name
(:data:`DROPPED_PREFIXES`). The transformers are :class:`zoo.nn.spacetime.SpaceTimeTransformer`.

A clip of ``1 + k * temporal_patch_size`` frames: the first frame is patchified alone (so an image
is a one-frame video, "first frame causal"), the others in tubelets. Pixels are in the
reference's ``[-0.5, 0.5]`` inside the model; :meth:`OmniTokenizer.encode` / :meth:`decode` take
and return zoo's ``[-1, 1]``. Stages (what the parity tests compare): :meth:`encode_latents`
(-> ``[B, codebook_dim (x2 for the VAE), t, h, w]``), :meth:`quantize` (ids ``[B, t, h, w]``),
:meth:`decode_latents` (codes or VAE samples ``[B, C, t, h, w]`` -> pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError, TokenError
from zoo.model import ZooModel
from zoo.nn.spacetime import SpaceTimeTransformer

from .config import OmniTokenizerConfig

__all__ = ["OmniTokenizer", "DROPPED_PREFIXES"]

#: Training-only parts of the Lightning checkpoint, dropped by name at load.
DROPPED_PREFIXES = ("image_discriminator.", "video_discriminator.", "perceptual_model.")


class _Rearrange(nn.Module):
    """Placeholder at index 0 of the reference's ``nn.Sequential`` patch embeddings (an einops ``Rearrange``)."""

    def forward(self, x):  # pragma: no cover - never called; the model rearranges explicitly
        return x


def _transformers(cfg: OmniTokenizerConfig, block: str) -> tuple[SpaceTimeTransformer, SpaceTimeTransformer]:
    kw = dict(dim_head=cfg.dim_head, heads=cfg.heads, ff_mult=cfg.ff_mult, peg=True, peg_causal=cfg.causal_in_peg)
    spatial = SpaceTimeTransformer(cfg.embedding_dim, depth=len(block), block=block, window_size=cfg.twod_window_size,
                                   spatial_pos=cfg.spatial_pos, **kw)
    temporal = SpaceTimeTransformer(cfg.embedding_dim, depth=cfg.temporal_depth, block="t" * cfg.temporal_depth,
                                    causal=cfg.causal_in_temporal_transformer, **kw)
    return spatial, temporal


class _Encoder(nn.Module):
    def __init__(self, cfg: OmniTokenizerConfig):
        super().__init__()
        c, p, pt, d = cfg.image_channels, cfg.patch_size, cfg.temporal_patch_size, cfg.embedding_dim
        self.p, self.pt = p, pt
        self.to_patch_emb_first_frame = nn.Sequential(_Rearrange(), nn.LayerNorm(c * p * p), nn.Linear(c * p * p, d), nn.LayerNorm(d))
        self.to_patch_emb = nn.Sequential(_Rearrange(), nn.LayerNorm(c * pt * p * p), nn.Linear(c * pt * p * p, d), nn.LayerNorm(d))
        self.enc_spatial_transformer, self.enc_temporal_transformer = _transformers(cfg, cfg.enc_block)

    def _embed(self, seq: nn.Sequential, x: torch.Tensor, pt: int) -> torch.Tensor:
        b, c, t, hh, ww = x.shape
        p = self.p
        x = x.reshape(b, c, t // pt, pt, hh // p, p, ww // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
        x = x.reshape(b, t // pt, hh // p, ww // p, c * pt * p * p)  # 'b c (t pt) (h p1) (w p2) -> b t h w (c pt p1 p2)'
        return seq[3](seq[2](seq[1](x)))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, C, 1 + k * pt, H, W]`` in [-0.5, 0.5] -> ``[B, D, 1 + k, h, w]``."""
        tokens = self._embed(self.to_patch_emb_first_frame, video[:, :, :1], 1)
        if video.shape[2] > 1:
            tokens = torch.cat([tokens, self._embed(self.to_patch_emb, video[:, :, 1:], self.pt)], dim=1)
        b, t, h, w, d = tokens.shape
        x = self.enc_spatial_transformer(tokens.reshape(b * t, h * w, d), video_shape=(b, t, h, w), is_spatial=True)
        x = x.reshape(b, t, h, w, d).permute(0, 2, 3, 1, 4).reshape(b * h * w, t, d)
        x = self.enc_temporal_transformer(x, video_shape=(b, t, h, w), is_spatial=False)
        return x.reshape(b, h, w, t, d).permute(0, 4, 3, 1, 2)


class _Decoder(nn.Module):
    def __init__(self, cfg: OmniTokenizerConfig):
        super().__init__()
        c, p, pt, d = cfg.image_channels, cfg.patch_size, cfg.temporal_patch_size, cfg.embedding_dim
        self.c, self.p, self.pt = c, p, pt
        self.dec_spatial_transformer, self.dec_temporal_transformer = _transformers(cfg, cfg.dec_block)
        self.to_pixels_first_frame = nn.Sequential(nn.Linear(d, c * p * p))
        self.to_pixels = nn.Sequential(nn.Linear(d, c * pt * p * p))

    def _pixels(self, linear: nn.Linear, x: torch.Tensor, pt: int, out: torch.Tensor) -> None:
        """Write ``linear(x)`` as pixels into ``out`` ``[B, C, t * pt, H, W]`` (no concatenated copy)."""
        b, t, h, w, _ = x.shape
        p, c = self.p, self.c
        x = linear(x).reshape(b, t, h, w, c, pt, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
        out.view(b, c, t, pt, h, p, w, p).copy_(x)  # 'b t h w (c pt p1 p2) -> b c (t pt) (h p1) (w p2)'

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, D, t, h, w]`` -> pixels ``[B, C, 1 + (t - 1) * pt, H, W]`` in about [-0.5, 0.5]."""
        b, d, t, h, w = z.shape
        x = z.permute(0, 3, 4, 2, 1).reshape(b * h * w, t, d)
        x = self.dec_temporal_transformer(x, video_shape=(b, t, h, w), is_spatial=False)
        x = x.reshape(b, h, w, t, d).permute(0, 3, 1, 2, 4).reshape(b * t, h * w, d)
        x = self.dec_spatial_transformer(x, video_shape=(b, t, h, w), is_spatial=True).reshape(b, t, h, w, d)
        out = x.new_empty(b, self.c, 1 + (t - 1) * self.pt, h * self.p, w * self.p)
        self._pixels(self.to_pixels_first_frame[0], x[:, :1], 1, out[:, :, :1])
        if t > 1:
            self._pixels(self.to_pixels[0], x[:, 1:], self.pt, out[:, :, 1:])
        return out


class _Codebook(nn.Module):
    """The reference's EMA codebook at inference: ``embeddings`` (plus its training buffers, loaded and unused)."""

    def __init__(self, n_codes: int, dim: int):
        super().__init__()
        self.register_buffer("embeddings", torch.randn(n_codes, dim))
        self.register_buffer("N", torch.zeros(n_codes))
        self.register_buffer("z_avg", torch.zeros(n_codes, dim))
        self.register_buffer("codebook_usage", torch.zeros(n_codes))


class OmniTokenizer(ZooModel, nn.Module):
    """OmniTokenizer VQ or VAE (see the module doc)."""

    takes_images = True  # `zoo reconstruct photo.png --model omnitokenizer` encodes a one-frame input

    def __init__(self, cfg: OmniTokenizerConfig):
        super().__init__()
        self.config = cfg
        self.encoder = _Encoder(cfg)
        self.decoder = _Decoder(cfg)
        cd, d = int(cfg.codebook_dim), int(cfg.embedding_dim)
        self.pre_vq_conv = nn.Sequential(nn.Identity(), nn.Linear(d, cd * (2 if cfg.use_vae else 1)), nn.Identity())
        self.post_vq_conv = nn.Sequential(nn.Identity(), nn.Linear(cd, d), nn.Identity())
        self.codebook = _Codebook(int(cfg.n_codes), cd)

    # ------------------------------------------------------------------ facts

    @property
    def image_size(self) -> int:
        return int(self.config.resolution)

    @property
    def num_frames(self) -> int:
        """Frames per clip when cutting long videos (the 17 of the releases' training clips)."""
        return int(self.config.sequence_length)

    @property
    def codebook_size(self) -> int | None:
        return None if self.config.use_vae else int(self.config.n_codes)

    def describe_facts(self) -> dict:
        return {"image_size": self.image_size, "frames": f"1 + k*{self.config.temporal_patch_size}",
                "kind": "vae" if self.config.use_vae else "vq"}

    default_name = "omnitokenizer"

    # ------------------------------------------------------------------ stages

    def _channels(self, seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        return seq[1](x.movedim(1, -1)).movedim(-1, 1)

    def encode_latents(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, C, T, H, W]`` in [-0.5, 0.5] -> ``pre_vq_conv`` output ``[B, codebook_dim (x2 VAE), t, h, w]``."""
        return self._channels(self.pre_vq_conv, self.encoder(video))

    def quantize(self, h: torch.Tensor) -> torch.Tensor:
        """VQ: ids ``[B, t, h, w]`` of the nearest code (after l2-normalising ``h`` when ``l2_code``)."""
        from zoo.nn.quantize import squared_distances

        if self.config.l2_code:
            h = F.normalize(h, p=2, dim=1)
        flat = h.movedim(1, -1).reshape(-1, h.shape[1]).float()
        ids = squared_distances(flat, self.codebook.embeddings.float()).argmin(dim=1)
        return ids.view(h.shape[0], *h.shape[2:])

    def posterior(self, h: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """VAE: the posterior mean (or, with ``sample``, one draw through ``generator``) ``[B, C, t, h, w]``."""
        mean, logvar = h.chunk(2, dim=1)
        if not sample:
            return mean
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        return mean + std * torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Codes / VAE latents ``[B, C, t, h, w]`` -> pixels in about [-0.5, 0.5]."""
        return self.decoder(self._channels(self.post_vq_conv, z))

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[B, t, h, w]`` -> code vectors ``[B, codebook_dim, t, h, w]``."""
        return F.embedding(ids, self.codebook.embeddings).movedim(-1, 1)

    # ------------------------------------------------------------------ public interface

    def _check(self, x) -> tuple[torch.Tensor, bool]:
        from zoo.media.image import check_images
        from zoo.media.video import check_video

        is_image = isinstance(x, torch.Tensor) and x.dim() == 4
        s = self.image_size
        if is_image:
            x = check_images(x, size=s, model=self.name)[:, :, None]
        else:
            x = check_video(x, size=s, model=self.name)
        pt = int(self.config.temporal_patch_size)
        if (x.shape[2] - 1) % pt:
            raise InputError(f"{self.name} takes 1 + k*{pt} frames (the first frame alone, then tubelets of {pt}), got "
                             f"{x.shape[2]}; load e.g. num_frames={1 + 4 * pt}")
        p = next(self.parameters())
        return x.to(device=p.device, dtype=p.dtype), is_image

    @torch.no_grad()
    def encode(self, x: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None):
        """Images ``[B, 3, S, S]`` or clips ``[B, 3, 1 + k*pt, S, S]`` in ``[-1, 1]`` ->
        :class:`zoo.interfaces.Tokens` (VQ: ids ``[B, t*h*w]``, ``meta["grid"] = (t, h, w)``) or
        :class:`zoo.interfaces.Latents` (VAE: the posterior mean ``[B, t*h*w, C]``; ``sample=True``
        draws through ``generator`` as the reference's ``posterior.sample()`` does)."""
        from zoo.interfaces import Latents, Tokens

        video, is_image = self._check(x)
        h = self.encode_latents(video * 0.5)  # [-1, 1] -> the reference's [-0.5, 0.5]
        grid = tuple(h.shape[2:])
        meta = {"grid": grid, "image": is_image}
        if self.config.use_vae:
            z = self.posterior(h, sample=sample, generator=generator)
            return Latents(values=z.flatten(2).transpose(1, 2).float().contiguous(), tokenizer=self.name, meta=meta)
        if sample or generator is not None:
            raise InputError("sample / generator apply to the VAE releases; VQ encoding is deterministic")
        ids = self.quantize(h)
        return Tokens(ids=ids.flatten(1), codebook_size=int(self.config.n_codes), tokenizer=self.name, meta=meta)

    @torch.no_grad()
    def decode(self, tokens, grid: tuple[int, int, int] | None = None, clamp: bool = True) -> torch.Tensor:
        """Tokens / Latents from :meth:`encode` (or ids ``[B, t*h*w]`` with ``grid=(t, h, w)``) -> images
        ``[B, 3, S, S]`` (one-frame inputs) or clips ``[B, 3, 1 + (t-1)*pt, S, S]`` in ``[-1, 1]``."""
        from zoo.interfaces import Latents, as_latents, as_tokens

        meta = getattr(tokens, "meta", {}) or {}
        grid = tuple(grid or meta.get("grid") or ())
        if len(grid) != 3:
            side = self.image_size // int(self.config.patch_size)
            raise TokenError(f"{self.name} decodes a (t, h, w) grid of tokens: pass the Tokens from encode or grid=(t, {side}, {side})")
        t, h, w = (int(v) for v in grid)
        p = next(self.parameters())
        if self.config.use_vae:
            lat = as_latents(tokens, dim=int(self.config.codebook_dim), tokenizer=self.name)
            if lat.values.shape[1] != t * h * w:
                raise TokenError(f"{lat.values.shape[1]} latents do not fill the grid {grid}")
            z = lat.values.to(p.device, p.dtype).transpose(1, 2).reshape(-1, lat.dim, t, h, w)
        else:
            if isinstance(tokens, Latents):
                raise TokenError(f"{self.name} is a VQ tokenizer: decode its Tokens, not Latents")
            tok = as_tokens(tokens, int(self.config.n_codes), self.name)
            if tok.ids.shape[1] != t * h * w or (tok.lengths != t * h * w).any():
                raise TokenError(f"{tok.ids.shape[1]} ids do not fill the grid {grid} ({t * h * w} per item)")
            z = self.ids_to_codes(tok.ids.to(p.device).view(-1, t, h, w)).to(p.dtype)
        out = self.decode_latents(z).mul_(2.0)  # [-0.5, 0.5] -> [-1, 1], in place (no second clip-sized buffer)
        out = out.clamp_(-1.0, 1.0) if clamp else out
        return out[:, :, 0] if meta.get("image") or (t == 1 and not meta) else out
