"""Every code block of the README and the docs runs, unless it says why it cannot.

The runner reads the fenced blocks of ``README.md`` and ``docs/**/*.md``:

* ```` ```python ```` blocks of one file run in order, in one fresh interpreter with a shared
  namespace (a later block may use what an earlier one defined), like a reader pasting them
  into a Python shell;
* ```` ```bash ```` blocks: each ``zoo ...`` command runs (in ``bash``, so globs expand); other
  commands (``pip install``, ``python -m pytest``, ``mkdocs``) are not run here;
* a block right after the comment ``<!-- no-run: REASON -->`` is not run (the reason is
  required, e.g. ``needs the hub``); other languages (yaml, toml, text) are not code to run.

Everything runs in a temporary directory (holding a link to the repository's ``examples/``, so the
documented paths work; the example plugin's sources are importable, not installed) with
``HF_HUB_OFFLINE=1`` and an empty Hugging Face cache: a block that
needs the network fails here unless it is marked. The last test prints how many blocks ran.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PYTHON, BASH = {"python", "py", "python3"}, {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<why>[^>]*?)\s*-->\s*$")
TIMEOUT = 300
PATCHVQ_SRC = ROOT / "examples" / "zoo-patchvq" / "src"  # "Write a plugin" imports the example package


@dataclass(frozen=True)
class Block:
    path: str   # relative to the repository
    line: int   # of the opening fence
    lang: str   # "python" or "bash"
    code: str
    no_run: str | None  # the reason given by the marker, if any

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def extract(text: str, path: str = "<text>") -> list[Block]:
    """The python and bash blocks of a Markdown text, with their opt-out reasons.

    >>> blocks = extract("a\\n<!-- no-run: needs the hub -->\\n```python\\nx = 1\\n```\\n```yaml\\nk: v\\n```\\n")
    >>> [(b.lang, b.code, b.no_run) for b in blocks]
    [('python', 'x = 1\\n', 'needs the hub')]
    """
    blocks = []
    for m in FENCE.finditer(text):
        lang = m["lang"].lower()
        kind = "python" if lang in PYTHON else "bash" if lang in BASH else None
        if kind is None:
            continue
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NO_RUN.search(before)
        if marker is not None and not marker["why"]:
            raise ValueError(f"{path}: a no-run marker needs a reason: <!-- no-run: needs the hub -->")
        code = textwrap.dedent("\n".join(line.removeprefix(m["indent"])
                                         for line in m["body"].split("\n")))
        blocks.append(Block(path, text[: m.start()].count("\n") + 1, kind, code, marker["why"] if marker else None))
    return blocks


def zoo_commands(code: str) -> tuple[list[str], list[str]]:
    """(``zoo ...`` commands to run, other commands left alone) of a bash block, as written (globs
    and quotes are bash's to read); ``&&`` chains are split, comments and continuations handled.

    >>> zoo_commands("pip install -e . && zoo list 'a*'  # the catalogue")
    (["zoo list 'a*'"], ['pip install -e .'])
    """
    run, other = [], []
    for line in re.sub(r"[ \t]*\\\n\s*", " ", code).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        for segment in (s.strip() for s in line.split("&&")):
            if segment:
                (run if segment.split()[0] == "zoo" else other).append(segment)
    return run, other


def all_blocks() -> list[Block]:
    out = []
    for f in FILES:
        out += extract(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))
    return out


BLOCKS = all_blocks()
RUN_FILES = sorted({b.path for b in BLOCKS if b.no_run is None})
EXECUTED: dict[str, dict[str, int]] = {}

DRIVER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for b in blocks:
    try:
        exec(compile(b["code"], b["where"], "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        print(f"SNIPPET FAILED: {b['where']}", file=sys.stderr)
        sys.exit(1)
    print(f"SNIPPET OK: {b['where']}", flush=True)
"""


@pytest.fixture
def sandbox(tmp_path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), str(PATCHVQ_SRC), os.environ.get("PYTHONPATH")) if p)}
    env.pop("HF_HUB_CACHE", None)
    return work, env


@pytest.mark.slow
@pytest.mark.parametrize("path", RUN_FILES)
def test_code_blocks_run(path, sandbox, tmp_path):
    work, env = sandbox
    blocks = [b for b in BLOCKS if b.path == path and b.no_run is None]
    counts = {"python": 0, "zoo": 0}
    python = [{"where": b.where, "code": b.code} for b in blocks if b.lang == "python"]
    if python:
        spec = tmp_path / "blocks.json"
        spec.write_text(json.dumps(python))
        driver = tmp_path / "driver.py"
        driver.write_text(DRIVER)
        proc = subprocess.run([sys.executable, str(driver), str(spec)], check=False, cwd=work, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, (f"a python block of {path} failed (mark it <!-- no-run: REASON --> if it "
                                      f"cannot run offline):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        counts["python"] = proc.stdout.count("SNIPPET OK:")
    for b in (b for b in blocks if b.lang == "bash"):
        for command in zoo_commands(b.code)[0]:
            proc = subprocess.run(["bash", "-c", command], check=False, cwd=work, env=env, capture_output=True,
                                  text=True, timeout=TIMEOUT)
            assert proc.returncode == 0, f"{b.where}: `{command}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
            counts["zoo"] += 1
    EXECUTED[path] = counts


def test_markers_give_a_reason_and_mark_a_runnable_kind():
    for f in FILES:
        text = f.read_text(encoding="utf-8")
        for m in re.finditer(r"<!--\s*no-run\b[^>]*-->", text):
            assert NO_RUN.search(m[0]) and NO_RUN.search(m[0])["why"], f"{f}: {m[0]} gives no reason"
            after = text[m.end():].lstrip("\n")
            assert re.match(r"[ \t]*```(python|py|bash|sh|shell|console)\b", after), \
                f"{f.relative_to(ROOT)}: {m[0]} is not right before a python or bash block"


@pytest.mark.parametrize("text, expected", [
    ("```python\nprint(1)\n```\n", [("python", None)]),
    ("<!-- no-run: needs the hub -->\n```bash\nzoo download x\n```\n", [("bash", "needs the hub")]),
    ("<!-- no-run: needs a GPU -->\n\n```python\nx\n```\n", [("python", "needs a GPU")]),  # blank lines between: fine
    ("<!-- no-run: needs a GPU -->\ntext\n```python\nx\n```\n", [("python", None)]),  # text between: not marked
    ("!!! note\n    ```python\n    y = 2\n    ```\n", [("python", None)]),        # indented fences count
    ("```yaml\nk: v\n```\n```text\nhi\n```\n", []),
])
def test_extract(text, expected):
    assert [(b.lang, b.no_run) for b in extract(text)] == expected


@pytest.mark.parametrize("code, run, other", [
    ("zoo list  # all\nzoo info x \\\n  --json", ["zoo list", "zoo info x --json"], []),
    ("pip install . && zoo doctor && python -m pytest -q", ["zoo doctor"], ["pip install .", "python -m pytest -q"]),
    ("zoo reconstruct examples/images/*.png --out g.png", ["zoo reconstruct examples/images/*.png --out g.png"], []),
    ("mkdocs serve", [], ["mkdocs serve"]),
])
def test_zoo_commands(code, run, other):
    assert zoo_commands(code) == (run, other)


def test_readme_setup_runs_the_main_job():
    """The README's first setup command ends in the offline main job, which the runner executes."""
    setup = next(b for b in BLOCKS if b.path == "README.md" and b.lang == "bash")
    run, other = zoo_commands(setup.code)
    assert run and run[0].startswith("zoo reconstruct --model flextok.demo_128"), run
    assert other[:2] == ["pip install torch==2.13.0", 'pip install -e ".[dev]"'], other
    assert "python -m pytest -q -n auto --dist loadfile" in other


def test_zz_report_executed_blocks(request):
    """How many blocks ran (printed); every runnable file ran in this session, or this is skipped."""
    missing = [p for p in RUN_FILES if p not in EXECUTED]
    if missing:
        pytest.skip(f"the snippet tests of {len(missing)} file(s) did not run in this session: {missing[:3]}")
    python = sum(c["python"] for c in EXECUTED.values())
    zoo = sum(c["zoo"] for c in EXECUTED.values())
    expected_python = sum(1 for b in BLOCKS if b.lang == "python" and b.no_run is None)
    opted_out = sum(1 for b in BLOCKS if b.no_run is not None)
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\ndocs snippets: {python} python blocks and {zoo} zoo commands executed in {len(EXECUTED)} files; "
              f"{opted_out} blocks opted out (<!-- no-run -->)")
    assert python == expected_python
    assert python >= 10 and zoo >= 5
