import torch, zoo

views = torch.randn(5, 576, 4096)                 # one LLaVA-NeXT image: thumbnail + 2x2 crops, 24x24 patches each
cls = torch.randn(5, 576)                         # each view's CLS logits at the tower's last layer
out = zoo.load("globalcom2").reduce(views, keep=0.25, cls_attn=cls, grid=(2, 2), image_size=(672, 672))
out.tokens.shape                                  # [1, K, 4096]: 144 thumbnail tokens, then about 25% of each crop
