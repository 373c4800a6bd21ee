# Long race-explorer sweeps, sharded over pytest-xdist workers (and hosts: --tx ssh=...):
# each shard id is one test, so `-n` spreads them and `-x` stops at the first counterexample.
# Off by default (they take minutes); run with, for example,
#   MICROPV_EXPLORE_SHARDS=4 pytest -n 4 tests/platform/test_explore_sweep.py
#   MICROPV_EXPLORE_SHARDS=8 MICROPV_EXPLORE_K=3 pytest -n 8 tests/platform/test_explore_sweep.py
# Shard i explores the first-event segments whose rank is i mod S, with their subtrees; a
# counterexample fails the test with the schedule string and its timeline.
import os
from pathlib import Path

import pytest
from micropv.platform.explore.cli import make_target
from micropv.platform.explore.search import Explorer

ROOT = Path(__file__).resolve().parents[2]
SHARDS = int(os.environ.get("MICROPV_EXPLORE_SHARDS", "0") or 0)
K = int(os.environ.get("MICROPV_EXPLORE_K", "2") or 2)
GUESTS = ["examples/pingpong.py"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "examples" / "buggy").glob("*_fixed.py")
)

pytestmark = pytest.mark.skipif(not SHARDS, reason="set MICROPV_EXPLORE_SHARDS=S to sweep")


@pytest.mark.parametrize("shard", range(max(SHARDS, 1)))
@pytest.mark.parametrize("callback", ["vector", "lapic"])
@pytest.mark.parametrize("guest", GUESTS)
def test_sweep(guest, callback, shard, monkeypatch, record_property):
    monkeypatch.chdir(ROOT)
    target, cfg = make_target(guest, options={"callback": callback})
    ex = Explorer(target, max_events=K, shard=(shard, SHARDS))
    rep = ex.exhaustive()
    record_property("runs", rep.runs)
    record_property("plain", rep.plain_total)
    if rep.finding is not None:
        from micropv.platform.explore import timeline

        rec, _ = ex.execute(rep.finding.placements, detail=True)
        lines = timeline.build(rec, rep.finding.violation)
        pytest.fail(f"schedule: {rep.schedule}\n" + "\n".join(lines), pytrace=False)
