import zoo
from zoo.media.audio import load_audio

codec = zoo.load("mimi")                             # kyutai/mimi through transformers' MimiModel (CC-BY-4.0)
wave, sr = load_audio("speech.wav")
tokens = codec.encode(wave, sr, codebooks=8)         # what Moshi uses: ids [1, 8, T] at 12.5 frames/s
semantic = tokens.levels[0]                          # level 0 is distilled from WavLM: [1, T]
audio = codec.decode(tokens)                         # [1, 1, T * 1920] at 24 kHz
