import zoo

clip = zoo.load("clip_text.instaflow_0_9b")   # SD 1.5's CLIP ViT-L/14 text tower + BPE tokenizer (from_pretrained, strict)
states = clip.embed(["a red fox in the snow"])  # [1, 77, 768]: the last hidden state of 77 padded tokens, no mask (what the UNet sees)
# a text encoder has no decoder: clip.decode(...) raises
