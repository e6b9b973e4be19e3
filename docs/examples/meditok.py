import zoo
from zoo.media.image import load_images, save_grid

tok = zoo.load("meditok")                            # meditok.simple_v1: meditok_simple_v1.pth (ViTamin-L encoder + decoder)
images = load_images(["xray.png"], size=256)         # [1, 3, 256, 256] in [-1, 1]
tokens = tok.encode(images)                          # zoo.Tokens ids [1, 8, 256]: 8 sub-codebook ids (of 4096) per 16x16 patch
recon = tok.decode(tokens)                           # [1, 3, 256, 256] in [-1, 1]
features = tok.embed(images, normalize=True)         # [1, 768]: the alignment head's image features
save_grid([[images[0], recon[0]]], "reconstruction.png", col_labels=["input", "decoded"])
