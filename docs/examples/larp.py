import torch
import zoo
from zoo.media.video import iter_chunks, load_video, side_by_side, write_video

tok = zoo.load("larp")                                        # hywang66/LARP-L-long-tokenizer, strict load (AR prior dropped)
clip = load_video("clip.mp4", size=128, num_frames=16)        # [1, 3, 16, 128, 128] in [-1, 1]
tokens = tok.encode(clip)                                     # zoo.Tokens: ids [1, 1024], codebook 8192 (argmax)
recon = tok.decode(tokens)                                    # [1, 3, 16, 128, 128] in [-1, 1]
write_video(side_by_side(clip, recon), "larp.mp4", fps=8)     # input | reconstruction

sampled = tok.encode(clip, sample=True, generator=torch.Generator().manual_seed(0))  # the reference's T = 0.03 draw
for chunk in iter_chunks("long.mp4", 16, size=128):           # long videos: 16-frame chunks, bounded memory
    ids = tok.encode(chunk.video).ids
