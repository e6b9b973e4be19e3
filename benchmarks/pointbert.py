"""Point-BERT dVAE: reference vs zoo, encode and decode of 1024-point clouds, same weights, one run.

    PYTHONPATH=/tmp/pylib python benchmarks/pointbert.py --ref /tmp/ref/pointbert [--batch 1 16] [--repeat 5]

``--ref`` is a checkout of github.com/lulutang0608/Point-BERT; without it only zoo is timed. The
reference's CUDA ops cannot run here: as in the parity fixtures it runs with zoo's pure-torch
FPS / kNN in their place (``scripts/parity/record_pointbert.py``), so the FPS and kNN cost is the
same on both sides and the comparison measures the rest of the model. Both run the released
config (``cfgs/ShapeNet55_models/dvae.yaml``) on one seeded state dict. Timings are CPU seconds of
this process (``time.process_time``, one torch thread), median of ``--repeat`` after a warm-up,
reference and zoo interleaved; outputs are compared on every run.

* encode: ref ``group_divider`` + ``encoder`` + ``dgcnn_1`` + argmax vs zoo ``encode(x)``;
* decode: ref codebook rows (hard one-hot) + ``dgcnn_2`` + ``decoder`` (+ centres) vs zoo ``decode(tokens)``.

Peak memory: each (implementation, stage, batch) runs once more in a child process (peak RSS
during the call above the RSS just before it, MiB; ``_ref_vs_zoo``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import yaml
from _record import start
from _ref_vs_zoo import NOTES, Codec, main_child, measure, merged, parser

ROOT = Path(__file__).resolve().parents[1]


def _patched_reference(ref_path: Path):
    spec = importlib.util.spec_from_file_location("record_pointbert", ROOT / "scripts/parity/record_pointbert.py")
    rec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rec)
    return rec._patched_reference(ref_path)


def build(which: str, ref_path: Path | None):
    import zoo
    from zoo.testing.weights import state_manifest
    from zoo.weights import load_state_dict_strict, no_init
    from zoo_plugins.pointbert.config import PointBERTConfig
    from zoo_plugins.pointbert.model import PointBERTdVAE
    from zoo_plugins.pointbert.testing import release_state_dict

    cfg = PointBERTConfig(**zoo.get_card("point_bert.dvae_shapenet").config)
    ref = None
    if ref_path is not None and (ref_path / "models/dvae.py").exists():
        DiscreteVAE, EasyDict = _patched_reference(ref_path)
        released = yaml.safe_load((ref_path / "cfgs/ShapeNet55_models/dvae.yaml").read_text())["model"]
        with no_init():
            ref = DiscreteVAE(EasyDict(released)).eval()
        ref.load_state_dict(release_state_dict(state_manifest(ref)), strict=True)
    model = None
    if which in ("zoo", "both"):
        with no_init():
            model = PointBERTdVAE(cfg).eval()
        load_state_dict_strict(model, ref.state_dict() if ref is not None else release_state_dict(state_manifest(model)))
        if which == "zoo":
            ref = None
    return model, ref


def ref_encode(ref, x):
    neighborhood, center = ref.group_divider(x)
    return ref.dgcnn_1(ref.encoder(neighborhood), center).argmax(-1), center


def ref_decode(ref, ids, center):
    onehot = torch.nn.functional.one_hot(ids, ref.num_tokens).float()
    coarse, fine = ref.decoder(ref.dgcnn_2(torch.einsum("b g n, n c -> b g c", onehot, ref.codebook), center))
    return (fine + center.unsqueeze(2)).reshape(ids.shape[0], -1, 3)


def clouds(batch: int) -> torch.Tensor:
    from zoo_plugins.pointbert.testing import test_clouds

    return test_clouds(batch, 1024, seed=batch)


CODEC = Codec(
    benchmark="pointbert", model="point_bert.dvae_shapenet", unit="clouds", build=build, inputs=clouds,
    ref_encode=ref_encode, ref_decode=lambda ref, tokens: ref_decode(ref, *tokens),
    ref_tokens=lambda tok: (tok.ids, tok.meta["centers"]), ref_ids=lambda tokens: tokens[0],
    head={"points": 1024},
)


def main() -> None:
    args = parser(__doc__.splitlines()[0], batch=[1, 16], repeat=5).parse_args()
    if main_child(CODEC, args):
        return
    torch.set_num_threads(1)
    model, ref = build("both", args.ref)
    run = start("pointbert", title="Point-BERT dVAE encode/decode of 1024-point clouds", kind="tokenizer", threads=1,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    rows = merged(CODEC, args, measure(CODEC, args, model, ref, __file__), run.started)
    run.write(rows, notes=[*NOTES, "img_per_cpu_s counts clouds",
                           "the reference runs with zoo's FPS / kNN in place of its CUDA ops (both sides pay the same for them)"])


if __name__ == "__main__":
    main()
