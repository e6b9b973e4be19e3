"""Text-to-image diffusion and flow generators on diffusers / transformers modules (issue 25).

zoo borrows the networks (``PixArtTransformer2DModel``, ``AutoencoderKL``, ``T5EncoderModel``,
... public stable classes only, never remote code or community pipelines) and owns the loop:
prompt encoding, CFG as one batch of 2B rows, the scheduler step, ``torch.Generator``
discipline and decoding. Families:

* ``pixart_sigma``: PixArt-Σ (DiT with cross-attention to T5-XXL), DPM-Solver++ through
  diffusers' ``DPMSolverMultistepScheduler``;
* ``sd3``: Stable Diffusion 3 / 3.5 (MMDiT, rectified flow) on zoo's flow driver with the
  diffusers flow-matching grid (:func:`zoo.sampling.flow_match_sigmas`);
* ``instaflow``: InstaFlow-0.9B and 2-Rectified Flow (SD 1.5's UNet as a rectified flow) on
  zoo's flow driver, one-step or few-step Euler;
* ``nitro_e``: Nitro-E (E-MMDiT with token compression and alternating subregion attention,
  built by zoo in the official key layout, :mod:`.emmdit`) on the DC-AE latent and Llama-3.2-1B,
  on zoo's flow driver (:mod:`.nitro_e`);
* component cards the generators depend on, resolved on demand and shared between cards in one
  process: the T5 text encoder (``t5_encoder``), SD3's three text encoders (``sd3_text``) and
  diffusers VAEs (``diffusers_vae``), SD 1.5's CLIP text encoder (``clip_text``).

diffusers and transformers are the ``zoo[diffusion]`` extra, imported only when a model is built.
Importing this module does not import torch.
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl


@hookimpl
def register_builders(register):
    from .builders import DiffusersVAEBuilder, PixArtSigmaBuilder, SD3Builder, SD3TextBuilder, T5EncoderBuilder  # noqa: PLC0415

    register(PixArtSigmaBuilder())
    register(SD3Builder())
    register(SD3TextBuilder())
    register(DiffusersVAEBuilder())
    register(T5EncoderBuilder())
    from .instaflow_builders import CLIPTextBuilder, InstaFlowBuilder  # noqa: PLC0415

    register(InstaFlowBuilder())
    register(CLIPTextBuilder())
    from .nitro_e_builders import DCAEBuilder, LlamaTextBuilder, NitroEBuilder  # noqa: PLC0415

    register(NitroEBuilder())
    register(LlamaTextBuilder())
    register(DCAEBuilder())
