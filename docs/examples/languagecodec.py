import zoo
from zoo.media.audio import load_audio, save_audio

# the checkpoint is on Google Drive (zoo info languagecodec prints the link): download it first
codec = zoo.load("languagecodec", weights="languagecodec_paper_8nq.ckpt")
wave, sr = load_audio("speech.wav")                  # any rate and channels: zoo resamples to 24 kHz mono
tokens = codec.encode(wave, sr)                      # zoo.Tokens: ids [1, 8, T] at 75 frames/s
for q in (1, 3, 8):                                  # levels 0-2 each code a third of the channels
    save_audio(f"languagecodec_{q}.wav", codec.decode(tokens.codebooks(q)), codec.sample_rate)
