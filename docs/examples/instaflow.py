import torch

import zoo
from zoo.media.image import save_grid

gen = zoo.load("instaflow")               # instaflow.0_9b: unet/ in the diffusers layout, strict load (research only: CC-BY-NC-4.0)
images = gen.generate("a red fox in the snow", generator=torch.Generator().manual_seed(0))  # ONE Euler step, no CFG (the card's defaults)
save_grid([list(images)], "fox.png")      # [1, 3, 512, 512] in [-1, 1]; CLIP ViT-L/14 and the SD 1.5 VAE loaded on demand
latents = gen.generate(["a cat", "a dog"], seed=1, return_latents=True)   # [2, 4, 64, 64], scaled by 0.18215
