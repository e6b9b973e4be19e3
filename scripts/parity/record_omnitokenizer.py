"""Record OmniTokenizer parity fixtures by running the reference implementation.

    PYTHONPATH=/tmp/pylib python scripts/parity/record_omnitokenizer.py --ref /tmp/ref/OmniTokenizer --commit SHA

``--ref`` is a checkout of github.com/FoundationVision/OmniTokenizer. The reference's tokenizer
parts are imported from ``OmniTokenizer/omnitokenizer.py`` (``OmniTokenizer_Encoder``,
``OmniTokenizer_Decoder``, ``VQGAN.encode`` / ``VQGAN.decode``) and ``modules/codebook.py``;
what they import for training only is replaced by stand-ins (pytorch_lightning's
``LightningModule`` by ``nn.Module``, the LPIPS network, the discriminators and the external
``VectorQuantize`` by empty classes, ``beartype`` / ``fairscale`` by no-ops, ``utils.shift_dim`` by
``torch.movedim``). The ``VQGAN`` Lightning module itself is not built (its constructor loads
LPIPS's VGG weights); an ``nn.Module`` holding the same submodules under the same names stands in
for it. Writes ``tests/fixtures/omnitokenizer/``:

* ``manifests.json.gz`` -- key/shape manifests of those submodules at the released configs
  (``scripts/recons/*.sh``: image-only releases with temporal patch 2 and relative positions,
  image+video releases with temporal patch 4 and RoPE, the two VAEs);
* ``cases.json`` + ``case_vq.safetensors`` / ``case_vae.safetensors`` -- small configs of the same
  classes on per-key seeded weights (the VQ codebook calibrated from encoder outputs): a video and
  an image in [-0.5, 0.5], ``pre_vq_conv`` outputs, ids, top-2 distance gaps, decodes of the ids
  (VQ, ``VQGAN.decode``), and decodes of the posterior mean (VAE: ``VQGAN.forward``'s
  ``decoder(post_vq_conv(z))`` with the mean for the sample; ``VQGAN.decode`` reads a VAE video
  as ``b t h w c`` and is not what the release's evaluation calls).

Without ``--ref`` (or if it is missing) the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch
from torch import nn

SEED = 5
BASE = {"resolution": 256, "image_channels": 3, "patch_embed": "linear", "patch_size": 8, "spatial_depth": 4, "temporal_depth": 4,
        "enc_block": "ttww", "dec_block": "tttt", "twod_window_size": 8, "causal_in_temporal_transformer": True,
        "causal_in_peg": True, "embedding_dim": 512, "dim_head": 64, "heads": 8, "ff_mult": 4.0, "n_codes": 8192,
        "codebook_dim": 8, "l2_code": True, "use_vae": False, "sequence_length": 17}
RELEASED = {"image": {**BASE, "temporal_patch_size": 2, "spatial_pos": "rel"},
            "joint": {**BASE, "temporal_patch_size": 4, "spatial_pos": "rope"},
            "joint_vae": {**BASE, "temporal_patch_size": 4, "spatial_pos": "rope", "use_vae": True}}
SMALL = {**BASE, "resolution": 32, "patch_size": 8, "temporal_patch_size": 2, "spatial_depth": 2, "temporal_depth": 2,
         "enc_block": "tw", "dec_block": "tt", "twod_window_size": 2, "embedding_dim": 32, "dim_head": 8, "heads": 4,
         "n_codes": 64, "codebook_dim": 8, "spatial_pos": "rope", "sequence_length": 5}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _reference(ref: Path):
    root = ref / "OmniTokenizer"

    def stub(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    class Dummy(nn.Module):
        def __init__(self, *a, **k):
            super().__init__()

    stub("beartype", beartype=lambda f: f)
    fsnn = stub("fairscale.nn", checkpoint_wrapper=lambda m, *a, **k: m)
    stub("fairscale", nn=fsnn)
    stub("pytorch_lightning", LightningModule=nn.Module)
    from zoo.compat.torchvision import ensure_torchvision  # noqa: PLC0415

    ensure_torchvision()
    pkg = stub("OmniTokenizer")
    pkg.__path__ = [str(root)]
    stub("OmniTokenizer.utils", shift_dim=lambda x, s=-1, d=-1, make_contiguous=True: x.movedim(s, d).contiguous(),
         adopt_weight=lambda *a, **k: 1.0)
    qpkg = stub("OmniTokenizer.quantizer")
    qpkg.__path__ = []
    stub("OmniTokenizer.quantizer.vector_quantize_pytorch", VectorQuantize=Dummy)
    mods = stub("OmniTokenizer.modules")
    mods.__path__ = [str(root / "modules")]
    codebook = _load("OmniTokenizer.modules.codebook", root / "modules/codebook.py")
    mods.LPIPS, mods.Codebook = Dummy, codebook.Codebook
    stub("OmniTokenizer.base", Normalize=Dummy, NLayerDiscriminator=Dummy, NLayerDiscriminator3D=Dummy)
    return _load("OmniTokenizer.omnitokenizer", root / "omnitokenizer.py")


def _container(omni, cfg: dict) -> nn.Module:
    """The VQGAN's tokenizer submodules under their names (see the module doc)."""
    from einops.layers.torch import Rearrange  # noqa: PLC0415

    m = nn.Module()
    kw = dict(image_size=cfg["resolution"], image_channel=cfg["image_channels"], norm_type="batch", window_size=cfg["twod_window_size"],
              spatial_pos=cfg["spatial_pos"], patch_embed=cfg["patch_embed"], patch_size=cfg["patch_size"],
              temporal_patch_size=cfg["temporal_patch_size"], spatial_depth=cfg["spatial_depth"], temporal_depth=cfg["temporal_depth"],
              causal_in_temporal_transformer=cfg["causal_in_temporal_transformer"], causal_in_peg=cfg["causal_in_peg"],
              dim=cfg["embedding_dim"], dim_head=cfg["dim_head"], heads=cfg["heads"], ff_mult=cfg["ff_mult"],
              sequence_length=cfg["sequence_length"])
    m.encoder = omni.OmniTokenizer_Encoder(block=cfg["enc_block"], **kw)
    m.decoder = omni.OmniTokenizer_Decoder(block=cfg["dec_block"], **{**kw, "spatial_depth": len(cfg["dec_block"])})
    cd = cfg["codebook_dim"]
    m.codebook = sys.modules["OmniTokenizer.modules.codebook"].Codebook(cfg["n_codes"], cd, no_random_restart=True)
    m.pre_vq_conv = nn.Sequential(Rearrange("b c t h w -> b t h w c"), nn.Linear(cfg["embedding_dim"], cd * (2 if cfg["use_vae"] else 1)),
                                  Rearrange("b t h w c -> b c t h w"))
    m.post_vq_conv = nn.Sequential(Rearrange("b c t h w -> b t h w c"), nn.Linear(cd, cfg["embedding_dim"]), Rearrange("b t h w c -> b c t h w"))
    m.use_vae, m.l2_code, m.use_external_codebook = cfg["use_vae"], cfg["l2_code"], False
    m.resolution, m.patch_size = cfg["resolution"], cfg["patch_size"]
    return m.eval()


def _media(cfg: dict) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(SEED)
    s, t = cfg["resolution"], 1 + 2 * cfg["temporal_patch_size"]
    base = torch.rand(1, 3, 3, 4, 4, generator=g)
    video = torch.nn.functional.interpolate(base, size=(t, s, s), mode="trilinear", align_corners=False)
    video = ((video + 0.05 * torch.randn(video.shape, generator=g)).clamp(0, 1) * 255).round() / 255 - 0.5
    return video, video[:, :, 0].clone()


def record(ref: Path, out: Path, commit: str) -> None:
    from safetensors.torch import save_file  # noqa: PLC0415
    from zoo.testing.weights import seeded_state_dict, state_manifest  # noqa: PLC0415

    omni = _reference(ref)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    manifests = {}
    for name, cfg in RELEASED.items():
        with torch.device("meta"):
            m = _container(omni, cfg)
        manifests[name] = {k: [list(s), d] for k, (s, d) in state_manifest(m).items()}
        print(f"manifest {name}: {len(manifests[name])} keys")
    (out / "manifests.json.gz").write_bytes(gzip.compress(json.dumps({"configs": RELEASED, "manifests": manifests},
                                                                     sort_keys=True).encode(), mtime=0))
    cases = {"commit": commit, "seed": SEED, "cases": {}}
    for kind in ("vq", "vae"):
        cfg = {**SMALL, "use_vae": kind == "vae"}
        m = _container(omni, cfg)
        man = state_manifest(m)
        own = m.state_dict()
        sd = {k: (own[k] if k.endswith("relative_position_index") else v) for k, v in seeded_state_dict(man, seed=SEED).items()}
        m.load_state_dict(sd, strict=True)
        video, image = _media(cfg)
        t = {"video": video, "image": image}
        with torch.no_grad():
            h = m.pre_vq_conv(m.encoder(video, False))
            hi = m.pre_vq_conv(m.encoder(image, True))
            if kind == "vq":  # calibrated codebook: normalised encoder outputs + a little noise
                pool = torch.nn.functional.normalize(torch.cat([h.flatten(2), hi.flatten(2)], 2), dim=1).transpose(1, 2).reshape(-1, cfg["codebook_dim"])
                g = torch.Generator().manual_seed(SEED)
                book = pool[torch.randperm(pool.shape[0], generator=g)[: cfg["n_codes"]]]
                book = book + 0.02 * torch.randn(book.shape, generator=g)
                sd["codebook.embeddings"] = book
                m.load_state_dict(sd, strict=True)
                t["codebook"] = book
                for name, x, is_image in (("video", video, False), ("image", image, True)):
                    ids = omni.VQGAN.encode(m, x, is_image)
                    z = torch.nn.functional.normalize(m.pre_vq_conv(m.encoder(x, is_image)), dim=1).movedim(1, -1).reshape(-1, cfg["codebook_dim"])
                    d = torch.cdist(z, book).pow(2).topk(2, largest=False).values
                    t[f"{name}_ids"], t[f"{name}_gap"] = ids, (d[:, 1] - d[:, 0]).view(ids.shape)
                    t[f"{name}_decoded"] = omni.VQGAN.decode(m, ids, is_image)
                t["video_h"], t["image_h"] = h, hi
            else:
                t["video_h"], t["image_h"] = h, hi
                for name, hh, is_image in (("video", h, False), ("image", hi, True)):
                    mean = hh.chunk(2, dim=1)[0]  # VQGAN.forward's path with the posterior mean instead of a sample
                    t[f"{name}_decoded"] = m.decoder(m.post_vq_conv(mean), is_image)
        save_file({k: v.contiguous() for k, v in t.items()}, str(out / f"case_{kind}.safetensors"))
        (out / f"case_{kind}.safetensors").chmod(0o644)
        cases["cases"][kind] = {"config": cfg, "manifest": {k: [list(s), d] for k, (s, d) in man.items()}}
        if kind == "vq":
            print(f"case vq: {len(set(t['video_ids'].flatten().tolist()))} distinct video ids of {t['video_ids'].numel()}")
    (out / "cases.json").write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", type=Path, default=None, help="checkout of github.com/FoundationVision/OmniTokenizer")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/omnitokenizer")
    args = parser.parse_args()
    if args.ref is None or not (args.ref / "OmniTokenizer/omnitokenizer.py").is_file():
        print("no OmniTokenizer checkout given (--ref); nothing recorded")
        return
    record(args.ref, args.out, args.commit)


if __name__ == "__main__":
    main()
