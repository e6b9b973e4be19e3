import zoo
from zoo.media.image import load_images, save_grid

vae = zoo.load("sdxl_vae.pixart_sigma")          # diffusers AutoencoderKL, vae/ folder of the PixArt-Σ components
images = load_images(["cat.png"], size=512)      # [B, 3, H, W] in [-1, 1]
z = vae.encode(images)                           # zoo.Latents [B, 64*64, 4] (posterior mode, unscaled), meta["grid"]
recon = vae.decode(z)                            # [B, 3, 512, 512] in [-1, 1]
save_grid([[images[0], recon[0]]], "vae.png", col_labels=["input", "decoded"])
