import zoo
from zoo.media.image import load_images, save_grid

vae = zoo.load("dc_ae")                     # dc_ae.f32c32_sana_1_0: diffusers AutoencoderDC, 32x downsampling, 32 channels
images = load_images(["cat.png"], size=512) # [B, 3, H, W] in [-1, 1], sides multiples of 32
z = vae.encode(images)                      # zoo.Latents [B, 16*16, 32] (raw, deterministic), meta["grid"] = (16, 16)
save_grid([[images[0], vae.decode(z)[0]]], "dcae.png", col_labels=["input", "decoded"])
