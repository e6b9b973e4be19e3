import zoo
from zoo.media.audio import load_audio, save_audio

codec = zoo.load("encodec")                          # facebook/encodec_24khz through transformers' EncodecModel
wave, sr = load_audio("speech.wav")
tokens = codec.encode(wave, sr, codebooks=8)         # 6 kbps: ids [1, 8, T] at 75 frames/s (32 levels = 24 kbps)
audio = codec.decode(tokens)                         # [1, 1, T * 320] at 24 kHz
save_audio("encodec_6kbps.wav", audio[0], codec.sample_rate)
