import zoo
from zoo.media.image import load_images, save_grid

tok = zoo.load("mingtok")                            # mingtok.vision: config.json read as data + model.safetensors
images = load_images(["cat.png"], size=512)          # [1, 3, 512, 512] in [-1, 1] (square)
latents = tok.encode(images)                         # zoo.Latents [1, 257, 32]: 16x16 patch latents, then the class token
features = tok.semantic_features(latents)            # [1, 256, 1024]: what Ming-UniVision understands
recon = tok.decode(latents)                          # [1, 3, 512, 512] in [-1, 1]
save_grid([[images[0], recon[0]]], "reconstruction.png", col_labels=["input", "decoded"])
