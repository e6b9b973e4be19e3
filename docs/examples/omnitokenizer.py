import zoo
from zoo.media.image import load_images, save_grid
from zoo.media.video import load_video, side_by_side, write_video

tok = zoo.load("omnitokenizer")                                # Daniel0724/OmniTokenizer imagenet_k600.ckpt (VQ, 8192 codes)
clip = load_video("clip.mp4", size=256, num_frames=17)         # 1 + 4k frames: [1, 3, 17, 256, 256] in [-1, 1]
tokens = tok.encode(clip)                                      # ids [1, 5 * 32 * 32], tokens.meta["grid"] == (5, 32, 32)
write_video(side_by_side(clip, tok.decode(tokens)), "omni.mp4", fps=8)

images = load_images(["cat.png"], size=256)                    # the same model takes images: [1, 3, 256, 256]
recon = tok.decode(tok.encode(images))                         # ids [1, 32 * 32] -> [1, 3, 256, 256]
save_grid([[images[0], recon[0]]], "omni.png", col_labels=["input", "decoded"])

vae = zoo.load("omnitokenizer.imagenet_k600_vae")              # continuous: posterior mean [1, 5 * 32 * 32, 8]
latents = vae.encode(clip)
