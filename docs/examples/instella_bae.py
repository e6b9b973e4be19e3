import zoo
from zoo.media.image import load_images, save_grid
from zoo.nn.binary import bits_to_ids

bae = zoo.load("instella_bae")                       # instella_bae.1024: bae/model.safetensors (research-only licence)
images = load_images(["cat.png"], size=1024)         # [1, 3, 1024, 1024] in [-1, 1]; sides multiples of 32
tokens = bae.encode(images)                          # zoo.Tokens ids [1, 64, 128]: 64 bit planes of 128 tokens
recon = bae.decode(tokens)                           # [1, 3, 1024, 1024]; decode(tokens, size=512) makes other sizes
save_grid([[images[0], recon[0]]], "reconstruction.png", col_labels=["input", "decoded"])
ids = bits_to_ids(tokens.ids.transpose(1, 2), group=32)   # [1, 128, 2] integers (bits most significant first)
