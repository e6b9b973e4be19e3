"""The zoo command line, on the example plugin."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from zoo.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_list_table_and_json(patchvq_plugin):
    out = run("list")
    assert out.exit_code == 0 and "patchvq.tiny *" in out.output and "Apache-2.0" in out.output
    records = json.loads(run("list", "patch*", "--json").output)
    assert [r["name"] for r in records] == ["patchvq.tiny"]
    assert "no models match" in run("list", "nothing*").output
    assert run("list", "--kind", "generator", "patch*").output.startswith("no models match")


def test_info_and_unknown_name(patchvq_plugin):
    out = run("info", "patchvq")
    assert json.loads(out.output)["hub_repo"] == "zoo-examples/patchvq-tiny"
    bad = run("info", "patchvqq")
    assert bad.exit_code == 1 and "Did you mean: patchvq" in bad.output


def test_plugins_command(patchvq_plugin):
    out = run("plugins")
    assert "catalogue" in out.output and "patchvq-test" in out.output
    assert any(p["name"] == "patchvq-test" for p in json.loads(run("plugins", "--json").output))


def test_doctor_reports_backends():
    out = run("doctor")
    assert out.exit_code == 0
    assert "attention [cpu] sdpa      ok" in out.output and "attention [cpu] math      ok" in out.output
    assert "xformers" in out.output and "default -> sdpa" in out.output


def test_download_via_stand_in(patchvq_hub):
    out = run("download", "patchvq.tiny")
    assert out.exit_code == 0 and out.output.startswith("model.safetensors\t")


def test_reconstruct_writes_a_grid(patchvq_hub, tmp_path):
    paths = []
    for i in range(2):
        arr = np.random.default_rng(i).integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"in{i}.png")
        paths.append(str(tmp_path / f"in{i}.png"))
    out_path = tmp_path / "grid.png"
    out = run("reconstruct", *paths, "--model", "patchvq.tiny", "--tokens", "1,16,64", "--out", str(out_path))
    assert out.exit_code == 0, out.output
    grid = Image.open(out_path)
    assert grid.width >= 4 * 32 and grid.height >= 2 * 32  # input + 3 token counts, 2 rows
    bad = run("reconstruct", *paths, "--model", "patchvq.tiny", "--tokens", "0,65", "--out", str(out_path))
    assert bad.exit_code == 2 and "token counts start at 1" in bad.output  # a usage error, before loading
    bad = run("reconstruct", *paths, "--model", "patchvq.tiny", "--tokens", "16,65", "--out", str(out_path))
    assert bad.exit_code == 1 and "out of range" in bad.output
