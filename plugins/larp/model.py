"""LARP (Wang et al. 2024): a holistic video tokenizer, 16x128x128 clip <-> 1024 tokens of 8192.

Module and parameter names are those of ``hywang66/LARP`` ``LARPTokenizer`` so the release's
``model.safetensors`` loads strictly (after dropping the training-only ``prior_model.`` AR prior,
see :data:`DROPPED_PREFIXES`). The transformer blocks are :class:`zoo.nn.vit.ViTBlock` (timm's
``Block`` layout) on zoo's attention entry point; the 3-D patch embedding and the sine-cosine
buffers' initial values come from :mod:`zoo.nn.patch3d` / :mod:`zoo.nn.posemb`.

Stages (what the parity tests compare): :meth:`LARP.encode_latents` (video in [0, 1] ->
bottleneck input ``[B, N, bottleneck_dim]``), :meth:`LARP.quantize` (-> ids; argmax, or a draw
from ``softmax(cos / T)`` with a ``torch.Generator``), :meth:`LARP.ids_to_latents`,
:meth:`LARP.decode_latents` (-> video in [0, 1], unclamped). The public :meth:`LARP.encode` /
:meth:`LARP.decode` work in zoo's ``[-1, 1]`` convention.

Two inference savings over the reference, same numbers up to float rounding: the last encoder
block computes queries, projection and MLP only for the latent-query rows (the patch rows are
discarded) and the last decoder block only for the patch-query rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputTypeError, TokenError
from zoo.model import ZooModel
from zoo.nn.patch3d import PatchEmbed3D, unpatchify_3d
from zoo.nn.posemb import sincos_1d, sincos_3d
from zoo.nn.vit import ViTBlock

from .config import LARPConfig

__all__ = ["LARP", "DROPPED_PREFIXES"]

#: Checkpoint prefixes zoo drops by name: the AR prior (``gptc-S``) trained alongside the tokenizer
#: to shape its latent space; it takes no part in encoding or decoding.
DROPPED_PREFIXES = ("prior_model.",)


class _Transformer(nn.Module):
    """``blocks`` over [context | queries]; returns the query rows (``TransformerEncoderParallel``)."""

    def __init__(self, dim: int, depth: int, heads: int):
        super().__init__()
        self.blocks = nn.ModuleList(ViTBlock(dim, heads, qkv_bias=False) for _ in range(depth))

    def forward(self, context: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        n = query.shape[1]
        h = torch.cat([context, query], dim=1)
        for block in self.blocks[:-1]:
            h = block(h)
        return self.blocks[-1](h, keep_last=n)


class _VQ(nn.Module):
    """The reference's ``SimpleVectorQuantizer`` at inference (``embedding.weight``)."""

    def __init__(self, cfg: LARPConfig):
        super().__init__()
        self.l2_normalized = bool(cfg.l2_normalized)
        self.stochastic = bool(cfg.stochastic)
        self.embedding = nn.Embedding(int(cfg.codebook_size), int(cfg.bottleneck_dim))
        if self.stochastic and cfg.stochastic_temperature <= 0:  # learned temperature
            self.stochastic_temperature_inv = nn.Parameter(torch.tensor(10.0))
        else:
            self.temperature_inv = 1.0 / cfg.stochastic_temperature if self.stochastic else None

    def codebook(self) -> torch.Tensor:
        w = self.embedding.weight.float()
        return F.normalize(w, p=2, dim=-1) if self.l2_normalized else w

    def inv_temperature(self):
        return self.stochastic_temperature_inv if hasattr(self, "stochastic_temperature_inv") else self.temperature_inv

    def forward(self, z: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        z = z.float()
        if self.l2_normalized:
            z = F.normalize(z, p=2, dim=-1)
        emb = self.codebook()
        flat = z.reshape(-1, z.shape[-1])
        if self.stochastic:
            probs = F.softmax((flat @ emb.t()) * self.inv_temperature(), dim=-1)
            ids = torch.multinomial(probs, 1, generator=generator).squeeze(-1) if sample else probs.argmax(dim=-1)
        else:
            from zoo.nn.quantize import squared_distances

            ids = squared_distances(flat, emb).argmin(dim=1)
        return ids.view(z.shape[:-1])


class _Bottleneck(nn.Module):
    def __init__(self, cfg: LARPConfig):
        super().__init__()
        d = int(cfg.bottleneck_dim)
        self.in_linear = nn.Linear(cfg.encoder_hidden_size, d)
        self.out_linear = nn.Linear(d, cfg.decoder_hidden_size)
        self.norm = str(cfg.bottleneck_norm).lower()
        if self.norm == "ln_d":
            self.norm_layer = nn.LayerNorm(d)
        self.regularizer = _VQ(cfg)

    def project_in(self, x: torch.Tensor) -> torch.Tensor:
        z = self.in_linear(x)
        if self.norm == "ln_d":  # the reference's project_in applies no other norm it builds ('ln_d_na' is built, unused)
            z = self.norm_layer(z.float())
        return z


class _OutputLayer(nn.Module):
    def __init__(self, dim: int, pixels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=1e-6)
        self.linear = nn.Linear(dim, pixels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm_final(x))


class LARP(ZooModel, nn.Module):
    """LARP tokenizer: video ``[B, 3, T, S, S]`` <-> ``bottleneck_token_num`` ids (see module doc)."""

    def __init__(self, cfg: LARPConfig):
        super().__init__()
        self.config = cfg
        de, dd = int(cfg.encoder_hidden_size), int(cfg.decoder_hidden_size)
        pt, p = int(cfg.temporal_patch_size), int(cfg.patch_size)
        self.patch = (pt, p, p)
        self.grid = (cfg.frame_num // pt, cfg.input_size // p, cfg.input_size // p)
        n_video = self.grid[0] * self.grid[1] * self.grid[2]
        n_lat = int(cfg.bottleneck_token_num)
        t, g = self.grid[0], self.grid[1]

        self.x_embedder = PatchEmbed3D(cfg.in_channels, de, self.patch)
        if cfg.learned_encoder_patch_pe:
            self.encoder_h_embed = nn.Parameter(torch.zeros(1, 1, g, 1, de))
            self.encode_w_embed = nn.Parameter(torch.zeros(1, 1, 1, g, de))  # sic: the reference's name
            self.encoder_t_embed = nn.Parameter(torch.zeros(1, t, 1, 1, de))
        else:
            self.register_buffer("encoder_patch_pe", sincos_3d(de, g, t).reshape(1, n_video, de))
        if cfg.use_encoder_patch_token_type_embed:
            self.encoder_patch_token_type_embed = nn.Parameter(torch.zeros(1, 1, de))
        if cfg.learned_encoder_latent_query_embed:
            self.encoder_latent_query_embed = nn.Parameter(torch.randn(n_lat, de) * 0.02)
        else:
            self.register_buffer("encoder_latent_query_embed", sincos_1d(de, range(n_lat), cfg.latent_pe_scale_factor))
        if cfg.use_encoder_latent_query_token_type_embed:
            self.encoder_latent_query_token_type_embed = nn.Parameter(torch.zeros(1, 1, de))
        dec_pe = sincos_1d(dd, range(n_lat), cfg.latent_pe_scale_factor)[None]
        if cfg.learned_decoder_latent_pe:
            self.decoder_latent_pe = nn.Parameter(dec_pe)
        else:
            self.register_buffer("decoder_latent_pe", dec_pe)
        if cfg.use_decoder_latent_token_type_embed:
            self.decoder_latent_token_type_embed = nn.Parameter(torch.zeros(1, 1, dd))
        if cfg.learned_decoder_patch_query_embed:
            self.decoder_h_embed = nn.Parameter(torch.zeros(1, 1, g, 1, dd))
            self.decoder_w_embed = nn.Parameter(torch.zeros(1, 1, 1, g, dd))
            self.decoder_t_embed = nn.Parameter(torch.zeros(1, t, 1, 1, dd))
        else:
            self.register_buffer("decoder_patch_query_embed", sincos_3d(dd, g, t).reshape(1, n_video, dd))
        if cfg.use_decoder_patch_query_token_type_embed:
            self.decoder_patch_query_token_type_embed = nn.Parameter(torch.zeros(1, 1, dd))

        self.encoder = _Transformer(de, cfg.encoder_depth, cfg.encoder_num_heads)
        self.decoder = _Transformer(dd, cfg.decoder_depth, cfg.decoder_num_heads)
        self.bottleneck = _Bottleneck(cfg)
        self.final_layer = _OutputLayer(dd, pt * p * p * cfg.in_channels)

    # ------------------------------------------------------------------ facts

    @property
    def image_size(self) -> int:
        return int(self.config.input_size)

    @property
    def num_frames(self) -> int:
        return int(self.config.frame_num)

    @property
    def num_tokens(self) -> int:
        return int(self.config.bottleneck_token_num)

    @property
    def codebook_size(self) -> int:
        return int(self.config.codebook_size)

    def describe_facts(self) -> dict:
        return {"frames": self.num_frames, "image_size": self.image_size, "tokens": self.num_tokens}

    default_name = "larp"

    # ------------------------------------------------------------------ position terms

    def _encoder_patch_pe(self) -> torch.Tensor:
        if self.config.learned_encoder_patch_pe:
            pe = (self.encoder_h_embed + self.encode_w_embed + self.encoder_t_embed).reshape(1, -1, self.encoder_t_embed.shape[-1])
        else:
            pe = self.encoder_patch_pe
        if self.config.use_encoder_patch_token_type_embed:
            pe = pe + self.encoder_patch_token_type_embed
        return pe

    def _latent_queries(self) -> torch.Tensor:
        q = self.encoder_latent_query_embed[None]
        if self.config.use_encoder_latent_query_token_type_embed:
            q = q + self.encoder_latent_query_token_type_embed
        return q

    def _decoder_latent_pe(self) -> torch.Tensor:
        pe = self.decoder_latent_pe
        if self.config.use_decoder_latent_token_type_embed:
            pe = pe + self.decoder_latent_token_type_embed
        return pe

    def _patch_queries(self) -> torch.Tensor:
        if self.config.learned_decoder_patch_query_embed:
            q = (self.decoder_h_embed + self.decoder_w_embed + self.decoder_t_embed).reshape(1, -1, self.decoder_t_embed.shape[-1])
        else:
            q = self.decoder_patch_query_embed
        if self.config.use_decoder_patch_query_token_type_embed:
            q = q + self.decoder_patch_query_token_type_embed
        return q

    # ------------------------------------------------------------------ stages

    def encode_latents(self, video01: torch.Tensor) -> torch.Tensor:
        """Video ``[B, 3, T, S, S]`` in [0, 1] -> bottleneck input ``[B, N, bottleneck_dim]``
        (the reference's ``projected_z``)."""
        x = self.x_embedder(video01) + self._encoder_patch_pe()
        q = self._latent_queries().expand(x.shape[0], -1, -1)
        return self.bottleneck.project_in(self.encoder(x, q))

    def quantize(self, z: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bottleneck input -> ids ``[B, N]``: argmax of the code probabilities (the reference's
        ``eval_deterministic``), or with ``sample=True`` one draw from ``softmax(cos / T)`` through
        ``generator`` (the reference's default sampling, which uses the global RNG)."""
        return self.bottleneck.regularizer(z, sample=sample, generator=generator)

    def ids_to_latents(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[B, N]`` -> decoder input ``[B, N, decoder_hidden_size]`` (before the position term)."""
        codes = F.embedding(ids, self.bottleneck.regularizer.codebook())
        w = self.bottleneck.out_linear.weight
        return self.bottleneck.out_linear(codes.to(w.dtype))

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder input ``[B, N, D]`` -> video ``[B, 3, T, S, S]`` in about [0, 1] (unclamped)."""
        z = z + self._decoder_latent_pe()
        q = self._patch_queries().expand(z.shape[0], -1, -1)
        x = self.final_layer(self.decoder(z, q))
        return unpatchify_3d(x, self.grid, self.patch, self.config.in_channels)

    # ------------------------------------------------------------------ public interface

    def _check(self, video) -> torch.Tensor:
        from zoo.media.video import check_video

        video = check_video(video, frames=self.num_frames, size=self.image_size, model=self.name)
        p = next(self.parameters())
        return video.to(device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def encode(self, video: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None):
        """Clips ``[B, 3, 16, 128, 128]`` in ``[-1, 1]`` -> :class:`zoo.interfaces.Tokens` (ids ``[B, 1024]``).

        Deterministic by default (the most probable code). ``sample=True`` draws each token from
        ``softmax(cos / 0.03)`` as the reference's default does, reproducibly through ``generator``.
        Longer videos: cut them with :func:`zoo.media.video.iter_chunks` (16-frame chunks).

        Example:
            >>> model = zoo.load("larp")                                                # doctest: +SKIP
            >>> clip = zoo.media.video.load_video("clip.mp4", size=128, num_frames=16)  # doctest: +SKIP
            >>> model.encode(clip).ids.shape                                            # doctest: +SKIP
            torch.Size([1, 1024])
        """
        from zoo.interfaces import Tokens
        from zoo.media.image import to_unit

        if generator is not None and not sample:
            raise InputTypeError("a generator only applies with sample=True (deterministic encoding draws nothing)")
        ids = self.quantize(self.encode_latents(to_unit(self._check(video))), sample=sample, generator=generator)
        return Tokens(ids=ids, codebook_size=self.codebook_size, tokenizer=self.name)

    @torch.no_grad()
    def decode(self, tokens, clamp: bool = True) -> torch.Tensor:
        """Tokens (or ids ``[B, 1024]``) -> clips ``[B, 3, 16, 128, 128]`` in ``[-1, 1]``
        (clamped unless ``clamp=False``). LARP decodes all tokens of a clip."""
        from zoo.interfaces import as_tokens
        from zoo.media.image import from_unit

        tok = as_tokens(tokens, self.codebook_size, self.name)
        n = self.num_tokens
        if tok.ids.dim() != 2 or tok.ids.shape[1] != n or (tok.lengths != n).any():
            raise TokenError(f"{self.name} decodes exactly {n} tokens per clip (one codebook), got ids "
                             f"{tuple(tok.ids.shape)} with lengths {tok.lengths.tolist()}")
        p = next(self.parameters())
        out = from_unit(self.decode_latents(self.ids_to_latents(tok.ids.to(p.device))))
        return out.clamp(-1.0, 1.0) if clamp else out
