import torch, zoo
from zoo.compat.torchvision import import_timm           # timm on CPU-only torch

vit = import_timm().create_model("vit_base_patch16_224").eval()   # any timm ViT (your weights)
handle = zoo.load("tome").apply(vit, r=13)              # ToMe: merge 13 tokens in every block
with torch.inference_mode():
    logits = vit(torch.randn(8, 3, 224, 224))           # ~2x fewer FLOPs at 224 px
handle.remove()                                         # the original model, exactly
