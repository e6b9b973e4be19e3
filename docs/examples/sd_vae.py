import zoo
from zoo.media.image import load_images, save_grid

vae = zoo.load("sd_vae.instaflow_0_9b")          # SD 1.5's AutoencoderKL, vae/ folder of the InstaFlow repo
images = load_images(["cat.png"], size=512)      # [B, 3, H, W] in [-1, 1]
z = vae.encode(images)                           # zoo.Latents [B, 64*64, 4] (posterior mode, unscaled), meta["grid"]
save_grid([[images[0], vae.decode(z)[0]]], "vae.png", col_labels=["input", "decoded"])
