"""The embedded audio demo (``wavtokenizer.demo_tiny``, issue 21): it loads offline from inside
the package through the WavTokenizer builder, its card says what it is, it is *trained* (on the
held-out clips ``examples/audio/*.wav`` -- sentences and voice variants never trained on, see
``HELDOUT`` in ``scripts/train_demo_wavtokenizer.py`` -- it beats mu-law PCM at the same bitrate
on mel and STFT distance, and an untrained model with the same codebook does not), and
``zoo reconstruct --model wavtokenizer.demo_tiny examples/audio/*.wav --out out/`` writes a
reconstruction and an input-vs-output spectrogram per clip.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import zoo
from zoo.media.audio import load_audio, prepare_audio
from zoo.media.audio_metrics import mel_distance, mulaw_baseline, stft_distance

ROOT = Path(__file__).resolve().parents[3]
CLIPS = sorted((ROOT / "examples" / "audio").glob("*.wav"))
NAME = "wavtokenizer.demo_tiny"
WEIGHTS = ROOT / "plugins" / "wavtokenizer" / "demo" / "tiny" / "model.safetensors"


@pytest.fixture(scope="module")
def model():
    return zoo.load(NAME)


@pytest.fixture(scope="module")
def clips(model):
    assert len(CLIPS) >= 3, f"examples/audio should hold the held-out clips, found {CLIPS}"
    return [prepare_audio(*load_audio(p), model.sample_rate) for p in CLIPS]


def distances(model, clips, system) -> tuple[float, float]:
    mel, stft = [], []
    for x in clips:
        y = system(x)
        mel.append(float(mel_distance(x, y, model.sample_rate)[0]))
        stft.append(float(stft_distance(x, y)[0]))
    return sum(mel) / len(mel), sum(stft) / len(stft)


def test_card_and_files():
    record = zoo.info(NAME)
    text = (record["description"] + " " + record["notes"] + " " + record["license"]["notes"]).lower()
    for phrase in ("demo weights", "not for research use", "espeak-ng"):
        assert phrase in text
    assert record["package_dir"] == "zoo_plugins.wavtokenizer:demo/tiny" and record["hub_repo"] is None
    assert WEIGHTS.stat().st_size < 20 * 2**20


def test_loads_offline_with_the_card_config(monkeypatch, model):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = zoo.load(NAME)
    assert (again.sample_rate, again.frame_rate, again.codebook_size) == (16000, 50.0, 1024)
    assert model.card.name == NAME


def test_beats_mulaw_at_the_same_bitrate(model, clips):
    bitrate = model.frame_rate * math.log2(model.codebook_size)  # 500 bit/s
    ours = distances(model, clips, lambda x: model.reconstruct(x[None, None], model.sample_rate)[0])
    for bits in (8, 4, 2):
        base = distances(model, clips, lambda x, b=bits: mulaw_baseline(x, model.sample_rate, bitrate, b)[0])
        assert ours[0] < base[0] and ours[1] < base[1], f"mu-law {bits}-bit at {bitrate:g} bit/s: {base} vs ours {ours}"


def test_trained_codec_beats_its_untrained_twin(model, clips):
    """Same config, random weights, codebook drawn from its own encoder's outputs: clearly worse,
    so the test above measures training."""
    from zoo_plugins.wavtokenizer.model import WavTokenizer

    torch.manual_seed(0)
    rand = WavTokenizer(model.config).eval()
    with torch.no_grad():
        z = rand.latents(clips[0][None])[0].T
        rand.quantizer.embed.copy_(z[torch.randint(0, z.shape[0], (model.codebook_size,))])
    ours = distances(model, clips, lambda x: model.reconstruct(x[None, None], model.sample_rate)[0])
    theirs = distances(model, clips, lambda x: rand.reconstruct(x[None, None], model.sample_rate)[0])
    assert ours[0] < theirs[0] - 0.5, (ours, theirs)


def test_zoo_reconstruct_writes_audio_and_spectrograms(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["reconstruct", "--model", NAME, *map(str, CLIPS), "--out", f"{out}/"])
    assert result.exit_code == 0, result.output
    for clip in CLIPS:
        wav, png = out / f"{clip.stem}.wav", out / f"{clip.stem}.png"
        y, sr = load_audio(wav)
        x, sr_in = load_audio(clip)
        assert sr == 16000 and abs(y.shape[-1] - x.shape[-1] * 16000 / sr_in) <= 1
        picture = Image.open(png)
        assert picture.width >= 200 and picture.height > 400  # input panel above, reconstruction below
        assert f"wrote {wav}" in result.output


@pytest.mark.parametrize("args, message", [
    (["--out", "one.wav"], "give a folder"),  # several inputs, one file
    (["--out", "x.txt"], "must end in"),
])
def test_zoo_reconstruct_audio_output_errors(tmp_path, args, message):
    from click.testing import CliRunner

    from zoo.cli import cli

    out = [a if not a.endswith((".wav", ".txt")) else str(tmp_path / a) for a in args]
    inputs = list(map(str, CLIPS)) if message == "give a folder" else [str(CLIPS[0])]
    result = CliRunner().invoke(cli, ["reconstruct", "--model", NAME, *inputs, *out])
    assert result.exit_code != 0 and message in result.output, result.output
