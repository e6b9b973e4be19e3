import torch

import zoo
from zoo.media.image import save_grid

# the official checkpoint-last.pth (Dropbox, the card's weights_url); its model_ema entry is loaded
gen = zoo.load("mar.base", weights="checkpoint-last.pth")
vae = zoo.load("mar_vae.kl16")                       # the paired KL-16 VAE (loaded on demand if not given)
g = torch.Generator().manual_seed(0)                 # orders and every diffusion-head draw come from it
images = gen.generate([207, 360], steps=64, guidance_scale=2.9, generator=g, vae=vae)  # [2, 3, 256, 256] in [-1, 1]
save_grid([list(images)], "mar.png")
latents = gen.generate([207], seed=0, return_latents=True)   # zoo.Latents [1, 256, 16] in MAR's space
# the reference's own run (torch.manual_seed(0); np.random.seed(0)) is reproduced by seed=0, orders="numpy"
same_as_reference = gen.generate([207], seed=0, orders="numpy", return_latents=True)
