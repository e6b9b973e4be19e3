import torch, zoo
from zoo_plugins.reducers.policies.hiprune import attention_scores

# HiPrune reads the vision encoder's attention at a middle ("object") layer and at a deep layer:
# per-token scores = attention column means (over heads and queries), CLS column dropped.
attn_object = torch.softmax(torch.randn(2, 16, 577, 577), dim=-1)  # [B, H, 1 + 24*24, ...], e.g. CLIP ViT-L layer 9
attn_deep = torch.softmax(torch.randn(2, 16, 577, 577), dim=-1)    # the feature layer (-2)
patch_tokens = torch.randn(2, 576, 1024)                           # [B, N, D], CLS removed

out = zoo.load("hiprune").reduce(patch_tokens, keep=192, object_attn=attention_scores(attn_object),
                                 deep_attn=attention_scores(attn_deep), grid=(24, 24))
out.indices.shape                                      # [2, 192]: anchors + their neighbours + registers
