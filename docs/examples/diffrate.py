import torch, zoo
from zoo.compat.torchvision import import_timm

deit = import_timm().create_model("deit_small_patch16_224").eval()
handle = zoo.load("diffrate").apply(deit, flops=2.9)    # DiffRate's published DeiT-S schedule (GFLOPs)
with torch.inference_mode():
    logits = deit(torch.randn(8, 3, 224, 224))
handle.remove()
