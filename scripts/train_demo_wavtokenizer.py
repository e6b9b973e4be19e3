#!/usr/bin/env python3
"""Train zoo's embedded audio demo codec ``wavtokenizer.demo_tiny`` (CPU or GPU).

Demo weights, not for research: a small WavTokenizer -- the real architecture of
zoo_plugins.wavtokenizer (SEANet encoder + 2-layer LSTM -> one VQ codebook -> Vocos backbone
(pos-net with attention, ConvNeXt blocks with AdaLayerNorm) -> ISTFT head) -- at 16 kHz,
50 tokens/s, 1024 codes (10 bits/token: 500 bits/s), trained on speech synthesised by
espeak-ng (Debian package ``espeak-ng``; the program is GPL-3.0-or-later, the audio it
produces is ours to use; the sentences below were written for this script and are CC0) in
several languages and voice variants, with random speed, pitch and gain.

No discriminators (no GAN): the loss is a log-mel L1 plus a multi-resolution log-magnitude /
spectral-convergence STFT loss plus the VQ commitment loss; the codebook is learned by EMA
k-means updates with dead codes restarted from the batch. So expect intelligible but buzzy,
phase-smeared speech: the point is the interface and the shape of the token stream.

Held-out split (declared here, never trained on or used for model selection): the sentences
in HELDOUT, spoken with the voice variants named there. They are ``examples/audio/*.wav``.

Writes (what ``zoo.load("wavtokenizer.demo_tiny")`` reads: zoo's key layout, safetensors, float16 on disk)::

    OUT/tiny/model.safetensors
    OUT/train_stats.json            data, settings, minutes, held-out metrics vs mu-law
    EXAMPLES/*.wav                  the held-out clips (16 kHz mono 16-bit)

Command used for the committed weights (one thread of a shared 2-core CPU)::

    apt-get install espeak-ng
    python scripts/train_demo_wavtokenizer.py --out plugins/wavtokenizer/demo --examples examples/audio --device cpu

``--minutes 0.5 --out /tmp/wt`` runs the whole pipeline in about a minute (smoke test).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000
CONFIG = {"sample_rate": SAMPLE_RATE, "ratios": [8, 5, 4, 2], "n_filters": 16, "dimension": 128, "lstm_layers": 2,
          "codebook_size": 1024, "backbone_dim": 192, "intermediate_dim": 576, "num_layers": 4,
          "adanorm_num_embeddings": 4, "n_fft": 1280, "hop_length": 320}

# espeak-ng voice -> sentences (written for this script, CC0)
TRAIN: dict[str, list[str]] = {
    "en-us": ["The quick brown fox jumps over the lazy dog.", "Please call Stella and ask her to bring these things with her from the store.",
              "A rainbow is a division of white light into many beautiful colours.", "She sells sea shells by the sea shore on sunny afternoons.",
              "We will meet at the station at half past seven tomorrow morning.", "How much wood would a woodchuck chuck if it could chuck wood?",
              "The weather forecast says it will rain over the weekend.", "Numbers like one, two, three and forty two are easy to say."],
    "en-gb": ["I would like a cup of tea with milk and no sugar, please.", "The library closes early on Sundays and public holidays.",
              "Turn left at the roundabout and follow the signs to the harbour.", "Thirty thousand feathers fell from the old barn roof."],
    "de": ["Guten Morgen, wie geht es dir heute?", "Der Zug nach Berlin fährt um acht Uhr vom zweiten Gleis ab.",
           "Im Sommer schwimmen wir gern im See hinter dem Wald.", "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich."],
    "fr-fr": ["Bonjour, je voudrais un café et un croissant, s'il vous plaît.", "Le soleil se couche derrière les montagnes ce soir.",
              "Nous avons visité le musée du Louvre pendant les vacances.", "Portez ce vieux whisky au juge blond qui fume."],
    "es": ["El cielo está despejado y hace mucho calor hoy.", "Mi hermano trabaja en un hospital cerca del puerto.",
           "¿Dónde está la estación de autobuses, por favor?", "El veloz murciélago hindú comía feliz cardillo y kiwi."],
    "it": ["Domani andiamo al mare con tutta la famiglia.", "La pizza margherita è nata a Napoli molti anni fa.",
           "Il treno per Roma è in ritardo di dieci minuti."],
    "pt-br": ["O menino jogou a bola por cima do muro.", "Amanhã vou visitar a minha avó no interior."],
    "nl": ["De kat slaapt de hele dag op de bank.", "Wij fietsen elke ochtend naar school door het park."],
    "pl": ["Dzień dobry, jak się masz?", "W Szczebrzeszynie chrząszcz brzmi w trzcinie."],
    "sv": ["Det regnar ofta i Göteborg på hösten.", "Vi äter middag klockan sex i kväll."],
    "fi": ["Hyvää huomenta, kuinka voit tänään?"],
    "cs": ["Příliš žluťoučký kůň úpěl ďábelské ódy."],
}
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f4", "f5", "klatt", "klatt3")
# held out: unseen sentences; f3 and m5 are voice variants never used in training
HELDOUT: dict[str, tuple[str, str]] = {
    "en_us_f3": ("en-us+f3", "The old lighthouse keeper counted seventeen ships before sunrise."),
    "de_m5": ("de+m5", "Meine Schwester kauft frisches Brot beim Bäcker an der Ecke."),
    "fr_m2": ("fr-fr+m2", "Il fait beau aujourd'hui, allons nous promener au jardin."),
}


def log(msg: str, t0: float) -> None:
    print(f"[{(time.perf_counter() - t0) / 60:6.2f} min] {msg}", flush=True)


def espeak(voice: str, text: str, speed: int = 160, pitch: int = 50) -> torch.Tensor:
    """espeak-ng's rendering of ``text`` as mono float audio at SAMPLE_RATE (``[L]``)."""
    from zoo.media.audio import load_audio, resample

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                       check=True, capture_output=True)
        wave, sr = load_audio(path)
    return resample(wave.mean(0, keepdim=True), sr, SAMPLE_RATE)[0]


def synthesise_corpus(seed: int, renderings: int) -> list[torch.Tensor]:
    """Every training sentence spoken ``renderings`` times with random variant / speed / pitch."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for lang, sentences in TRAIN.items():
        for text in sentences:
            for _ in range(renderings):
                v = VARIANTS[int(torch.randint(0, len(VARIANTS), (1,), generator=g))]
                speed = int(torch.randint(120, 200, (1,), generator=g))
                pitch = int(torch.randint(20, 80, (1,), generator=g))
                out.append(espeak(f"{lang}+{v}", text, speed, pitch))
    return out


class SegmentSampler:
    """Random ``length``-sample segments of the corpus, random gain (peak 0.1-0.95), seeded."""

    def __init__(self, clips: list[torch.Tensor], length: int, seed: int):
        self.clips = [c for c in clips if c.shape[-1] > length]
        w = torch.tensor([float(c.shape[-1]) for c in self.clips])
        self.w, self.length = w / w.sum(), length
        self.g = torch.Generator().manual_seed(seed)

    def __call__(self, batch: int) -> torch.Tensor:
        out = []
        for i in torch.multinomial(self.w, batch, replacement=True, generator=self.g).tolist():
            c = self.clips[i]
            s = int(torch.randint(0, c.shape[-1] - self.length + 1, (1,), generator=self.g))
            x = c[s:s + self.length]
            peak = 0.1 + 0.85 * float(torch.rand((), generator=self.g))
            out.append(x / x.abs().max().clamp_min(1e-4) * peak)
        return torch.stack(out)


# ---------------------------------------------------------------------------------------- losses


def stft_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-resolution spectral convergence + log-magnitude L1."""
    total = x.new_zeros(())
    for n_fft in (256, 512, 1024, 2048):
        win = torch.hann_window(n_fft)
        a = torch.stft(x, n_fft, n_fft // 4, window=win, return_complex=True).abs().clamp_min(1e-5)
        b = torch.stft(y, n_fft, n_fft // 4, window=win, return_complex=True).abs().clamp_min(1e-5)
        total = total + torch.linalg.norm(a - b) / torch.linalg.norm(a) + (a.log() - b.log()).abs().mean()
    return total / 4


class EMACodebook:
    """VQ training state for ``model.quantizer.embed``: nearest code, EMA k-means update, dead-code restarts."""

    def __init__(self, embed: torch.Tensor, decay: float = 0.99, seed: int = 7):
        self.embed, self.decay = embed, decay
        self.count = torch.ones(embed.shape[0])
        self.sum = embed.clone()
        self.g = torch.Generator().manual_seed(seed)
        self.initialised = False

    def __call__(self, z: torch.Tensor, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``z`` ``[B, D, T]`` -> (straight-through quantised ``[B, D, T]``, ids ``[B, T]``)."""
        flat = z.transpose(1, 2).reshape(-1, z.shape[1]).detach()
        if train and not self.initialised:
            idx = torch.randint(0, flat.shape[0], (self.embed.shape[0],), generator=self.g)
            self.embed.copy_(flat[idx] + 1e-3 * torch.randn(self.embed.shape, generator=self.g))
            self.sum.copy_(self.embed)
            self.initialised = True
        d = (flat.square().sum(1, keepdim=True) - 2 * flat @ self.embed.T + self.embed.square().sum(1)[None])
        ids = d.argmin(1)
        if train:
            onehot = F.one_hot(ids, self.embed.shape[0]).float()
            self.count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
            self.sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
            n = self.count.sum()
            count = (self.count + 1e-5) / (n + self.embed.shape[0] * 1e-5) * n
            self.embed.copy_(self.sum / count[:, None])
            dead = self.count < 0.03
            if bool(dead.any()):
                k = int(dead.sum())
                pick = flat[torch.randint(0, flat.shape[0], (k,), generator=self.g)]
                self.embed[dead] = pick
                self.sum[dead] = pick
                self.count[dead] = 1.0
        q = self.embed[ids].view(z.shape[0], z.shape[2], z.shape[1]).transpose(1, 2)
        return z + (q - z).detach(), ids.view(z.shape[0], -1)


def forward(model, vq: EMACodebook, wav: torch.Tensor, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable copy-synthesis ``[B, L]`` -> (``[B, L]`` audio, commitment loss)."""
    z = model.encoder(wav[:, None])
    q, _ = vq(z, train)
    commit = F.mse_loss(z, q.detach())
    y = model.head(model.backbone(q))
    return y[..., : wav.shape[-1]], commit


def lr_at(frac: float, peak: float, warmup: float = 0.03) -> float:
    if frac < warmup:
        return peak * max(frac, 0.002) / warmup
    p = min(1.0, (frac - warmup) / (1 - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))


# ---------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model, clips: dict[str, torch.Tensor]) -> dict:
    """Held-out metrics of the released model (through ``model.reconstruct``) vs mu-law at the same bitrate."""
    from zoo.media.audio_metrics import mel_distance, mulaw_baseline, si_snr, stft_distance

    bitrate = model.frame_rate * math.log2(model.codebook_size)
    systems = {"wavtokenizer.demo_tiny": lambda x: model.reconstruct(x[None, None], SAMPLE_RATE)[0]}
    for bits in (8, 4, 2):
        systems[f"mu-law {bits}-bit at {bitrate / bits:g} Hz"] = (lambda b: lambda x: mulaw_baseline(x, SAMPLE_RATE, bitrate, b)[0])(bits)
    rows = {}
    for name, fn in systems.items():
        m = {"mel_distance": [], "stft_distance": [], "si_snr_db": []}
        for x in clips.values():
            y = fn(x)
            m["mel_distance"].append(float(mel_distance(x, y, SAMPLE_RATE)[0]))
            m["stft_distance"].append(float(stft_distance(x, y)[0]))
            m["si_snr_db"].append(float(si_snr(x, y)[0]))
        rows[name] = {k: round(sum(v) / len(v), 3) for k, v in m.items()}
    return {"bitrate_bps": bitrate, "clips": list(clips), "rows": rows}


# ---------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("plugins/wavtokenizer/demo"))
    ap.add_argument("--examples", type=Path, default=Path("examples/audio"))
    ap.add_argument("--device", default="cpu", help="cpu (as used for the committed weights) or cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--segment", type=float, default=1.0, help="seconds per training segment")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--renderings", type=int, default=3, help="random renderings of each training sentence")
    ap.add_argument("--checkpoint-minutes", type=float, default=10.0)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    from zoo.media.audio import save_audio
    from zoo_plugins.wavtokenizer.config import WavTokenizerConfig
    from zoo_plugins.wavtokenizer.model import WavTokenizer

    corpus = synthesise_corpus(args.seed, args.renderings)
    seconds = sum(c.shape[-1] for c in corpus) / SAMPLE_RATE
    held = {}
    args.examples.mkdir(parents=True, exist_ok=True)
    for name, (voice, text) in HELDOUT.items():
        x = espeak(voice, text)
        held[name] = x / x.abs().max() * 0.7
        save_audio(args.examples / f"{name}.wav", held[name][None], SAMPLE_RATE)
    log(f"corpus: {len(corpus)} utterances, {seconds / 60:.1f} min of speech; {len(held)} held-out clips -> {args.examples}", t0)

    model = WavTokenizer(WavTokenizerConfig(**CONFIG)).to(args.device)
    vq = EMACodebook(model.quantizer.embed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.8, 0.99), weight_decay=0.01)
    sampler = SegmentSampler(corpus, int(args.segment * SAMPLE_RATE), seed=args.seed + 1)
    out_file = args.out / "tiny" / "model.safetensors"

    def save() -> None:
        from safetensors.torch import save_file

        out_file.parent.mkdir(parents=True, exist_ok=True)
        # float16 on disk (half the bytes; zoo's strict loader casts floats to the model's dtype)
        save_file({k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous().cpu()
                   for k, v in model.state_dict().items()}, str(out_file), metadata={"config": json.dumps(CONFIG)})

    from zoo.media.audio_metrics import log_mel

    start, step, last_ck, ema = time.perf_counter(), 0, time.perf_counter(), None
    model.train()
    while (frac := (time.perf_counter() - start) / (args.minutes * 60)) < 1:
        for gr in opt.param_groups:
            gr["lr"] = lr_at(frac, args.lr)
        x = sampler(args.batch).to(args.device)
        y, commit = forward(model, vq, x, train=True)
        mel = (log_mel(x, SAMPLE_RATE) - log_mel(y, SAMPLE_RATE)).abs().mean()
        loss = mel + stft_loss(x, y) + 0.25 * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = float(mel) if ema is None else 0.98 * ema + 0.02 * float(mel)
        if step % 50 == 0:
            used = int((vq.count > 0.5).sum())
            log(f"step {step:5d}  lr {opt.param_groups[0]['lr']:.2e}  mel {ema:.3f}  loss {float(loss):.3f}  codes in use ~{used}", t0)
        if time.perf_counter() - last_ck > args.checkpoint_minutes * 60:
            save()
            last_ck = time.perf_counter()
        step += 1
    minutes = (time.perf_counter() - start) / 60
    model.eval()
    save()
    log(f"trained {step} steps in {minutes:.1f} min -> {out_file}", t0)

    released = WavTokenizer(WavTokenizerConfig(**CONFIG))
    from safetensors.torch import load_file

    released.load_state_dict(load_file(str(out_file)), strict=True)  # float16 on disk -> float32
    released.eval()
    result = evaluate(released, held)
    for name, row in result["rows"].items():
        log(f"  {name:32s} mel {row['mel_distance']:.3f}  stft {row['stft_distance']:.3f}  si-snr {row['si_snr_db']:.2f} dB", t0)
    stats = {
        "what": "zoo demo weights (wavtokenizer.demo_tiny): NOT for research use",
        "command": "python scripts/train_demo_wavtokenizer.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": args.device, "threads": args.threads, "seed": args.seed, "torch": torch.__version__,
        "config": CONFIG, "params": sum(p.numel() for p in model.parameters()),
        "data": {"source": "espeak-ng " + subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip(),
                 "licence": "synthesised speech (espeak-ng: GPL-3.0-or-later program; its output is not covered); sentences written for this script, CC0",
                 "languages": list(TRAIN), "variants": list(VARIANTS), "utterances": len(corpus),
                 "minutes_of_audio": round(seconds / 60, 1), "heldout": {k: {"voice": v, "text": t} for k, (v, t) in HELDOUT.items()}},
        "training": {"minutes": round(minutes, 1), "steps": step, "batch": args.batch, "segment_seconds": args.segment,
                     "lr": args.lr, "loss": "log-mel L1 + multi-resolution STFT (SC + log-mag L1) + 0.25 commitment; EMA k-means codebook; no GAN"},
        "eval": result,
    }
    (args.out / "train_stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {args.out / 'train_stats.json'}", t0)


if __name__ == "__main__":
    main()
