import zoo

llama = zoo.load("llama_text")             # llama_text.llama_3_2_1b (gated: accept Meta's licence on the hub, HF_TOKEN set)
states, mask = llama.embed(["a red fox in the snow"], 128)   # [1, 128, 2048] final-norm hidden states, padded with EOS (Nitro-E's condition)
# a text encoder has no decoder: llama.decode(...) raises
