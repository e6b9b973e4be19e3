"""Matrix group: config overrides and load() arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

import zoo
from zoo.config import merge_config
from zoo.errors import ConfigError, InputError, InputTypeError
from zoo.nn.attention import AttentionBackendError

from .matrix import Row, check_row, params


@dataclass
class Inner:
    depth: int = 2


@dataclass
class Cfg:
    label: str = "x"
    width: int = 8
    levels: list[int] = field(default_factory=lambda: [8, 5, 5])
    inner: Inner = field(default_factory=Inner)


def merged(**layer):
    return lambda env: merge_config(Cfg, [("checkpoint", layer)])


def load(name="patchvq.tiny", **kwargs):
    return lambda env: zoo.load(name, **kwargs)


def from_release(**overrides):
    return lambda env: zoo.load("patchvq.tiny", weights=env.release, **overrides)


def with_env_secret(call):
    def run(env):
        env.monkeypatch.setenv("ZOO_H13_SECRET", "hunter2")
        return call(env)
    return run


ROWS = [
    Row("unknown-field", from_release(dimm=8), ConfigError, ("unknown config field 'dimm'", "did you mean 'dim'")),
    Row("wrong-type-field", load(pretrained=False, dim="wide"), ConfigError, ("'dim'", "wide")),
    Row("none-for-int", load(pretrained=False, dim=None), ConfigError, ("dim",)),
    Row("list-for-int", load(pretrained=False, dim=[1, 2]), ConfigError, ("dim",)),
    Row("dict-for-int", load(pretrained=False, dim={"a": 1}), ConfigError, ("dim",)),
    Row("override-contradicts-checkpoint", from_release(dim=5), ConfigError, ("dim=5 contradicts the checkpoint's dim=8", "pretrained=false")),
    Row("override-agrees-with-checkpoint", from_release(dim=8), check=lambda m: m.config.dim == 8),
    Row("fsq-levels-contradict-checkpoint", load("flextok.demo_128", fsq_levels=[8, 8, 5, 5, 5, 5]), ConfigError,
        ("fsq_levels=[8, 8, 5, 5, 5, 5]", "checkpoint's fsq_levels=[8, 5]")),
    Row("non-architecture-override-ok", load("flextok.demo_128", default_steps=3), check=lambda m: m.config.default_steps == 3),
    Row("interpolation-into-int-refused", with_env_secret(load(pretrained=False, dim="${oc.env:ZOO_H13_SECRET}")), ConfigError, ("dim",)),
    Row("interpolation-stays-literal", with_env_secret(merged(label="${oc.env:ZOO_H13_SECRET}")),
        check=lambda c: c.label == "${oc.env:ZOO_H13_SECRET}"),
    Row("self-reference-stays-literal", merged(label="${width}"), check=lambda c: c.label == "${width}"),
    Row("escaped-interpolation-literal", merged(label="\\${width}"), check=lambda c: c.label == "\\${width}"),
    Row("unclosed-interpolation-literal", merged(label="${oops"), check=lambda c: c.label == "${oops"),
    Row("interpolation-in-list-literal", merged(levels=["${width}"]), ConfigError, ("levels",)),
    Row("nested-unknown-field", merged(inner={"dpth": 3}), ConfigError, ("dpth",)),
    Row("nested-wrong-type", merged(inner={"depth": "deep"}), ConfigError, ("depth",)),
    Row("pretrained-string", load(pretrained="no"), InputTypeError, ("pretrained must be true or false", "'no'")),
    Row("pretrained-int", load(pretrained=0), InputTypeError, ("pretrained",)),
    Row("dtype-integer", load(pretrained=False, dtype=torch.int64), InputError, ("not a floating dtype", "torch.int64")),
    Row("dtype-bool", load(pretrained=False, dtype=torch.bool), InputError, ("not a floating dtype",)),
    Row("dtype-unknown-name", load(pretrained=False, dtype="float7"), InputError, ("unknown dtype", "float7")),
    Row("device-gpu", load(pretrained=False, device="gpu"), InputError, ("device='gpu'", "cuda")),
    Row("device-garbage", load(pretrained=False, device="cpu:x"), InputError, ("not a device",)),
    Row("device-cuda-without-cuda", load(pretrained=False, device="cuda") if not torch.cuda.is_available() else load(pretrained=False, device="cuda:99"),
        InputError, ("cuda",)),
    Row("attn-backend-unknown", load(pretrained=False, attn_backend="flash9"), AttentionBackendError, ("flash9",)),
    Row("load-revision-with-space", load(revision="main branch"), InputError, ("'main branch' is not a revision",)),
    Row("load-revision-empty", load(revision=""), InputError, ("non-empty string",)),
    Row("load-revision-not-str", load(revision=123), InputError, ("non-empty string",)),
    Row("weights-not-a-path", load(weights=123), InputTypeError, ("weights must be a path", "int")),
    Row("weights-path-missing", lambda env: zoo.load("patchvq.tiny", weights=env.tmp / "absent.safetensors"),
        zoo.CheckpointError, ("no such file",)),
    Row("dtype-bf16-ok", load(pretrained=False, dtype="bf16"), check=lambda m: m.codebook.dtype == torch.bfloat16),
]

assert "ZOO_H13_SECRET" not in os.environ


@params(ROWS)
def test_config(row, env):
    check_row(row, env)
