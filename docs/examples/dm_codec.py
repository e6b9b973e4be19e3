import zoo
from zoo.media.audio import load_audio, save_audio

codec = zoo.load("dm_codec.lm_sm", weights="DM-Codec_checkpoint_LM_SM.pt")  # the file from weights_url (Google Drive)
wave, sr = load_audio("speech.wav")                  # any rate: zoo resamples to 16 kHz
tokens = codec.encode(wave, sr)                      # zoo.Tokens: ids [1, 8, T] at 50 Hz (SpeechTokenizer layout)
audio = codec.decode(tokens.codebooks(4))            # the first 4 levels: [1, 1, T * 320]
save_audio("dm_codec_4.wav", audio[0], codec.sample_rate)
