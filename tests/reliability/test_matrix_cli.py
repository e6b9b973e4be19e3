"""Matrix group: CLI arguments and paths. Usage mistakes exit 2, other refusals exit 1, both with
one ``Error:`` line and no traceback; the ones marked *before load* are refused before the model is
loaded (``zoo.load`` is replaced by a tripwire) and nothing is written."""

from __future__ import annotations

import os

from click.testing import CliRunner

import zoo
from zoo.cli import cli

from . import files
from .matrix import Row, check_row, cli_refuses, params


def run(*args, before_load=False, image=True):
    """``zoo reconstruct IMAGE --model patchvq.tiny --weights RELEASE ARGS`` (or any command)."""

    def call(env):
        if before_load:
            def tripwire(*a, **k):
                raise AssertionError("zoo.load was called: the bad argument was not caught up front")
            env.monkeypatch.setattr(zoo, "load", tripwire)
        argv = [a(env) if callable(a) else a for a in args]
        if image and argv and argv[0] == "reconstruct":
            argv = ["reconstruct", str(files.rgb_png(env.tmp)), "--model", "patchvq.tiny", "--weights", str(env.release), *argv[1:]]
        result = CliRunner().invoke(cli, argv)
        outs = [p for p in env.tmp.rglob("*") if p.name in ("grid.png", "grid.txt", "x.wav", "x.png")]
        assert not before_load or not outs, f"something was written: {outs}"
        return result

    return call


def out(name="grid.png"):
    return lambda env: str(env.tmp / name)


def refused(code, *words):
    return cli_refuses(code, *words)


OUT = ("--out", out())
ROWS = [
    Row("tokens-not-a-number", run("reconstruct", "--tokens", "abc", *OUT, before_load=True), check=refused(2, "'abc' is not a whole number")),
    Row("tokens-empty-entry", run("reconstruct", "--tokens", "1,,4", *OUT, before_load=True), check=refused(2, "'' is not a whole number")),
    Row("tokens-zero", run("reconstruct", "--tokens", "0", *OUT, before_load=True), check=refused(2, "start at 1")),
    Row("tokens-negative", run("reconstruct", "--tokens", "4,-2", *OUT, before_load=True), check=refused(2, "start at 1")),
    Row("tokens-float", run("reconstruct", "--tokens", "2.5", *OUT, before_load=True), check=refused(2, "'2.5'")),
    Row("tokens-too-many", run("reconstruct", "--tokens", "16,65", *OUT), check=refused(1, "out of range", "64 tokens", "1..64")),
    Row("steps-zero", run("reconstruct", "--steps", "0", *OUT, before_load=True), check=refused(2, "--steps")),
    Row("steps-not-int", run("reconstruct", "--steps", "many", *OUT, before_load=True), check=refused(2, "--steps")),
    Row("guidance-nan", run("reconstruct", "--guidance-scale", "nan", *OUT, before_load=True), check=refused(2, "finite")),
    Row("guidance-inf", run("reconstruct", "--guidance-scale", "inf", *OUT, before_load=True), check=refused(2, "finite")),
    Row("guidance-not-number", run("reconstruct", "--guidance-scale", "lots", *OUT, before_load=True), check=refused(2, "--guidance-scale")),
    Row("steps-not-taken-by-decoder", run("reconstruct", "--steps", "4", *OUT), check=refused(1, "--steps does not apply", "patchvq.tiny")),
    Row("out-bad-suffix", run("reconstruct", "--out", out("grid.txt"), before_load=True), check=refused(2, "must end in", ".png")),
    Row("out-is-directory", run("reconstruct", "--out", lambda env: str(env.tmp), before_load=True), check=refused(2, "directory")),
    Row("out-parent-is-file", run("reconstruct", "--out", lambda env: str(files.text_file(env.tmp, "f.txt") / "grid.png"), before_load=True),
        check=refused(2, "not a directory")),
    Row("out-read-only-filesystem", run("reconstruct", "--out", "/proc/zoo_h13/grid.png", before_load=True), check=refused(2, "cannot be written")),
    Row("out-new-folder-made", run("reconstruct", "--out", lambda env: str(env.tmp / "new" / "grid.png")),
        check=lambda r: r.exit_code == 0 and "wrote" in r.output),
    Row("input-not-an-image", run("reconstruct", lambda env: str(files.text_file(env.tmp, "notes.png")), "--model", "patchvq.tiny",
                                  *OUT, before_load=True, image=False), check=refused(1, "notes.png", "not an image file")),
    Row("input-truncated-image", run("reconstruct", lambda env: str(files.truncated_png(env.tmp)), "--model", "patchvq.tiny",
                                     *OUT, before_load=True, image=False), check=refused(1, "cut.png")),
    Row("input-missing", run("reconstruct", "absent.png", "--model", "patchvq.tiny", *OUT, before_load=True, image=False),
        check=refused(2, "absent.png", "does not exist")),
    Row("input-16bit-png-ok", run("reconstruct", lambda env: str(files.png16(env.tmp, 30000)), "--model", "patchvq.tiny",
                                  "--weights", lambda env: str(env.release), *OUT, image=False), check=lambda r: r.exit_code == 0),
    Row("model-unknown", run("reconstruct", "x.png", "--model", "nosuch.model", *OUT, before_load=True, image=False),
        check=refused(2, "x.png")),
    Row("model-unknown-with-file", run("reconstruct", lambda env: str(files.rgb_png(env.tmp)), "--model", "nosuch.model", *OUT,
                                       before_load=True, image=False), check=refused(1, "unknown model 'nosuch.model'")),
    Row("model-malformed", run("reconstruct", lambda env: str(files.rgb_png(env.tmp)), "--model", "flextok@@", *OUT,
                               before_load=True, image=False), check=refused(1, "malformed model name")),
    Row("model-not-a-tokenizer", run("reconstruct", lambda env: str(files.rgb_png(env.tmp)), "--model", "divprune", *OUT,
                                     before_load=True, image=False), check=refused(1, "token_reducer", "needs a tokenizer")),
    Row("cli-device-gpu", run("reconstruct", "--device", "gpu", *OUT), check=refused(1, "device='gpu'")),
    Row("info-malformed-name", run("info", "flextok@", image=False), check=refused(1, "nothing after '@'")),
    Row("info-unknown-name", run("info", "flextk", image=False), check=refused(1, "did you mean", "flextok")),
    Row("generate-bad-out-suffix", run("generate", "1", "--model", "maskgit.titok_l_32", "--out", out("x.wav"), "--random",
                                       before_load=True, image=False), check=refused(2, "must end in", ".png")),
    Row("generate-max-new-tokens-zero", run("generate", "hi", "--model", "outetts", "--out", out("x.wav"), "--max-new-tokens", "0",
                                            before_load=True, image=False), check=refused(2, "--max-new-tokens")),
    Row("generate-unknown-model", run("generate", "1", "--model", "nosuch.gen", "--out", out(), before_load=True, image=False),
        check=refused(1, "unknown model")),
]

assert os.geteuid() >= 0  # the read-only row uses /proc, which refuses writes even to root


@params(ROWS)
def test_cli(row, env):
    check_row(row, env)
