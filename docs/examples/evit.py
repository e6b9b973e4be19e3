import torch, zoo
from zoo.compat.torchvision import import_timm

deit = import_timm().create_model("deit_small_patch16_224").eval()
handle = zoo.load("evit").apply(deit, keep_rate=0.7, locations=(3, 6, 9))   # keep 70% at blocks 3, 6, 9
with torch.inference_mode():
    logits = deit(torch.randn(8, 3, 224, 224))
handle.remove()
