import torch, zoo
from zoo_plugins.reducers.policies.dymu import calibrate_threshold

dymu = zoo.load("dymu")
# calibration (no gradients): on batches of images, merge r tokens per image on average and keep the
# similarity at which merging stopped; the threshold is its mean over the batches
calibration = [torch.randn(16, 577, 64) for _ in range(4)]    # [B, N, C]: e.g. attention keys, CLS first
threshold = calibrate_threshold(calibration, r=96, num_prefix=1)

# inference: every pair more similar than the threshold merges, so each image keeps its own number
tokens = torch.randn(2, 577, 1024)
out = dymu.reduce(tokens, threshold=threshold, metric=torch.randn(2, 577, 64), num_prefix=1)
out.lengths, out.tokens.shape, out.sizes.shape         # tokens per image; padded [B, max(lengths), D]; sizes
