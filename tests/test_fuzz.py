"""The fuzz harness (tests/fuzz_decode.py) as a short seeded run, and the regression corpus.

The long run is ``python -m tests.fuzz_decode --seconds 600 --seed N``; here a
fixed 150-input run (about 20 s) must find no crash, hang or unexpected
exception, and every input that ever failed (tests/corpus/) must now end in a
clean McodecError.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import REPO

CORPUS = REPO / "tests" / "corpus"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.fuzz_decode", *args, "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_short_seeded_fuzz_run_finds_no_bug() -> None:
    r = _run("--count", "150", "--seed", "1", "--no-save")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["runs"] == 150
    assert report["bugs"] == {} and report["mutator_errors"] == 0
    # the mutations reach past the container: some inputs decode, most fail cleanly
    assert report["classes"].get("clean", 0) > 50


def test_regression_corpus_fails_cleanly() -> None:
    files = sorted(CORPUS.glob("*.bin"))
    assert files, "the regression corpus is empty"
    r = _run("--replay", str(CORPUS))
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(r.stdout)
    assert len(results) == len(files)
    assert all(v["cls"] in ("ok", "clean") for v in results.values()), results
