"""zoo's Tokenizer interface for TiTok-family models: images in [-1, 1] <-> tokens.

TiTok itself takes RGB in [0, 1]; the conversion happens here so callers never see it.
VQ models return :class:`zoo.interfaces.Tokens` (ids ``[B, N]``); VAE models return their
continuous tokens (posterior mean) as :class:`zoo.interfaces.Latents` (``values`` ``[B, N, C]``).
One-D-Piece models (``strict_length_assertion=False``) decode any prefix 1..N, chosen per image.
TiTok's VAE models decode only all N tokens: the reference decoder asserts the full length and
they were trained without tail drop, so a truncated ``Latents`` is rejected with a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zoo.errors import InputTypeError

from ._core import TokenizerInputError

__all__ = ["TokenizerMixin"]


def _lengths_arg(num_tokens, batch: int, limit: int) -> torch.Tensor:
    n = torch.as_tensor(num_tokens, dtype=torch.long).cpu()
    if n.dim() == 0:
        n = n.expand(batch)
    if n.shape != (batch,):
        raise TokenizerInputError(f"num_tokens: give one int or one count per image ({batch}), got {n.tolist()}")
    if (n < 1).any() or (n > limit).any():
        raise TokenizerInputError(f"num_tokens must lie in 1..{limit}, got {n.tolist()}")
    return n.clone()


class TokenizerMixin:
    """``encode`` / ``decode`` on top of the stage methods of :class:`~.model.TiTok`."""

    @property
    def variable_length(self) -> bool:
        """True when the decoder takes any token prefix (One-D-Piece)."""
        return not self.config.strict_length_assertion

    @property
    def codebook_size(self) -> int | None:
        return int(self.config.codebook_size) if self.config.quantize_mode == "vq" else None

    default_name = "titok"

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if not isinstance(images, torch.Tensor):
            raise InputTypeError(
                f"encode takes a [B, 3, {s}, {s}] float tensor in [-1, 1]; got {type(images).__name__} "
                "(use zoo.media.image.to_tensor(images, size=...) to convert PIL images / uint8 arrays)"
            )
        if images.dim() == 3:
            images = images[None]
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (s, s):
            raise TokenizerInputError(f"encode expects images [B, 3, {s}, {s}], got {tuple(images.shape)}; "
                             f"resize/crop with zoo.media.image.to_tensor(images, size={s})")
        if not images.is_floating_point():
            raise InputTypeError(f"encode expects float images in [-1, 1], got {images.dtype}; "
                                 "convert uint8 images with zoo.media.image.to_tensor")
        if images.shape[0] == 0:
            raise TokenizerInputError("encode got an empty batch (0 images)")
        if not bool(torch.isfinite(images).all()):
            raise TokenizerInputError(f"images hold NaN/Inf pixel values; {self.name} encodes finite pixels in [-1, 1] only")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1.001 or hi > 1.001:
            raise TokenizerInputError(f"encode expects images in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]"
                             + ("; images in [0, 255] must be scaled (x / 127.5 - 1)" if hi > 2 else ""))
        p = next(self.parameters())
        return images.to(device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, num_tokens: int | Sequence[int] | None = None):
        """Images ``[B, 3, S, S]`` in ``[-1, 1]`` -> tokens.

        VQ: :class:`zoo.interfaces.Tokens` with ids ``[B, N]`` (N = 32/64/128/256, codebook
        4096 or 8192). ``num_tokens`` (One-D-Piece only) keeps the first ``k`` tokens of every
        image, or ``k_b`` per image. VAE: :class:`zoo.interfaces.Latents` holding the posterior
        mean (``values`` ``[B, N, C]``, float32).

        Example:
            >>> tok = model.encode(zoo.media.image.load_images(["cat.png"], size=256))  # doctest: +SKIP
            >>> tok.ids.shape                                                            # doctest: +SKIP
            torch.Size([1, 32])
        """
        from zoo.interfaces import Latents, Tokens
        from zoo.media.image import to_unit

        x = self._check_images(images)
        z = self.quantize_latents(self.encode_latents(to_unit(x)))
        if self.config.quantize_mode == "vae":
            if num_tokens is not None:
                raise TokenizerInputError("num_tokens applies to One-D-Piece (VQ, variable length) models only")
            return Latents(values=z.flatten(2).transpose(1, 2).contiguous(), tokenizer=self.name)  # [B, N, C]
        tokens = Tokens(ids=z, codebook_size=self.codebook_size, tokenizer=self.name)
        if num_tokens is not None:
            if not self.variable_length:
                raise TokenizerInputError(f"{self.name} decodes exactly {self.num_latent_tokens} tokens; "
                                 "num_tokens (prefix length) needs a One-D-Piece model")
            tokens = tokens.truncate(_lengths_arg(num_tokens, z.shape[0], self.num_latent_tokens))
        return tokens

    @torch.no_grad()
    def decode(self, tokens, num_tokens: int | Sequence[int] | None = None, clamp: bool = True) -> torch.Tensor:
        """Tokens -> images ``[B, 3, S, S]`` in ``[-1, 1]`` (clamped unless ``clamp=False``).

        ``tokens``: :class:`zoo.interfaces.Tokens`, an id tensor ``[B, n]`` (or the reference's
        ``[B, 1, n]``), or a list of per-image id tensors of different lengths. One-D-Piece
        models decode each image from its own prefix length (``tokens.lengths``, or
        ``num_tokens``: one int or one per image). VAE models take the
        :class:`zoo.interfaces.Latents` returned by :meth:`encode` (or its float ``values``
        ``[B, N, C]``), all N tokens of every image.

        Example:
            >>> model = zoo.load("one_d_piece.l_256")                    # doctest: +SKIP
            >>> tok = model.encode(images)                               # doctest: +SKIP
            >>> coarse = model.decode(tok.truncate([8, 32]))  # image 0 from 8 tokens, image 1 from 32  # doctest: +SKIP
        """
        from zoo.media.image import from_unit

        if self.config.quantize_mode == "vae":
            if num_tokens is not None:
                raise TokenizerInputError("num_tokens applies to One-D-Piece (VQ, variable length) models only")
            out = self.decode_latents(self._vae_latents(tokens))
        else:
            out = self._decode_ids(tokens, num_tokens)
        out = from_unit(out)
        return out.clamp(-1.0, 1.0) if clamp else out

    def _vae_latents(self, z) -> torch.Tensor:
        from zoo.interfaces import as_latents

        c, n = int(self.config.token_size), self.num_latent_tokens
        try:
            z = as_latents(z, dim=c, tokenizer=self.name)
        except (TypeError, ValueError) as exc:
            raise TokenizerInputError(f"this VAE model decodes Latents (float [B, {n}, {c}]) as returned by encode: {exc}") from None
        if z.max_length != n or (z.lengths != n).any():
            raise TokenizerInputError(
                f"{self.name} decodes exactly {n} continuous tokens per image, got lengths {z.lengths.tolist()}: "
                "TiTok's VAE decoder takes the full sequence (the reference asserts it; no tail-drop training), "
                "so prefixes of its latents are not decodable"
            )
        p = next(self.parameters())
        return z.values.to(device=p.device, dtype=p.dtype).transpose(1, 2).unsqueeze(2)

    def _decode_ids(self, tokens, num_tokens) -> torch.Tensor:
        from zoo.interfaces import as_tokens

        if isinstance(tokens, torch.Tensor) and tokens.dim() == 3 and tokens.shape[1] == 1:
            tokens = tokens[:, 0]  # the reference's [B, 1, N] layout
        tok = as_tokens(tokens, self.codebook_size, self.name)
        if tok.ids.dim() != 2:
            raise TokenizerInputError(f"TiTok decodes one codebook: ids must be [B, n], got {tuple(tok.ids.shape)}")
        n_max = self.num_latent_tokens
        lengths = tok.lengths if num_tokens is None else _lengths_arg(num_tokens, len(tok), n_max)
        if (lengths > tok.lengths).any():
            raise TokenizerInputError(f"num_tokens {lengths.tolist()} exceed the tokens given {tok.lengths.tolist()}")
        if not self.variable_length and (lengths != n_max).any():
            raise TokenizerInputError(f"{self.name} decodes exactly {n_max} tokens per image, got lengths "
                             f"{lengths.tolist()}; only One-D-Piece models decode prefixes")
        if (lengths > n_max).any():
            raise TokenizerInputError(f"{self.name} decodes at most {n_max} tokens, got lengths {lengths.tolist()}")
        device = next(self.parameters()).device
        ids = tok.ids.to(device)
        uniq = torch.unique(lengths).tolist()
        if len(uniq) == 1:
            return self.decode_latents(self.ids_to_latents(ids[:, : uniq[0]]))
        out = None
        for n in uniq:  # one forward per distinct prefix length, results put back in order
            rows = (lengths == n).nonzero().flatten().to(device)
            part = self.decode_latents(self.ids_to_latents(ids[rows, :n]))
            if out is None:
                out = part.new_empty((len(tok),) + tuple(part.shape[1:]))
            out[rows] = part
        return out
