import zoo
from zoo.media.image import load_images, save_grid

vae = zoo.load("vitok_v2")                           # vitok_v2.350m_f16x64: encoder + decoder safetensors, strict load
images = load_images(["cat.png", "dog.png"], size=256)      # [2, 3, 256, 256] in [-1, 1]
latents = vae.encode(images)                         # zoo.Latents [2, 256, 64], meta["grid"] == (16, 16)
recon = vae.decode(latents)                          # [2, 3, 256, 256] in [-1, 1]
save_grid([[images[0], recon[0]]], "reconstruction.png", col_labels=["input", "decoded"])
# any resolution, and batches of different sizes (NaFlex: padded and masked, cropped back on decode)
wide, small = load_images(["wide.png"])[0], load_images(["icon.png"])[0]   # [3, H, W] each, any size
ragged = vae.encode([wide, small])                   # lengths = patches per image, meta["sizes"] = (H, W) each
pictures = vae.decode(ragged)                        # a list of [3, H, W], one per input size
