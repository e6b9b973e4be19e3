"""Example zoo plugin: registers the ``patchvq`` family (no torch import here)."""

from zoo import hookimpl

CARD = {
    "name": "patchvq.tiny",
    "kind": "tokenizer",
    "plugin": "patchvq",
    "modality": "image",
    "default": True,
    "description": "Example plugin model: 4x4 patches -> nearest of 64 codes (a toy, not for real use).",
    "hub_repo": "zoo-examples/patchvq-tiny",
    "revision": "main",
    "files": ["model.safetensors"],
    "license": {"code": "Apache-2.0", "weights": "Apache-2.0"},
    "tokens": {"length": "64", "codebook_size": 64},
    "parity": "not applicable (example)",
}


@hookimpl
def register_cards(register):
    register(CARD)


@hookimpl
def register_builders(register):
    from zoo_patchvq.model import PatchVQBuilder

    register(PatchVQBuilder())
