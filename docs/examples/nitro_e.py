import torch

import zoo
from zoo.media.image import save_grid

gen = zoo.load("nitro_e")                 # nitro_e.512px: Nitro-E-512px.safetensors, strict load into zoo's E-MMDiT
images = gen.generate("a hot air balloon in the shape of a heart", generator=torch.Generator().manual_seed(0))  # 20 steps, CFG 4.5
save_grid([list(images)], "balloon.png")  # [1, 3, 512, 512] in [-1, 1]; Llama-3.2-1B (gated) and the DC-AE loaded on demand
fast = zoo.load("nitro_e.512px_dist").generate(["a cat", "a dog"], seed=1)   # 4 steps, no CFG (B rows only)
latents = gen.generate("a red fox", seed=0, return_latents=True)             # [1, 32, 16, 16], scaled by 0.41407
