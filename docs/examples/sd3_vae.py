import zoo
from zoo.media.image import load_images, save_grid

vae = zoo.load("sd3_vae")                   # SD3's 16-channel AutoencoderKL (gated repo)
images = load_images(["cat.png"], size=512) # [B, 3, H, W] in [-1, 1]
z = vae.encode(images)                      # zoo.Latents [B, 64*64, 16] (raw posterior mode), meta["grid"]
save_grid([[images[0], vae.decode(z)[0]]], "vae.png", col_labels=["input", "decoded"])
