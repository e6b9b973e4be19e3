import torch

import zoo
from zoo.media.image import save_grid

gen = zoo.load("lightningdit")                       # lightningdit.xl_800ep: its 'ema' weights, strict load
images = gen.generate([207, 360], generator=torch.Generator().manual_seed(0))  # 249 Euler steps, cfg 6.7 on 3 channels
save_grid([list(images)], "lightningdit.png")        # decoded by va_vae.f16d32 (loaded on demand) with its latent stats
fast = gen.generate([207], steps=50, guidance_scale=4.0, cfg_interval_start=0.0, seed=0)   # fewer steps, CFG everywhere
latents = gen.generate([207], seed=0, return_latents=True)   # zoo.Latents [1, 256, 32], normalised space
