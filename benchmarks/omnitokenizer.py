"""OmniTokenizer: reference vs zoo, encode and decode of a 17-frame 256x256 clip, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/omnitokenizer.py --ref /tmp/ref/OmniTokenizer [--batch 1 2] [--repeat 2]

``--ref`` is a checkout of github.com/FoundationVision/OmniTokenizer; without it only zoo is timed.
The reference's tokenizer parts are built as in the parity fixtures
(``scripts/parity/record_omnitokenizer.py``: encoder, decoder, codebook and the pre/post VQ maps
at the released ``imagenet_k600`` config, no Lightning module, no LPIPS) on one seeded state dict.
Timings are CPU seconds of this process (``time.process_time``, one torch thread), median of
``--repeat`` after a warm-up, reference and zoo interleaved; outputs compared on every run.

* encode: ref ``VQGAN.encode(x, is_image=False)`` vs zoo ``encode(x)`` (ids);
* decode: ref ``VQGAN.decode(ids, is_image=False)`` vs zoo ``decode(tokens)``.

The reference computes its continuous position bias MLP in every spatial attention call and then
does not use it (its SDPA path drops the bias); zoo skips that computation.

Peak memory: each (implementation, stage, batch) runs once more in a child process (peak RSS
during the call above the RSS just before it, MiB; ``_ref_vs_zoo``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from _record import start
from _ref_vs_zoo import NOTES, Codec, main_child, measure, merged, parser

ROOT = Path(__file__).resolve().parents[1]
FRAMES, SIZE = 17, 256


def _recorder():
    spec = importlib.util.spec_from_file_location("record_omnitokenizer", ROOT / "scripts/parity/record_omnitokenizer.py")
    rec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rec)
    return rec


def build(which: str, ref_path: Path | None):
    """(zoo model or None, (reference container, its OmniTokenizer module) or None) on one seeded state dict."""
    import zoo
    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import load_state_dict_strict, no_init
    from zoo_plugins.omnitokenizer.config import OmniTokenizerConfig, from_hparams
    from zoo_plugins.omnitokenizer.model import OmniTokenizer

    cfg = OmniTokenizerConfig(**from_hparams(zoo.get_card("omnitokenizer.imagenet_k600").config))
    ref = omni = None
    with no_init():
        model = OmniTokenizer(cfg).eval()
    own = model.state_dict()
    if ref_path is not None and (ref_path / "OmniTokenizer/omnitokenizer.py").exists():
        rec = _recorder()
        omni = rec._reference(ref_path)
        with no_init():
            ref = rec._container(omni, rec.RELEASED["joint"])
    man = state_manifest(ref if ref is not None else model)
    sd = {k: (own[k] if k.endswith("relative_position_index") else v) for k, v in seeded_state_dict(man).items()}
    sd["codebook.embeddings"] = torch.nn.functional.normalize(torch.randn(cfg.n_codes, cfg.codebook_dim, generator=torch.Generator().manual_seed(1)), dim=1)
    if ref is not None:
        ref.load_state_dict(sd, strict=True)
    load_state_dict_strict(model, sd)
    if which == "zoo":
        ref = None
    if which == "ref":
        model = None
    return model, (None if ref is None else (ref, omni))


def clip(batch: int) -> torch.Tensor:
    return torch.rand(batch, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(batch)) * 2 - 1


CODEC = Codec(
    benchmark="omnitokenizer", model="omnitokenizer.imagenet_k600", unit="clips", build=build, inputs=clip,
    ref_encode=lambda ref, x: ref[1].VQGAN.encode(ref[0], x / 2, False),
    ref_decode=lambda ref, ids: (ref[1].VQGAN.decode(ref[0], ids, False) * 2).clamp(-1, 1),
    ref_tokens=lambda tok: tok.ids.view(tok.ids.shape[0], *tok.meta["grid"]), ref_ids=lambda ids: ids.flatten(1),
    head={"frames": FRAMES, "size": SIZE},
)


def main() -> None:
    args = parser(__doc__.splitlines()[0], batch=[1, 2], repeat=2).parse_args()
    if main_child(CODEC, args):
        return
    torch.set_num_threads(1)
    model, ref = build("both", args.ref)
    run = start("omnitokenizer", title="OmniTokenizer imagenet_k600 encode/decode of 17x256x256 clips", kind="tokenizer",
                threads=1, settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    rows = merged(CODEC, args, measure(CODEC, args, model, ref, __file__), run.started)
    run.write(rows, notes=[*NOTES, "img_per_cpu_s counts clips"])


if __name__ == "__main__":
    main()
