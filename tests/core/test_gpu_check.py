"""benchmarks/gpu_check.sh: valid bash, stops clearly without CUDA, fits its 8 minutes, and its
Python half turns test results and parity numbers into one record."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
HELPER = ROOT / "benchmarks" / "gpu_check.py"


def test_script_is_valid_bash():
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_step_limits_fit_in_eight_minutes():
    limits = [int(n) for n in re.findall(r'^step "[^"]+" (\d+) ', SCRIPT.read_text(), re.MULTILINE)]
    assert len(limits) >= 4, limits
    assert sum(limits) <= 8 * 60, f"the steps may take {sum(limits)} s, more than 8 minutes"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine-without-a-GPU path")
def test_without_cuda_it_stops_with_the_reason_and_writes_nothing(tmp_path):
    env = {**os.environ, "ZOO_BENCH_RESULTS": str(tmp_path / "results"), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, check=False, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no CUDA device is available" in proc.stderr and "needs a CUDA GPU" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_the_cuda_tests_it_runs_exist():
    """``pytest -m gpu`` over the script's paths collects the attention and the three parity test sets."""
    paths = re.search(r"-m gpu --junitxml=\S+ \\\n\s+(.+)$", SCRIPT.read_text(), re.MULTILINE).group(1).split()
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "gpu", *paths],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    collected = proc.stdout
    for module in ("tests/core/test_attention.py", "test_flextok_gpu.py", "test_titok_gpu.py", "test_wavtokenizer_gpu.py"):
        assert module in collected, f"{module} not collected by the script's pytest call:\n{collected[-2000:]}"
    assert "bf16" in collected and "fp32" in collected


def test_summary_record(tmp_path):
    junit = tmp_path / "t.xml"
    junit.write_text('<testsuites><testsuite><testcase classname="a" name="ok" time="1.0"/>'
                     '<testcase classname="a" name="bad" time="0.2"><failure message="boom"/></testcase>'
                     '<testcase classname="a" name="skip" time="0"><skipped message="no xformers"/></testcase>'
                     "</testsuite></testsuites>")
    parity = tmp_path / "p.jsonl"
    parity.write_text(json.dumps({"model": "titok vq8k", "dtype": "bfloat16", "quantity": "latents rel", "value": 0.01,
                                  "tolerance": 0.05, "ok": True}) + "\n")
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps([{"step": "CUDA tests", "exit_status": 1, "seconds": 12}]))
    proc = subprocess.run([sys.executable, str(HELPER), "summary", "--junit", str(junit), "--parity", str(parity),
                           "--steps", str(steps), "--results", str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a failed test fails the check
    rec = json.loads((tmp_path / "out" / "gpu_check_cuda.json").read_text())
    assert rec["device"] == "cuda" and rec["tests"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}
    assert rec["steps"][0]["exit_status"] == 1
    assert {"check": "titok vq8k", "dtype": "bfloat16", "quantity": "latents rel", "value": 0.01, "tolerance": 0.05, "ok": True} in rec["rows"]
    assert any(r.get("outcome") == "failed" and r["message"] == "boom" for r in rec["rows"])


def test_preflight_without_cuda_says_why():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = subprocess.run([sys.executable, str(HELPER), "preflight"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and torch.__version__ in proc.stderr
