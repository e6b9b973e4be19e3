"""FlexTok's typed config (OmegaConf-friendly dataclasses; no torch import).

The official checkpoints carry their Hydra config in the safetensors ``__metadata__``;
:mod:`zoo_plugins.flextok.metadata` maps it onto these dataclasses. Field defaults are the
reconstructed published architecture (d18-d28, 16-channel VAE, FSQ 8-8-8-5-5-5).

Example:
    >>> cfg = FlexTokConfig()
    >>> cfg.decoder.transformer.dim, cfg.fsq_levels
    (1792, [8, 8, 8, 5, 5, 5])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DECODER_ROLES",
    "ENCODER_ROLES",
    "DecoderConfig",
    "EncoderConfig",
    "FlexTokConfig",
    "TransformerConfig",
    "VAEConfig",
]

# Roles of the parameterised sub-modules; their *names* come from the checkpoint's config
# (they are the state-dict prefixes ``encoder.module_dict.<name>.``).
ENCODER_ROLES = ("patch_emb", "posemb", "registers", "transformer", "to_latents")
DECODER_ROLES = (
    "from_latents",
    "registers_posemb",
    "nested_dropout",
    "nullcond",
    "patch_emb",
    "posemb",
    "time_embedder",
    "transformer",
    "to_patches",
)


@dataclass
class TransformerConfig:
    """A pre-LN transformer trunk (FlexTransformer): blocks of attention + (gated) MLP."""

    dim: int = 1152
    depth: int = 18
    head_dim: int = 64
    mlp_ratio: float = 4.0
    qkv_bias: bool = False
    proj_bias: bool = False
    mlp_bias: bool = False
    gated_mlp: bool = True
    qk_norm: bool = True
    act: str = "silu"  # silu | gelu | gelu_tanh
    norm_eps: float = 1e-5
    norm_affine: bool = False
    norm_bias: bool = False
    adaln_expansion: int = 0  # 0: no adaLN; 1: one modulation per image; 2: patches | registers
    attn_scale_mup: bool = True  # scale = 8 / head_dim (muP); False: 1/sqrt(head_dim)


@dataclass
class EncoderConfig:
    """VAE latents -> 2D patches (+ sincos posemb) | learned registers -> trunk -> FSQ latents."""

    names: dict[str, str] = field(
        default_factory=lambda: {
            "patch_emb": "enc_patch_emb",
            "posemb": "enc_posemb_module",
            "registers": "enc_register_module",
            "transformer": "enc_transformer",
            "to_latents": "enc_to_latents",
        }
    )
    patch_size: list[int] = field(default_factory=lambda: [2, 2])
    posemb_type: str = "sincos"  # sincos | learnable_sum | learnable_prod | none
    posemb_max_sizes: list[int] = field(default_factory=lambda: [16, 16])
    posemb_scaling: str = "absolute"  # absolute | interpolate
    n_registers: int = 256
    n_eval_registers: int | None = None
    register_ordering: str = "nested"  # nested | avg_pool
    extra_registers_dim: int | None = None
    mask_mode: str = "causal_last"  # causal_last (prefix LM) | full | causal
    transformer: TransformerConfig = field(default_factory=lambda: TransformerConfig(dim=1152, depth=18))
    head_norm: bool = True
    head_norm_eps: float = 1e-5
    head_norm_affine: bool = False
    head_norm_bias: bool = False
    head_proj_bias: bool = True


@dataclass
class DecoderConfig:
    """Rectified-flow decoder: noised VAE latents (patches) | token registers, adaLN on time."""

    names: dict[str, str] = field(
        default_factory=lambda: {
            "from_latents": "dec_from_latents",
            "registers_posemb": "dec_registers_posemb_module",
            "nested_dropout": "dec_nested_dropout",
            "nullcond": "dec_latent_dropout",
            "patch_emb": "dec_noise_patch_emb",
            "posemb": "dec_patches_posemb_module",
            "time_embedder": "dec_time_embedder",
            "transformer": "dec_transformer",
            "to_patches": "dec_to_patches",
        }
    )
    from_latents_bias: bool = True
    registers_posemb_type: str = "learnable_sum"  # learnable_sum | learnable_prod | none
    registers_posemb_max_sizes: list[int] = field(default_factory=lambda: [256])
    nested_dropout: bool = True
    nullcond: str = "learned"  # learned | zero | none
    nullcond_single_token: bool = False
    patch_size: list[int] = field(default_factory=lambda: [2, 2])
    posemb_type: str = "sincos"
    posemb_max_sizes: list[int] = field(default_factory=lambda: [16, 16])
    posemb_scaling: str = "absolute"
    mask_mode: str = "full"
    time_freq_dim: int = 256
    time_max: float = 1.0
    transformer: TransformerConfig = field(
        default_factory=lambda: TransformerConfig(dim=1792, depth=28, adaln_expansion=2)
    )
    head_norm: bool = True
    head_norm_eps: float = 1e-5
    head_norm_affine: bool = False
    head_norm_bias: bool = False
    head_adaln: bool = True
    head_adaln_bias: bool = True
    head_proj_bias: bool = True


@dataclass
class VAEConfig:
    """The diffusers AutoencoderKL FlexTok runs on (frozen, f8)."""

    latent_channels: int = 16
    scaling_factor: float | None = None  # None: read from the VAE's config.json
    sample_posterior: bool = False
    learnable_logvar: bool = False
    hf_hub_path: str | None = None
    block_out_channels: list[int] = field(default_factory=lambda: [128, 256, 512, 512])
    layers_per_block: int = 2
    norm_num_groups: int = 32
    in_channels: int = 3
    out_channels: int = 3
    # Further diffusers config.json fields of the VAE (from its card's config.json), as data.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FlexTokConfig:
    """Everything FlexTok inference needs, mapped from the checkpoint's Hydra config."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    fsq_levels: list[int] = field(default_factory=lambda: [8, 8, 8, 5, 5, 5])
    # Sampler defaults (the reference README's: 20 Euler steps, CFG 7.5 with norm guidance).
    default_steps: int = 20
    default_guidance_scale: float = 7.5
    default_norm_guidance: bool = True
    apg_momentum: float = -0.5
    apg_norm_threshold: float = 2.5
    apg_eta: float = 0.0

    @property
    def codebook_size(self) -> int:
        n = 1
        for level in self.fsq_levels:
            n *= int(level)
        return n
