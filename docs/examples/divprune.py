import torch, zoo

visual_tokens = torch.randn(2, 576, 1024)               # [B, N, D], e.g. a CLIP encoder's output for an LMM
out = zoo.load("divprune").reduce(visual_tokens, keep=0.1)   # keep the 10% most diverse tokens
out.tokens.shape, out.indices.shape                     # [2, 58, 1024], [2, 58]: which tokens were kept
