import torch

import zoo
from zoo.media.image import save_grid

gen = zoo.load("pixart_sigma")            # pixart_sigma.xl_2_1024_ms: transformer/ in the diffusers layout, strict load
images = gen.generate("a red fox in the snow", generator=torch.Generator().manual_seed(0))  # 20 DPM-Solver++ steps, CFG 4.5
save_grid([list(images)], "fox.png")      # [1, 3, 1024, 1024] in [-1, 1]; T5-XXL and the SDXL VAE loaded on demand
more = gen.generate(["a cat", "a dog"], "blurry", steps=14, guidance_scale=3.5, height=768, width=1280, seed=1)
small = zoo.load("pixart_sigma.xl_2_512_ms")   # shares the T5 and VAE already loaded in this process
latents = small.generate("a red fox", seed=0, return_latents=True)   # [1, 4, 64, 64], scaled by 0.13025
nitro = zoo.load("pixart_sigma.nitro")        # AMD's one-step distillation: 1 DPM-Solver++ step at timestep 400, no CFG
fast = nitro.generate("a red fox in the snow", seed=0)   # same T5 and VAE as the cards above (shared in this process)
