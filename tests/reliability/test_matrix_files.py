"""Matrix group: files (weights, metadata, images, audio, yaml) that are truncated, lie, hold the
wrong dtypes/keys/shapes, or carry code (pickles, tags, import paths, interpolations)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import CheckpointError, ConfigError, MediaError
from zoo.media.audio import AudioError, load_audio
from zoo.media.image import load_images
from zoo.weights import load_weights_file

from . import files
from .matrix import Row, check_row, params

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


def load_release(make):
    return lambda env: zoo.load("patchvq.tiny", weights=make(env.tmp / "r"))


def with_state(edit):
    def make(folder):
        state = files.patchvq_state()
        edit(state)
        return files.release(folder, state)
    return make


def read(make, reader=load_weights_file):
    return lambda env: reader(make(env.tmp))


def no_marker_after(call_make):
    """Run a hostile-file row and prove its payload did not run (no marker file)."""
    def call(env):
        marker = env.tmp / "MARKER"
        try:
            return call_make(env, marker)
        finally:
            assert not marker.exists(), "a payload from a file was executed"
    return call


def grey_level(path_of):
    return lambda env: float(load_images([path_of(env.tmp)]).mean())


ROWS = [
    Row("safetensors-truncated", load_release(files.truncated), CheckpointError, ("not a readable safetensors",)),
    Row("safetensors-truncated-header", load_release(lambda f: files.truncated(f, keep=0.002)), CheckpointError, ("not a readable safetensors",)),
    Row("safetensors-lying-length", load_release(files.lying_header), CheckpointError, ("not a readable safetensors",)),
    Row("safetensors-garbage-header", load_release(files.garbage_header), CheckpointError, ("not a readable safetensors",)),
    Row("safetensors-offsets-past-end", load_release(files.offsets_out_of_range), CheckpointError, ("not a readable safetensors",)),
    Row("safetensors-empty", load_release(files.empty), CheckpointError, ("not a readable safetensors",)),
    Row("int-tensor-for-float-param", load_release(with_state(lambda s: s.update(codebook=s["codebook"].round().to(torch.int64)))),
        CheckpointError, ("dtype mismatches", "codebook", "torch.int64", "torch.float32")),
    Row("bool-tensor-for-float-param", load_release(with_state(lambda s: s.update(codebook=s["codebook"] > 0))),
        CheckpointError, ("dtype mismatches", "codebook", "torch.bool")),
    Row("fp16-weights-cast-ok", load_release(with_state(lambda s: s.update(codebook=s["codebook"].half()))),
        check=lambda m: m.codebook.dtype == torch.float32),
    Row("missing-key", load_release(with_state(lambda s: s.pop("proj_in.bias"))), CheckpointError, ("missing keys", "proj_in.bias")),
    Row("unexpected-key", load_release(with_state(lambda s: s.update(extra=torch.zeros(1)))), CheckpointError, ("unexpected keys", "extra")),
    Row("wrong-shape", load_release(with_state(lambda s: s.update(codebook=torch.zeros(64, 7)))), CheckpointError,
        ("shape mismatches", "codebook", "(64, 7)", "(64, 8)")),
    Row("metadata-not-json", load_release(lambda f: files.release(f, raw_config="{dim: 8")), ConfigError, ("not json",)),
    Row("metadata-json-list", load_release(lambda f: files.release(f, config=[1, 2])), ConfigError, ("json object",)),
    Row("metadata-unknown-field", load_release(lambda f: files.release(f, config={"dim": 8, "depht": 2})), ConfigError, ("depht",)),
    Row("metadata-target-import-path", no_marker_after(lambda env, m: zoo.load("patchvq.tiny", weights=files.release(
        env.tmp / "t", config={"dim": 8, "_target_": "os.system"}))), ConfigError, ("_target_",)),
    Row("metadata-env-interpolation", lambda env: (env.monkeypatch.setenv("ZOO_H13_SECRET", "hunter2"), zoo.load(
        "patchvq.tiny", weights=files.release(env.tmp / "i", config={"dim": "${oc.env:ZOO_H13_SECRET}"})))[1],
        ConfigError, ("dim",)),
    Row("pickle-reduce-payload", no_marker_after(lambda env, m: load_weights_file(files.evil_pickle(env.tmp, m))),
        CheckpointError, ("weights-only", "never unpickles")),
    Row("pickle-random-bytes", read(files.random_bytes), CheckpointError, ("weights-only pickle",)),
    Row("torch-zip-truncated", read(files.truncated_torch_zip), CheckpointError, ("could not be read",)),
    Row("weights-missing-file", lambda env: load_weights_file(env.tmp / "nope.bin"), CheckpointError, ("not found",)),
    Row("weights-dir-lacks-files", lambda env: zoo.load("patchvq.tiny", weights=files.text_file(env.tmp / "d", "notes.txt").parent),
        CheckpointError, ("lacks", "model.safetensors")),
    Row("image-is-text", lambda env: load_images([files.text_file(env.tmp, "photo.png")]), MediaError, ("photo.png", "not an image file")),
    Row("image-truncated", lambda env: load_images([files.truncated_png(env.tmp)]), MediaError, ("cut.png", "truncated")),
    Row("image-empty-file", lambda env: load_images([files.empty(env.tmp, "blank.png")]), MediaError, ("blank.png",)),
    Row("image-16bit-white-stays-white", grey_level(lambda t: files.png16(t, 65535)), check=lambda v: v == 1.0),
    Row("image-16bit-mid-grey-not-clipped", grey_level(lambda t: files.png16(t, 32768)), check=lambda v: abs(v) < 0.01),
    Row("image-16bit-dark-not-clipped", grey_level(lambda t: files.png16(t, 4096)), check=lambda v: -1.0 < v < -0.85),
    Row("image-palette-ok", lambda env: load_images([files.rgb_png(env.tmp, mode="P")]),
        check=lambda x: x.shape == (1, 3, 32, 32) and bool(torch.isfinite(x).all())),
    Row("audio-is-text", lambda env: load_audio(files.text_file(env.tmp, "voice.wav")), AudioError, ("voice.wav", "could not read")),
    Row("audio-empty-recording", lambda env: load_audio(files.wav(env.tmp, np.zeros((0,), np.float32))), AudioError, ("no samples",)),
    Row("audio-nan-samples", lambda env: load_audio(files.wav(env.tmp, np.array([0.0, np.nan, 0.1], np.float32))), AudioError, ("nan",)),
    Row("yaml-python-tag", no_marker_after(lambda env, m: _wavtokenizer_yaml(env.tmp, f"!!python/object/apply:os.system ['touch {m}']")),
        ConfigError, ("!!python", "refused")),
    Row("yaml-not-wavtokenizer", lambda env: _wavtokenizer_yaml(env.tmp, "just: [a, list]"), ConfigError, ("not a wavtokenizer training yaml",)),
    Row("flextok-header-not-json", lambda env: _flextok_header(files.garbage_header(env.tmp)), ConfigError, ("not readable json",)),
    Row("flextok-header-length-absurd", lambda env: _flextok_header(_absurd_length(env.tmp)), ConfigError, ("not a safetensors file",)),
    Row("flextok-header-lying-length", lambda env: _flextok_header(files.lying_header(env.tmp)), ConfigError, ("not readable json",)),
]


def _wavtokenizer_yaml(folder, text):
    from zoo_plugins.wavtokenizer.config import config_from_yaml

    path = folder / "config.yaml"
    path.write_text(text)
    return config_from_yaml(path)


def _absurd_length(folder):
    path = folder / "huge.safetensors"
    path.write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    return path


def _flextok_header(path):
    from zoo_plugins.flextok.metadata import read_header_metadata

    return read_header_metadata(path)


@params(ROWS)
def test_files(row, env):
    check_row(row, env)
