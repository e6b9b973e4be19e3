import zoo
from zoo.media.audio import load_audio

codec = zoo.load("xcodec")                           # hf-audio/xcodec-hubert-librispeech (XcodecModel)
wave, sr = load_audio("speech.wav")
tokens = codec.encode(wave, sr)                      # ids [1, 8, T] at 50 frames/s (4 kbps); codebooks=1 is 0.5 kbps
audio = codec.decode(tokens.codebooks(2))            # [1, 1, T * 320] at 16 kHz from the first 2 levels
