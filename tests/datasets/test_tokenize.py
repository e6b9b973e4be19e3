"""zoo.tokenize / zoo.read_tokens / zoo detokenize on the local engine: the output format, the
failure list, determinism across decode-worker counts, resume after an interruption (in process
and by SIGKILL), and the refusal to mix runs in one directory."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.datasets.shards import STATE_DIR, item_row, read_shard, write_shard
from zoo.errors import InputError
from zoo.interfaces import Latents, MultiRateTokens, Tokens

from .conftest import DEMO, png_bytes, wav_bytes, write_parquet, write_tar

pytest.importorskip("pyarrow", reason="zoo tokenize writes Parquet: pip install 'zoo[datasets]'")


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) -> its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def flextok():
    return zoo.load(DEMO)


@pytest.fixture
def images(tmp_path) -> Path:
    root = tmp_path / "images"
    for i in range(9):
        (root / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"c{i % 3}" / f"{i:02d}.png").write_bytes(png_bytes(i))
    (root / "c1" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "c2" / "speech.wav").write_bytes(wav_bytes(0))
    (root / "README.txt").write_text("not media")
    return root


def test_tokens_match_the_model_and_failures_are_listed(flextok, images, tmp_path):
    out = tmp_path / "tok"
    summary = zoo.tokenize(flextok, [images], out, workers=0, batch_size=4, shard_size=5, tokens=8, progress=False)
    assert (summary.items, summary.written, summary.failed, summary.ignored, summary.shards) == (11, 9, 2, 1, 3)
    assert "11 items: 9 written, 2 failed, 1 ignored" in summary.line()
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(os.listdir(out)) == ["manifest.json", "part-00000.parquet", "part-00001.parquet"]  # shard 2: all failed
    assert (manifest["model"], manifest["revision"], manifest["format"]) == (flextok.card.name, "not pinned", "zoo-tokens/1")
    assert manifest["settings"] == {"batch_size": 4, "shard_size": 5, "tokens": 8, "latents_dtype": "float32", "column": None}
    assert [(s["rows"], s["file"]) for s in manifest["shards"]] == [(5, "part-00000.parquet"), (4, "part-00001.parquet"),
                                                                    (0, None)]
    assert manifest["rows"] == 9
    assert {f["key"]: f["error"].split(":")[0] for f in manifest["failures"]} == {"c1/corrupt.png": "MediaError",
                                                                                    "c2/speech.wav": "MediaError"}
    assert "takes image" in next(f["error"] for f in manifest["failures"] if f["key"] == "c2/speech.wav")
    assert manifest["ignored"] == [{"key": "README.txt", "reason": "not an image, audio, Parquet or tar file (by extension)"}]
    assert manifest["tokens"]["type"] == "tokens"
    batches = list(zoo.read_tokens(out))
    keys = [k for b in batches for k in b.keys]
    assert keys == sorted(keys) and len(keys) == 9 and "c1/corrupt.png" not in keys
    from zoo.media.image import load_images

    paths = [images / k for k in keys]
    with torch.inference_mode():
        expected = flextok.encode(load_images(paths, size=flextok.image_size)).truncate(8)
    assert manifest["tokens"]["codebook_size"] == expected.codebook_size == batches[0].tokens.codebook_size
    got = torch.cat([b.tokens.ids for b in batches])
    assert isinstance(batches[0].tokens, Tokens) and batches[0].tokens.tokenizer == flextok.card.name
    assert torch.equal(got, expected.ids)
    small = list(zoo.read_tokens(out, batch_size=2))
    assert [len(b) for b in small] == [2, 2, 1, 2, 2]


def test_decode_workers_do_not_change_a_byte(flextok, images, tmp_path):
    zoo.tokenize(flextok, [images], tmp_path / "w0", workers=0, batch_size=3, shard_size=4, progress=False)
    zoo.tokenize(flextok, [images], tmp_path / "w2", workers=2, batch_size=3, shard_size=4, progress=False)
    assert tree(tmp_path / "w0") == tree(tmp_path / "w2")


class _Interrupting:
    """The demo model, interrupted (as by Ctrl-C) at its ``after``-th encode call."""

    def __init__(self, model, after: int):
        self.model, self.after, self.calls = model, after, 0
        self.card, self.config, self.image_size = model.card, model.config, model.image_size

    def encode(self, x):
        self.calls += 1
        if self.calls == self.after:
            raise KeyboardInterrupt
        return self.model.encode(x)


def test_an_interrupted_run_resumes_to_the_same_bytes(flextok, images, tmp_path):
    clean = tmp_path / "clean"
    zoo.tokenize(flextok, [images], clean, workers=0, batch_size=2, shard_size=3, progress=False)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        zoo.tokenize(_Interrupting(flextok, after=4), [images], out, workers=0, batch_size=2, shard_size=3, progress=False)
    assert not (out / "manifest.json").exists()
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet"]  # shard 1 was half done
    (out / ".part-00001.parquet.tmp-99999").write_bytes(b"left by a killed write")
    with pytest.raises(InputError, match="has not finished; run the same command again"):
        zoo.read_tokens(out)
    summary = zoo.tokenize(flextok, [images], out, workers=0, batch_size=2, shard_size=3, progress=False)
    assert summary.resumed_shards == 1 and summary.processed == 11 - 3
    assert tree(out) == tree(clean)
    again = zoo.tokenize(flextok, [images], out, workers=0, batch_size=2, shard_size=3, progress=False)
    assert again.processed == 0 and again.line().startswith("nothing to do")
    assert tree(out) == tree(clean)
    (out / STATE_DIR).mkdir()  # killed after writing the manifest, before removing its state
    (out / STATE_DIR / "shard-00000.json").write_text("{}")
    zoo.tokenize(flextok, [images], out, workers=0, batch_size=2, shard_size=3, progress=False)
    assert tree(out) == tree(clean)


def test_a_shard_whose_file_changed_is_redone(flextok, images, tmp_path):
    clean = tmp_path / "clean"
    zoo.tokenize(flextok, [images], clean, workers=0, batch_size=4, shard_size=4, progress=False)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        zoo.tokenize(_Interrupting(flextok, after=3), [images], out, workers=0, batch_size=4, shard_size=4, progress=False)
    (out / "part-00001.parquet").write_bytes(b"damaged")
    zoo.tokenize(flextok, [images], out, workers=0, batch_size=4, shard_size=4, progress=False)
    assert tree(out) == tree(clean)


@pytest.mark.parametrize(("change", "match"), [
    ({"tokens": 4}, "settings.tokens: None there, 4 now"),
    ({"batch_size": 2}, "settings.batch_size: 4 there, 2 now"),
    ({"model": "other"}, "config_hash"),
    ({"inputs": "fewer"}, "inputs.count: 11 there, 3 now"),
])
def test_a_directory_never_mixes_two_runs(flextok, images, tmp_path, change, match):
    out = tmp_path / "tok"
    zoo.tokenize(flextok, [images], out, workers=0, batch_size=4, shard_size=4, progress=False)
    before = tree(out)
    kwargs = {"workers": 0, "batch_size": 4, "shard_size": 4, "progress": False, **change}
    model = flextok
    inputs = [images]
    if kwargs.pop("model", None):
        model = zoo.load(DEMO, default_steps=2)
    if kwargs.pop("inputs", None):
        inputs = [images / "c0"]
    with pytest.raises(InputError, match=match):
        zoo.tokenize(model, inputs, out, **kwargs)
    assert tree(out) == before


def test_an_unrelated_directory_is_refused(flextok, images, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(InputError, match="not a zoo tokenize output directory"):
        zoo.tokenize(flextok, [images], tmp_path / "mine", workers=0, progress=False)
    with pytest.raises(InputError, match="has no manifest.json"):
        zoo.read_tokens(tmp_path / "mine")


def test_parquet_and_webdataset_inputs(flextok, tmp_path):
    write_parquet(tmp_path / "d.parquet", {"label": [0, 1, 2], "jpg": [png_bytes(1), b"junk", png_bytes(2)]})
    write_tar(tmp_path / "s.tar", {"k0.png": png_bytes(1), "k0.json": b"{}"})
    out = tmp_path / "tok"
    summary = zoo.tokenize(flextok, [tmp_path / "d.parquet", tmp_path / "s.tar"], out, column="jpg", workers=0,
                           progress=False)
    assert (summary.written, summary.failed) == (3, 1)
    (batch,) = zoo.read_tokens(out)
    assert batch.keys == ["d.parquet#0", "d.parquet#2", "s.tar/k0.png"]
    assert torch.equal(batch.tokens.ids[0], batch.tokens.ids[2])  # the same image bytes
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failures"][0]["key"] == "d.parquet#1" and manifest["settings"]["column"] == "jpg"


@pytest.fixture(scope="module")
def snac():
    from zoo_plugins.snac.testing import SMALL

    torch.manual_seed(0)
    return zoo.load("snac.24khz", pretrained=False, **SMALL["plain"])


def test_multirate_audio_tokens_round_trip(snac, tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    lengths = {"a.wav": 1600, "b.wav": 2400, "c.wav": 1600}
    for i, (name, n) in enumerate(lengths.items()):
        (root / name).write_bytes(wav_bytes(i, samples=n, rate=24000))  # resampled to the model's 16 kHz
    zoo.tokenize(snac, [root], tmp_path / "tok", workers=0, batch_size=3, progress=False)
    (batch,) = zoo.read_tokens(tmp_path / "tok")
    tokens = batch.tokens
    assert isinstance(tokens, MultiRateTokens) and tokens.strides == (4, 2, 1)
    assert tokens.meta["num_samples"] == [1067, 1600, 1067] and tokens.meta["sample_rate"] == 16000
    from zoo.media.audio import load_audio

    for i, name in enumerate(batch.keys):
        wav, rate = load_audio(root / name)
        alone = snac.encode(wav, rate)
        assert int(tokens.lengths[i]) == int(alone.lengths[0])
        for level, ids in enumerate(alone.levels):
            n = int(alone.level_lengths[level][0])
            assert torch.equal(tokens.levels[level][i, :n], ids[0, :n])


def test_mixed_length_audio_is_never_padded_and_every_clip_comes_back(tmp_path):
    """Clips of several lengths (and rates) in one batch: equal lengths encode together, the rest
    alone, so each clip's ids equal encoding it alone and batch size 1 or 4 writes the same bytes;
    detokenize writes one file per row, trimmed to the clip's length (x.flac and x.wav both kept)."""
    import soundfile as sf

    from zoo.datasets.detokenize import detokenize
    from zoo.media.audio import load_audio, prepare_audio

    model = zoo.load("wavtokenizer.demo_tiny")  # embedded weights, 16 kHz, one codebook
    root = tmp_path / "audio"
    root.mkdir()
    clips = {"a.wav": (1600, 16000), "b.wav": (2400, 16000), "c.wav": (1600, 16000), "x.wav": (700, 16000), "x.flac": (4000, 22050)}
    for i, (name, (n, rate)) in enumerate(clips.items()):
        if name.endswith(".flac"):
            sf.write(root / name, (np.random.default_rng(i).standard_normal(n) * 0.1).astype(np.float32), rate, format="FLAC")
        else:
            (root / name).write_bytes(wav_bytes(i, samples=n, rate=rate))
    zoo.tokenize(model, [root], tmp_path / "b4", workers=0, batch_size=4, progress=False)
    zoo.tokenize(model, [root], tmp_path / "b1", workers=0, batch_size=1, progress=False)
    assert {k: v for k, v in tree(tmp_path / "b4").items() if k != "manifest.json"} == \
        {k: v for k, v in tree(tmp_path / "b1").items() if k != "manifest.json"}
    (batch,) = zoo.read_tokens(tmp_path / "b4")
    assert batch.keys == sorted(clips) and len(set(batch.tokens.lengths.tolist())) > 2
    for i, key in enumerate(batch.keys):
        wav, rate = load_audio(root / key)
        alone = model.encode(prepare_audio(wav, rate, 16000)[None, None], 16000)
        n = int(alone.lengths[0])
        assert int(batch.tokens.lengths[i]) == n and torch.equal(batch.tokens.ids[i, :n], alone.ids[0, :n]), key
    written = detokenize(tmp_path / "b4", tmp_path / "back", model=model)
    names = sorted(p.relative_to(tmp_path / "back").as_posix() for p in written)
    assert names == ["a.wav", "b.wav", "c.wav", "x.flac.wav", "x.wav"]
    for key, name in (("x.flac", "x.flac.wav"), ("x.wav", "x.wav"), ("b.wav", "b.wav")):
        wav, rate = load_audio(root / key)
        assert load_audio(tmp_path / "back" / name)[0].shape[-1] == prepare_audio(wav, rate, 16000).shape[-1]
    limited = detokenize(tmp_path / "b4", tmp_path / "first2", model=model, limit=2)
    assert [p.name for p in limited] == ["a.wav", "b.wav"]


def test_several_codebooks_and_latents_survive_the_format(tmp_path):
    from zoo.datasets.reader import _to_tokens
    from zoo.datasets.shards import token_info

    ids = torch.randint(0, 1000, (3, 4, 6))
    t = Tokens(ids=ids, codebook_size=1000, tokenizer="x.rvq", lengths=[6, 2, 5], meta={"sample_rate": 24000})
    rows = [item_row(f"k{i}", t[i]) for i in range(3)]
    assert [len(r["ids"]) for r in rows] == [4, 4, 4] and [len(r["ids"][0]) for r in rows] == [6, 2, 5]
    write_shard(tmp_path, 0, rows)
    back = _to_tokens(token_info(t), read_shard(tmp_path / "part-00000.parquet"), 0, 3)
    assert back.ids.shape == (3, 4, 6) and torch.equal(back.lengths, t.lengths)
    for i, n in enumerate([6, 2, 5]):
        assert torch.equal(back.ids[i, :, :n], ids[i, :, :n])
    z = Latents(values=torch.randn(2, 5, 3), tokenizer="x.vae", lengths=[5, 3])
    for dtype, atol in (("float32", 0.0), ("float16", 1e-3)):
        write_shard(tmp_path, 1, [item_row(f"z{i}", z[i]) for i in range(2)], latents_dtype=dtype)
        import pyarrow.parquet as pq

        col = pq.read_table(tmp_path / "part-00001.parquet").column("latents")
        assert col.type.extension_name == "arrow.fixed_shape_tensor" and col.type.shape == [5, 3]
        back = _to_tokens(token_info(z), read_shard(tmp_path / "part-00001.parquet"), 0, 2)
        assert isinstance(back, Latents) and torch.equal(back.lengths, z.lengths)
        assert torch.allclose(back.values[1, :3], z.values[1, :3], atol=atol) and not back.values[1, 3:].any()


def test_continuous_tokenizer_writes_latents(images, tmp_path):
    torch.manual_seed(0)
    vae = zoo.load("mar_vae.kl16", pretrained=False, ch=32, ch_mult=[1, 1], num_res_blocks=1, resolution=32,
                   image_size=32, attn_resolutions=[], embed_dim=4, z_channels=4)
    zoo.tokenize(vae, [images / "c0"], tmp_path / "z", workers=0, progress=False)
    (batch,) = zoo.read_tokens(tmp_path / "z")
    from zoo.media.image import load_images

    with torch.inference_mode():
        expected = vae.encode(load_images([images / "c0" / k for k in batch.keys], size=32))
    assert isinstance(batch.tokens, Latents) and batch.tokens.meta["grid"] == (16, 16)
    assert torch.equal(batch.tokens.values, expected.values)


def test_cli_tokenize_and_detokenize(images, tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    out = tmp_path / "tok"
    args = ["tokenize", "--model", DEMO, str(images / "c0"), str(images / "c1"), "--out", str(out),
            "--workers", "0", "--tokens", "4", "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "tokenized 7 items: 6 written, 1 failed" in result.output and "items/s (local)" in result.output
    result = CliRunner().invoke(cli, [*args[:-5], "--workers", "0", "--tokens", "8", "--no-progress"])
    assert result.exit_code == 1 and "settings.tokens: 4 there, 8 now" in result.output
    result = CliRunner().invoke(cli, ["detokenize", str(out), "--out", str(tmp_path / "media"), "--limit", "4"])
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path / "media").as_posix() for p in (tmp_path / "media").rglob("*.png"))
    assert written == ["00.png", "01.png", "03.png", "04.png"]
    from PIL import Image

    size = zoo.load(DEMO).image_size
    assert Image.open(tmp_path / "media" / "00.png").size == (size, size)


_KILL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
import zoo
zoo.tokenize(sys.argv[3], [sys.argv[1]], sys.argv[2], workers=0, batch_size=1, shard_size=1, progress=False)
"""


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_gives_identical_output(images, tmp_path):
    """A real kill: the run is SIGKILLed as soon as its second shard exists, then restarted."""
    clean = tmp_path / "clean"
    zoo.tokenize(DEMO, [images], clean, workers=0, batch_size=1, shard_size=1, progress=False)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(images), str(out), DEMO])
    deadline = time.monotonic() + 120
    while not (out / "part-00001.parquet").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists(), "the run finished before it could be killed"
    assert (out / STATE_DIR).is_dir()
    subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(images), str(out), DEMO], check=True)
    assert tree(out) == tree(clean)


def test_progress_bar_shows_rate_and_count(flextok, images, tmp_path, capsys):
    zoo.tokenize(flextok, [images / "c0"], tmp_path / "tok", workers=0, progress=True)
    err = capsys.readouterr().err
    assert "tokenize (local)" in err and "3/3" in err and "item/s" in err


def test_detokenize_refuses_a_model_with_another_config(flextok, images, tmp_path):
    from zoo.datasets.detokenize import detokenize

    zoo.tokenize(flextok, [images / "c0"], tmp_path / "tok", workers=0, progress=False)
    other = zoo.load(DEMO, default_steps=2)
    with pytest.raises(InputError, match="config hash"):
        detokenize(tmp_path / "tok", tmp_path / "media", model=other)
    assert [p.name for p in detokenize(tmp_path / "tok", tmp_path / "media", model=flextok, limit=2)] == ["00.png", "03.png"]


@pytest.mark.parametrize(("args", "message"), [
    (["--ray-address", "auto"], "--ray-address applies to --engine ray"),
    (["--engine", "ray", "--workers", "0"], "at least one actor"),
    (["--engine", "spark"], "'spark' is not one of"),
])
def test_cli_refuses_bad_engine_arguments(images, tmp_path, args, message):
    from click.testing import CliRunner

    from zoo.cli import cli

    result = CliRunner().invoke(cli, ["tokenize", "--model", DEMO, str(images), "--out", str(tmp_path / "t"),
                                      *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "t").exists()


def test_an_output_folder_inside_the_inputs_is_not_read_back(flextok, images, tmp_path):
    out = images / "tokens"
    first = zoo.tokenize(flextok, [images], out, workers=0, shard_size=4, progress=False)
    again = zoo.tokenize(flextok, [images], out, workers=0, shard_size=4, progress=False)
    assert first.items == again.items == 11 and again.line().startswith("nothing to do")


def test_ray_on_a_gpu_cluster_gives_each_actor_a_gpu_and_leaves_the_driver_alone(flextok, images, tmp_path, monkeypatch):
    """No GPU here: the cluster's GPU count and the Ray engine are stand-ins. With no --device on
    a cluster that has GPUs, the actors' model spec says cuda with one GPU each, while the
    driver's model object is never moved to a GPU it may not have (it was: .to("cuda") on the
    driver)."""
    import zoo.datasets.tokenize as tok
    from zoo.datasets.engines import run_local

    seen = {}

    def fake_run_ray(job, loader, shards, *, batch_size, actors, address, gpus_per_actor, progress):
        seen.update(device=job.spec.device, gpus=gpus_per_actor, actors=actors)
        job.spec = dataclasses.replace(job.spec, device=None)  # the replica runs here, on the CPU
        yield from run_local(job, loader, shards, batch_size=batch_size, workers=0, progress=progress)

    monkeypatch.setattr(tok, "cluster_gpus", lambda address=None: 2)
    monkeypatch.setattr(tok, "run_ray", fake_run_ray)
    summary = zoo.tokenize(flextok, [images / "c0"], tmp_path / "tok", engine="ray", actors=2, progress=False)
    assert seen == {"device": "cuda", "gpus": 1.0, "actors": 2} and summary.written == 3
    assert next(flextok.parameters()).device.type == "cpu"
