import zoo

enc = zoo.load("sd3_text")                  # CLIP-L + CLIP-G + T5-XXL of stable-diffusion-3-medium-diffusers
states, pooled = enc.embed(["a red fox"])   # [1, 77 + 256, 4096], [1, 2048]: what the SD3 transformer sees
# text encoders have no decoder: enc.decode(...) raises
