"""LARP: reference vs zoo, encode and decode of 16x128x128 clips, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/larp.py --ref /tmp/ref/larp [--batch 1 4] [--repeat 1]

``--ref`` is a checkout of github.com/hywang66/LARP (needs ``einops``, ``easydict`` and timm
importable, see ``scripts/parity/record_larp.py``); without it only zoo is timed. Both run the
published architecture (``larp.l_long``: 12+12 blocks of width 768, 1024 tokens) on one seeded
state dict (the reference's LayerNorms set to the eps of the timm LARP was trained with, as in the
parity fixtures). Timings are CPU seconds of this process (``time.process_time``, one torch thread),
median of ``--repeat`` after one warm-up, reference and zoo interleaved; outputs are compared on
every run (ids equal, max |diff| of the decoded clips).

* encode: ref ``LARPTokenizer.encode(x)['bottleneck_rep']`` (deterministic VQ) vs zoo ``encode(x)``;
* decode: ref ``decode_from_bottleneck(ids)`` vs zoo ``decode(tokens)`` (clamped, zoo in [-1, 1]).

Peak memory: each (implementation, stage, batch) runs once more in a child process; the row
reports the child's peak RSS during the call above its RSS just before it, MiB (``_ref_vs_zoo``).
A long run can be split: ``--batch 1`` then ``--batch 2 --merge`` (the record keeps both).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import torch
from _record import start
from _ref_vs_zoo import NOTES, Codec, main_child, measure, merged, parser

def build(which: str, ref_path: Path | None):
    """(zoo model or None, reference or None), both from one seeded state dict of the reference layout."""
    import zoo
    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import load_state_dict_strict, no_init
    from zoo_plugins.larp.builder import LARPBuilder
    from zoo_plugins.larp.config import LARPConfig, to_reference_config
    from zoo_plugins.larp.model import LARP

    cfg = LARPConfig(**zoo.get_card("larp.l_long").config)
    ref = None
    if ref_path is not None and (ref_path / "models/larp_tokenizer.py").exists():
        for name in ("lpips", "utils"):  # training-only imports
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.path.insert(0, str(ref_path))
        from easydict import EasyDict
        from models.larp_tokenizer import LARPTokenizer

        with no_init():
            ref = LARPTokenizer(**EasyDict(to_reference_config(cfg))).eval()
        for stack in (ref.encoder, ref.decoder):
            for block in stack.blocks:
                block.norm1.eps = block.norm2.eps = 1e-5
        ref.set_vq_eval_deterministic(True)
        sd = seeded_state_dict(state_manifest(ref))
        ref.load_state_dict(sd, strict=True)
    model = None
    if which in ("zoo", "both"):
        with no_init():
            model = LARP(cfg).eval()
        if ref is not None:
            load_state_dict_strict(model, LARPBuilder().convert(ref.state_dict(), cfg))
        else:
            load_state_dict_strict(model, seeded_state_dict(state_manifest(model)))
        if which == "zoo":
            ref = None
    return model, ref


def clip(batch: int) -> torch.Tensor:
    return torch.rand(batch, 3, 16, 128, 128, generator=torch.Generator().manual_seed(batch)) * 2 - 1


CODEC = Codec(
    benchmark="larp", model="larp.l_long", unit="clips", build=build, inputs=clip,
    ref_encode=lambda ref, x: ref.encode((x + 1) / 2)["bottleneck_rep"],
    ref_decode=lambda ref, ids: ref.decode_from_bottleneck(ids).clamp(0, 1) * 2 - 1,
    head={"frames": 16, "size": 128},
)


def main() -> None:
    args = parser(__doc__.splitlines()[0], batch=[1, 4], repeat=1).parse_args()
    if main_child(CODEC, args):
        return
    torch.set_num_threads(1)
    model, ref = build("both", args.ref)
    run = start("larp", title="LARP-L-Long encode/decode of 16x128x128 clips", kind="tokenizer", threads=1,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    rows = merged(CODEC, args, measure(CODEC, args, model, ref, __file__), run.started)
    run.write(rows, notes=[*NOTES, "img_per_cpu_s counts clips"])


if __name__ == "__main__":
    main()
