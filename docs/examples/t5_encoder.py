import zoo

t5 = zoo.load("t5_encoder.pixart_sigma")       # T5 v1.1 XXL encoder + sentencepiece tokenizer (4 shards, strict)
states, mask = t5.embed(["a red fox in the snow"], max_length=300)   # [1, 300, 4096], [1, 300]: what PixArt-Σ sees
z = t5.encode(["a red fox", "a cat"])           # zoo.Latents: hidden states, lengths = real tokens
# a text encoder has no decoder: t5.decode(z) raises
