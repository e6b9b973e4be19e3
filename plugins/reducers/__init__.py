"""Token reducers: ToMe, DiffRate, EViT, MCTF (inside a ViT) and DivPrune, MMTok, HiPrune, DyMU, GlobalCom² (after an encoder).

``zoo.load("tome").apply(model, r=13)`` patches a timm ViT in place; ``handle.remove()`` undoes
it. ``zoo.load("divprune").reduce(tokens, keep=0.1)`` prunes ``[B, N, D]`` tokens. Third-party
model families plug in through :mod:`zoo_plugins.reducers.adapters.base`;
``zoo.load("divprune").apply(vlm, keep=0.25)`` reduces the visual tokens of a transformers VLM
(:mod:`zoo_plugins.reducers.vlm`).

This module does not import torch; the hooks import model code lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo.hookspecs import hookimpl

__all__ = ["register_builders", "register_commands", "register_reducer_adapters", "unpatch"]


@hookimpl
def register_builders(register: Callable[[Any], None]) -> None:
    from zoo_plugins.reducers.builder import ReducersBuilder

    register(ReducersBuilder())


@hookimpl
def register_reducer_adapters(register: Callable[[Any], None]) -> None:
    """The transformers VLM adapter (LLaVA, LLaVA-NeXT, Qwen2-VL): transformers is imported only
    when a model is checked, and only if it is a transformers model."""
    from zoo_plugins.reducers.vlm.adapter import TransformersVLMAdapter

    register(TransformersVLMAdapter())


@hookimpl
def register_commands(cli: Any) -> None:
    import click

    @cli.command("reduce-viz")
    @click.argument("image", type=click.Path(exists=True, dir_okay=False))
    @click.option("--model", "method", default="tome", show_default=True, help="reducer: tome, diffrate or evit")
    @click.option("--r", default=16, show_default=True, help="ToMe merges per block")
    @click.option("--vit", default="vit_base_patch16_224", show_default=True, help="timm ViT to run")
    @click.option("--pretrained/--random", default=False, show_default=True, help="timm pretrained weights (needs the hub)")
    @click.option("--out", required=True, type=click.Path(dir_okay=False), help="output PNG")
    def reduce_viz(image: str, method: str, r: int, vit: str, pretrained: bool, out: str) -> None:
        """Draw which patches of IMAGE a token reducer merged."""
        from PIL import Image
        from zoo_plugins.reducers.viz import merge_viz

        merge_viz(Image.open(image), vit=vit, method=method, r=r, pretrained=pretrained).save(out)
        click.echo(f"wrote {out}")


def unpatch(model: Any) -> bool:
    """Remove any reducer patch from ``model`` (also after ``torch.load``); False if none."""
    from zoo_plugins.reducers.adapters.timm_vit import unpatch as _unpatch

    return _unpatch(model)
