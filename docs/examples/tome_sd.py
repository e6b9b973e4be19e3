import torch

import zoo

gen = zoo.load("pixart_sigma")                  # or zoo.load("sd3"), a diffusers pipeline, or a bare UNet / DiT
tome = zoo.load("tome_sd")
base = gen.generate("a red fox", seed=0)
with tome.apply(gen, ratio=0.5) as handle:     # half the image tokens merged before each self-attention
    fast = gen.generate("a red fox", seed=0)   # faster; handle.merged_calls counts the merging attention calls
assert torch.equal(gen.generate("a red fox", seed=0), base)   # removed: bit-identical again
