"""Record Point-BERT dVAE parity fixtures by running the reference implementation.

    PYTHONPATH=/tmp/pylib python scripts/parity/record_pointbert.py --ref /tmp/ref/pointbert --commit SHA

``--ref`` is a checkout of github.com/lulutang0608/Point-BERT (not part of zoo; needs ``easydict``
and matplotlib). **The reference is patched**: its CUDA ops cannot run here, so
``pointnet2_ops.pointnet2_utils.furthest_point_sample`` / ``gather_operation`` and
``knn_cuda.KNN`` are replaced by zoo's pure-torch :func:`zoo.media.points.farthest_point_sample`,
:func:`zoo.media.points.gather_points` and :func:`zoo.media.points.knn` (tested separately against
a literal transcription of the CUDA kernels), and the chamfer-distance extension (a training
loss) by an empty module. Everything else is the reference's code (``models/dvae.py``). Writes to
``tests/fixtures/pointbert``:

* ``manifests.json.gz`` -- the key/shape manifest of ``DiscreteVAE`` at the released config
  (``cfgs/ShapeNet55_models/dvae.yaml``);
* ``case.safetensors`` + ``cases.json`` -- a small config of the same classes on per-key seeded
  weights (``zoo_plugins.pointbert.testing.release_state_dict``): input clouds, FPS centres,
  the dVAE logits, their argmax ids and top-2 gap, and the coarse / fine reconstruction from
  those ids (codebook rows, hard one-hot, through ``dgcnn_2`` and the decoder, in the cloud's frame).

Without ``--ref`` (or if it is missing) the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import types
from pathlib import Path

import torch
import yaml

SEED, BATCH, POINTS = 3, 3, 256
CASE = {"group_size": 16, "num_group": 16, "encoder_dims": 64, "num_tokens": 128, "tokens_dims": 32, "decoder_dims": 64}


def _patched_reference(ref: Path):
    """Import ``models.dvae`` with the CUDA ops replaced by zoo's pure-torch ones (see the module doc)."""
    from zoo.media.points import farthest_point_sample, gather_points, knn

    class KNN(torch.nn.Module):  # knn_cuda.KNN: (ref, query) -> dist, idx [B, k, Nq] (transpose_mode=False)
        def __init__(self, k, transpose_mode=False):
            super().__init__()
            self.k, self.transpose_mode = k, transpose_mode

        def forward(self, ref_pts, query):
            if not self.transpose_mode:
                ref_pts, query = ref_pts.transpose(1, 2), query.transpose(1, 2)
            d, idx = knn(query.contiguous(), ref_pts.contiguous(), self.k)
            return (d, idx) if self.transpose_mode else (d.transpose(1, 2).contiguous(), idx.transpose(1, 2).contiguous())

    utils2 = types.ModuleType("pointnet2_ops.pointnet2_utils")
    utils2.furthest_point_sample = lambda xyz, m: farthest_point_sample(xyz, m).int()
    utils2.gather_operation = lambda feats, idx: gather_points(feats.transpose(1, 2), idx.long()).transpose(1, 2)
    pkg = types.ModuleType("pointnet2_ops")
    pkg.pointnet2_utils = utils2
    knn_mod = types.ModuleType("knn_cuda")
    knn_mod.KNN = KNN
    chamfer = types.ModuleType("extensions.chamfer_dist")
    chamfer.ChamferDistanceL1 = chamfer.ChamferDistanceL2 = torch.nn.Module
    ext = types.ModuleType("extensions")
    ext.__path__ = []
    models_pkg = types.ModuleType("models")  # the package without its __init__ (which imports Point_BERT / timm)
    models_pkg.__path__ = [str(ref / "models")]
    sys.modules.update({"pointnet2_ops": pkg, "pointnet2_ops.pointnet2_utils": utils2, "knn_cuda": knn_mod,
                        "extensions": ext, "extensions.chamfer_dist": chamfer, "models": models_pkg})
    sys.path.insert(0, str(ref))
    from easydict import EasyDict  # noqa: PLC0415
    from models.dvae import DiscreteVAE  # noqa: PLC0415

    return DiscreteVAE, EasyDict


def record(ref: Path, out: Path, commit: str) -> None:
    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo.testing.weights import state_manifest  # noqa: PLC0415
    from zoo_plugins.pointbert.testing import release_state_dict, test_clouds  # noqa: PLC0415

    DiscreteVAE, EasyDict = _patched_reference(ref)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    released = yaml.safe_load((ref / "cfgs/ShapeNet55_models/dvae.yaml").read_text())["model"]
    with torch.device("meta"):
        full = DiscreteVAE(EasyDict(released))
    manifest = {k: [list(s), d] for k, (s, d) in state_manifest(full).items()}
    print(f"manifest point_bert.dvae_shapenet: {len(manifest)} keys, {sum(torch.Size(s).numel() for s, _ in manifest.values()) / 1e6:.2f}M values")
    (out / "manifests.json.gz").write_bytes(gzip.compress(json.dumps({"point_bert.dvae_shapenet": manifest, "config": released},
                                                                     sort_keys=True).encode(), mtime=0))

    model = DiscreteVAE(EasyDict({"NAME": "DiscreteVAE", **CASE})).eval()
    case_manifest = state_manifest(model)
    model.load_state_dict(release_state_dict(case_manifest, SEED), strict=True)
    x = test_clouds(BATCH, POINTS, seed=SEED)
    with torch.no_grad():
        neighborhood, center = model.group_divider(x)
        logits = model.dgcnn_1(model.encoder(neighborhood), center)
        ids = logits.argmax(-1)
        top2 = logits.topk(2, dim=-1).values
        onehot = torch.nn.functional.one_hot(ids, CASE["num_tokens"]).float()
        sampled = torch.einsum("b g n, n c -> b g c", onehot, model.codebook)
        coarse, fine = model.decoder(model.dgcnn_2(sampled, center))
        whole_fine = (fine + center.unsqueeze(2)).reshape(BATCH, -1, 3)
        whole_coarse = (coarse + center.unsqueeze(2)).reshape(BATCH, -1, 3)
    tensors = {"clouds": x.contiguous(), "centers": center.contiguous(), "logits": logits.contiguous(), "ids": ids.contiguous(),
               "gap": (top2[..., 0] - top2[..., 1]).contiguous(), "coarse": whole_coarse.contiguous(), "fine": whole_fine.contiguous()}
    save_file(tensors, str(out / "case.safetensors"))
    (out / "case.safetensors").chmod(0o644)
    cases = {"commit": commit, "seed": SEED, "config": {**CASE, "num_points": POINTS}, "patched": "CUDA ops -> zoo.media.points",
             "manifest": {k: [list(s), d] for k, (s, d) in case_manifest.items()}}
    (out / "cases.json").write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
    print(f"case: {len(set(ids.flatten().tolist()))} distinct ids of {ids.numel()}; min logit gap {float(tensors['gap'].min()):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", type=Path, default=None, help="checkout of github.com/lulutang0608/Point-BERT")
    parser.add_argument("--commit", default="unknown", help="the reference commit (recorded in cases.json)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/pointbert")
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "models/dvae.py").is_file():
        print("no Point-BERT checkout given (--ref); nothing recorded")
        return
    record(args.ref, args.out, args.commit)


if __name__ == "__main__":
    main()
