import torch

import zoo
from zoo.media.image import save_grid

gen = zoo.load("sd3")                       # sd3.medium (gated: accept the licence on the hub, HF_TOKEN set)
images = gen.generate("a red fox in the snow", generator=torch.Generator().manual_seed(0))  # 28 Euler steps, shift 3, CFG 7
save_grid([list(images)], "fox.png")        # [1, 3, 1024, 1024] in [-1, 1]; CLIP-L/G + T5-XXL and the VAE loaded on demand
turbo = zoo.load("sd3.sd3_5_large_turbo")   # 4 steps, no CFG (B rows only)
fast = turbo.generate(["a cat", "a dog"], seed=1, height=768, width=1344)
latents = gen.generate("a red fox", seed=0, steps=10, return_latents=True)   # [1, 16, 128, 128]
