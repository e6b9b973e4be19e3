"""PixArt-Σ (Chen et al. 2024): a DiT with cross-attention to T5-XXL states, on SDXL-VAE latents,
sampled with DPM-Solver++ — diffusers' ``PixArtTransformer2DModel`` and
``DPMSolverMultistepScheduler``, zoo's loop.

What zoo's loop does (and the diffusers ``PixArtSigmaPipeline`` does too, so latents agree):
prompts and negative prompts cleaned as the pipeline's default ``clean_caption=True``
(:mod:`.captions`: URLs, HTML, @handles, CJK, ids, file names... removed; ``clean_caption=False``
only lower-cases and strips); T5 on at most ``max_sequence_length`` tokens with the
attention mask; initial noise ``randn([B, C, H/8, W/8], generator)``; per scheduler timestep one
transformer call on ``[cond; uncond]`` rows (CFG as 2B rows, ``uncond + w (cond - uncond)``),
the learned-variance half of the output dropped, ``scheduler.step``; decode
``vae.decode(z / scaling_factor)``; explicit ``timesteps`` (the pipeline's ``timesteps=``;
PixArt-Σ Nitro's card sets ``[400]``, one step) go to ``set_timesteps`` as the pipeline sends them.

What differs (each says why): the prompts and negative prompts go through T5 in ONE batch,
trimmed to the longest real prompt instead of 300 padded tokens (masked padding: same states
and the same cross-attention, less work; ``trim_text_padding=False`` keeps 300); the variance
half is dropped before the CFG combine (the same numbers, half the work); caption cleaning
without bs4 + ftfy is an error naming the extra (the pipeline warns and skips it); resolution binning is off by default: the
image has the size asked (multiples of the VAE factor x the patch size: 16 pixels), where
diffusers' default snaps it to a trained aspect ratio and resizes back (``resolution_binning=True``
does that, equal to the pipeline).

Example:
    >>> from zoo_plugins.diffusion.testing import tiny_pixart
    >>> model = tiny_pixart()
    >>> images = model.generate("a red fox", steps=2, height=16, width=16, seed=0)
    >>> tuple(images.shape), bool(images.abs().max() <= 1)
    ((1, 3, 16, 16), True)
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from zoo.errors import InputError, InputTypeError, ZooError
from zoo.model import ZooModel
from zoo.sampling.guidance import cfg_combine
from zoo.sampling.noise import as_noise_source
from zoo.sampling.progress import ProgressArg, progress_reporter

from .captions import preprocess_captions
from .components import DiffusersVAE, TextEncoder, check_prompts
from .config import PixArtSigmaConfig
from .libs import diffusers_module

__all__ = ["PixArtSigma", "TextToImageBase", "check_size", "aspect_ratio_bins", "resize_and_crop"]


def check_size(height: Any, width: Any, multiple: int) -> tuple[int, int]:
    """``(height, width)`` as ints that are positive multiples of ``multiple`` (else an InputError).

    Example:
        >>> check_size(512, 768, 16)
        (512, 768)
    """
    out = []
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise InputTypeError(f"{name} must be an int (pixels), got {type(v).__name__}")
        if v <= 0 or v % multiple:
            raise InputError(f"{name}={v} must be a positive multiple of {multiple} pixels (VAE factor x patch size)")
        out.append(v)
    return out[0], out[1]


def aspect_ratio_bins(sample_size: int) -> dict[str, Any]:
    """PixArt's aspect-ratio bins (``{"0.25": [h, w], ...}`` in pixels) for a transformer of
    ``sample_size`` latents, read from diffusers' PixArt pipelines (the tables they define for
    ``use_resolution_binning``: 256, 512, 1024 and 2048 px); any other size is an InputError."""
    from importlib import import_module

    diffusers_module()
    where = {32: ("pixart_alpha", "ASPECT_RATIO_256_BIN"), 64: ("pixart_alpha", "ASPECT_RATIO_512_BIN"),
             128: ("pixart_alpha", "ASPECT_RATIO_1024_BIN"), 256: ("pixart_sigma", "ASPECT_RATIO_2048_BIN")}
    if sample_size not in where:
        raise InputError(f"resolution binning needs a transformer trained at 256, 512, 1024 or 2048 px (sample_size 32, 64, 128 "
                         f"or 256), this one has sample_size {sample_size}: generate with resolution_binning=False")
    module, name = where[sample_size]
    try:
        return dict(getattr(import_module(f"diffusers.pipelines.pixart_alpha.pipeline_{module}"), name))
    except (ImportError, AttributeError):
        raise ZooError(f"this diffusers version does not define {name} in its PixArt pipelines: generate with "
                       "resolution_binning=False") from None


def resize_and_crop(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of ``images [B, C, H, W]`` so they cover ``height x width``, then a center
    crop to it (diffusers' ``PixArtImageProcessor.resize_and_crop_tensor``).

    Example:
        >>> tuple(resize_and_crop(torch.zeros(1, 3, 64, 32), 40, 40).shape)
        (1, 3, 40, 40)
    """
    h, w = images.shape[-2:]
    if (h, w) == (height, width):
        return images
    ratio = max(height / h, width / w)
    rh, rw = int(h * ratio), int(w * ratio)
    images = nn.functional.interpolate(images, size=(rh, rw), mode="bilinear", align_corners=False)
    top, left = (rh - height) // 2, (rw - width) // 2
    return images[:, :, top:top + height, left:left + width]


class TextToImageBase(ZooModel, nn.Module):
    """What the text-to-image generators share: component resolution (on demand, shared between
    cards in one process), generator/seed handling and input checks."""

    conditioning = "text"
    component_roles: tuple[str, ...] = ("text_encoder", "vae")

    def __init__(self) -> None:
        super().__init__()
        self._components: dict[str, nn.Module] = {}
        self.components_pretrained = True

    def use_components(self, **components: nn.Module) -> "TextToImageBase":
        """Attach component models (e.g. ``text_encoder=``, ``vae=``) instead of loading the cards."""
        for role, module in components.items():
            if role not in self.component_roles:
                raise InputError(f"unknown component {role!r}; {type(self).__name__} uses {self.component_roles}")
            self._components[role] = module
        return self

    def component(self, role: str) -> Any:
        """The component for ``role``: attached, or the card named by ``config.<role>``, loaded once
        per process (pretrained as this model) and shared with every other model that names it."""
        if role in self._components:
            return self._components[role]
        import zoo

        from .components import shared_component

        name = getattr(self.config, role)
        if not self.components_pretrained and role.startswith("text_encoder"):
            # a randomly built text encoder has no tokenizer files (and T5-XXL alone is 4.7B parameters): refuse before building
            raise ZooError(f"{self.name} was built with pretrained=False: its text encoder card {name!r} has no tokenizer without "
                           "its files; attach one with model.use_components(text_encoder=...) (zoo_plugins.diffusion.testing "
                           "has tiny ones) or load the generator with its weights")
        p = next(self.parameters())
        key = (name, str(p.device), str(p.dtype), self.components_pretrained)
        module = shared_component(key, lambda: zoo.load(name, device=p.device, dtype=p.dtype, pretrained=self.components_pretrained))
        self._components[role] = module
        return module

    @staticmethod
    def _generator(generator: Optional[torch.Generator], seed: Optional[int]) -> Optional[torch.Generator]:
        if generator is not None and seed is not None:
            raise InputError("give generator= or seed=, not both")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InputTypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise InputTypeError(f"seed must be an int, got {type(seed).__name__}")
            return torch.Generator().manual_seed(seed)
        return generator

    @staticmethod
    def _check_steps_cfg(steps: Any, guidance_scale: Any) -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise InputError(f"steps must be a whole number >= 1, got {steps!r}")
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) or not torch.isfinite(torch.tensor(float(guidance_scale))):
            raise InputError(f"guidance_scale must be a finite number, got {guidance_scale!r}")

    @staticmethod
    def _negatives(negative_prompt: Any, n: int) -> list[str]:
        if negative_prompt is None:
            return [""] * n
        neg = check_prompts(negative_prompt, "negative_prompt")
        if len(neg) == 1:
            return neg * n
        if len(neg) != n:
            raise InputError(f"{len(neg)} negative prompts for {n} prompts: give one, or one per prompt")
        return neg


class PixArtSigma(TextToImageBase):
    """A PixArt-Σ generator: ``generate(prompt, ...) -> images [B, 3, H, W]`` in ``[-1, 1]``."""

    def __init__(self, config: PixArtSigmaConfig):
        super().__init__()
        self.config = config
        d = diffusers_module()
        self.transformer = d.PixArtTransformer2DModel.from_config(dict(config.transformer))

    # ------------------------------------------------------------------ facts
    @property
    def latent_channels(self) -> int:
        return int(self.transformer.config.in_channels)

    @property
    def patch_size(self) -> int:
        return int(self.transformer.config.patch_size)

    @property
    def image_size(self) -> int:
        """The trained side in pixels (``sample_size`` latents x the VAE factor)."""
        return int(self.transformer.config.sample_size) * self.config.vae_scale_factor

    def describe_facts(self) -> dict[str, Any]:
        return {"text": self.config.text_encoder, "vae": self.config.vae}  # one line: card names of the components

    # ------------------------------------------------------------------ pieces
    def scheduler(self) -> Any:
        """A fresh ``DPMSolverMultistepScheduler`` (schedulers hold state: one per generation)."""
        return diffusers_module().DPMSolverMultistepScheduler.from_config(dict(self.config.scheduler))

    def encode_prompts(self, prompts: Sequence[str], negatives: Optional[Sequence[str]], *,
                       clean_caption: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """T5 states and masks of ``[prompts; negatives]`` (one batch) as the transformer's dtype;
        ``clean_caption``: the pipeline's caption cleaning (:mod:`.captions`), else lower-case + strip."""
        te: TextEncoder = self.component("text_encoder")
        texts = preprocess_captions(list(prompts) + list(negatives or []), clean=clean_caption)  # the pipeline's preprocessing
        hidden, mask = te.embed(texts, self.config.max_sequence_length, trim=self.config.trim_text_padding)
        p = next(self.transformer.parameters())
        return hidden.to(p.device, p.dtype), mask.to(p.device)

    def denoise(self, latents: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, *, steps: int,
                guidance_scale: float, generator: Optional[torch.Generator] = None, progress: ProgressArg = None,
                timesteps: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Run the sampler from ``latents`` (already scaled by ``init_noise_sigma``); ``states``
        holds ``2B`` rows ``[cond; uncond]`` when ``guidance_scale > 1``, else ``B``; ``timesteps``:
        explicit scheduler timesteps instead of ``steps`` uniform ones."""
        sched = self.scheduler()
        if timesteps is not None:
            sched.set_timesteps(timesteps=list(timesteps), device=latents.device)
        else:
            sched.set_timesteps(steps, device=latents.device)
        guided = guidance_scale > 1.0
        c = self.latent_channels
        learned_sigma = self.transformer.config.out_channels // 2 == c
        added = {"resolution": None, "aspect_ratio": None}
        report = progress_reporter(progress, len(sched.timesteps), "pixart_sigma")
        try:
            for i, t in enumerate(sched.timesteps):
                x = torch.cat([latents, latents]) if guided else latents
                x = sched.scale_model_input(x, t)
                out = self.transformer(x, encoder_hidden_states=states, encoder_attention_mask=mask,
                                       timestep=t.expand(x.shape[0]), added_cond_kwargs=added, return_dict=False)[0]
                if learned_sigma:
                    out = out[:, :c]
                if guided:
                    out = cfg_combine(out, float(guidance_scale))
                latents = sched.step(out, t, latents, generator=generator, return_dict=False)[0]
                report(i + 1)
        finally:
            report.close()
        return latents

    def binned_size(self, height: int, width: int) -> tuple[int, int]:
        """The trained ``(height, width)`` bin nearest the aspect ratio ``height / width`` (the
        PixArt aspect-ratio table of this transformer's ``sample_size``: 32, 64, 128 or 256 latents),
        as diffusers' ``PixArtImageProcessor.classify_height_width_bin`` picks it."""
        bins = aspect_ratio_bins(int(self.transformer.config.sample_size))
        ar = float(height / width)
        closest = min(bins, key=lambda ratio: abs(float(ratio) - ar))
        return int(bins[closest][0]), int(bins[closest][1])

    def _timesteps(self, timesteps: Optional[Sequence[int]], steps: Optional[int]) -> Optional[list[int]]:
        """The explicit timesteps of a generation: those given, else the card's when ``steps`` is
        None or equals their number, else None; checked to be decreasing integers in range."""
        if timesteps is None:
            card = self.config.timesteps
            if not card or (steps is not None and steps != len(card)):
                return None
            timesteps = card
        ts = list(timesteps) if not isinstance(timesteps, torch.Tensor) else timesteps.tolist()
        n = int(dict(self.config.scheduler).get("num_train_timesteps", 1000))
        if not ts or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < n for t in ts) or any(a <= b for a, b in zip(ts, ts[1:])):
            raise InputError(f"timesteps must be decreasing whole numbers in [0, {n}), got {timesteps!r}")
        return ts

    @torch.no_grad()
    def generate(self, prompt: str | Sequence[str], negative_prompt: str | Sequence[str] | None = None, *,
                 steps: Optional[int] = None, guidance_scale: Optional[float] = None, height: Optional[int] = None,
                 width: Optional[int] = None, generator: Optional[torch.Generator] = None, seed: Optional[int] = None,
                 num_images_per_prompt: int = 1, return_latents: bool = False, progress: ProgressArg = None,
                 timesteps: Optional[Sequence[int]] = None, resolution_binning: Optional[bool] = None,
                 clean_caption: bool = True) -> torch.Tensor:
        """Images ``[B * num_images_per_prompt, 3, height, width]`` in ``[-1, 1]`` (or, with
        ``return_latents``, the final latents ``[B, C, h, w]`` in the transformer's space).

        ``resolution_binning`` (default: the config's, off): generate at the trained aspect-ratio
        bin nearest ``height / width`` (:meth:`binned_size`) and resize + center-crop the images
        back to ``height x width`` (any positive size), as the pipeline's ``use_resolution_binning``;
        ``return_latents`` then gives the latents at the binned size.

        Defaults: ``steps`` 20, ``guidance_scale`` 4.5 (CFG off at <= 1), the trained size (the
        card's values where it sets them). ``timesteps``: explicit scheduler timesteps (integers in
        ``[0, num_train_timesteps)``, decreasing); without it the card's ``timesteps`` are used when
        ``steps`` is not given or equals their number, else ``steps`` uniform ones.

        ``clean_caption`` (default True, as the pipeline): prompts and negative prompts cleaned of
        URLs, HTML, @handles, CJK ideographs, ids, file names, shop phrases and stray punctuation
        (:func:`~zoo_plugins.diffusion.captions.clean_caption`; needs bs4 + ftfy from ``zoo[diffusion]``);
        False only lower-cases and strips."""
        prompts = check_prompts(prompt)
        timesteps = self._timesteps(timesteps, steps)
        steps = (len(timesteps) if timesteps is not None else self.config.steps) if steps is None else steps
        guidance_scale = self.config.guidance_scale if guidance_scale is None else guidance_scale
        self._check_steps_cfg(steps, guidance_scale)
        if timesteps is not None and len(timesteps) != steps:
            raise InputError(f"steps={steps} disagrees with {len(timesteps)} timesteps {list(timesteps)}: give one of them")
        height = self.image_size if height is None else height
        width = self.image_size if width is None else width
        vf = self.config.vae_scale_factor
        f = vf * self.patch_size
        binning = self.config.resolution_binning if resolution_binning is None else bool(resolution_binning)
        asked = check_size(height, width, 1) if binning else None
        height, width = check_size(*(self.binned_size(*asked) if binning else (height, width)), f)
        if isinstance(num_images_per_prompt, bool) or not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise InputError(f"num_images_per_prompt must be a whole number >= 1, got {num_images_per_prompt!r}")
        g = self._generator(generator, seed)
        guided = guidance_scale > 1.0
        negatives = self._negatives(negative_prompt, len(prompts)) if guided else None
        states, mask = self.encode_prompts(prompts, negatives, clean_caption=bool(clean_caption))
        n = num_images_per_prompt
        b = len(prompts)
        if n > 1:  # prompt i's rows repeat n times in a row (the pipeline's order)
            states = states.view(-1, b, *states.shape[1:]).repeat_interleave(n, dim=1).flatten(0, 1)
            mask = mask.view(-1, b, mask.shape[1]).repeat_interleave(n, dim=1).flatten(0, 1)
        p = next(self.transformer.parameters())
        sched_sigma = float(self.scheduler().init_noise_sigma)
        noise = as_noise_source(g).randn((b * n, self.latent_channels, height // vf, width // vf), dtype=torch.float32)
        latents = (noise * sched_sigma).to(p.device, p.dtype)
        latents = self.denoise(latents, states, mask, steps=steps, guidance_scale=float(guidance_scale), generator=g, progress=progress,
                               timesteps=timesteps)
        if return_latents:
            return latents
        vae: DiffusersVAE = self.component("vae")
        if asked is None or asked == (height, width):
            return vae.decode_raw(vae.from_model_space(latents))
        p = next(vae.vae.parameters())  # resized back before clamping, as the pipeline does
        images = vae.vae.decode(vae.from_model_space(latents).to(p.device, p.dtype), return_dict=False)[0].float()
        return resize_and_crop(images, *asked).clamp(-1, 1)
