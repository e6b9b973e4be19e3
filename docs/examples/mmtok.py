import torch, zoo

# MMTok keeps the visual tokens that best cover the prompt's text tokens and the visual tokens.
visual_tokens = torch.randn(2, 576, 4096)              # [B, N, D]: projected vision tokens (LLaVA-1.5)
clip_features = torch.randn(2, 576, 1024)              # [B, N, Dv]: the encoder's features before the projector
text = torch.randn(2, 6, 4096)                         # [B, T, D]: LLM input embeddings of the question's keywords
text_mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2]).bool()   # per-sample text lengths (True = real token)

out = zoo.load("mmtok").reduce(visual_tokens, keep=64, text=text, text_mask=text_mask, vision=clip_features)
out.tokens.shape, out.indices.shape                    # [2, 64, 4096], [2, 64]: kept tokens, ascending positions
