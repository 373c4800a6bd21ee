# Lint gates: runtime/ is clean under its own ruff config, and that config's import bans
# (TID251, runtime/ruff.toml) really fire on a planted bad import.
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _ruff(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ruff_runtime_is_clean():
    p = _ruff("check", "--no-cache", "runtime", cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr


def test_ruff_whole_tree_is_clean():
    p = _ruff("check", "--no-cache", ".", cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr


def test_runtime_import_bans_bite(tmp_path):
    # runtime/ruff.toml extends ../pyproject.toml, so rebuild that shape around a planted file.
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "runtime").mkdir()
    shutil.copy(REPO / "runtime" / "ruff.toml", tmp_path / "runtime" / "ruff.toml")
    (tmp_path / "runtime" / "bad.py").write_text(
        "import unicorn\nfrom micropv.platform import x\n\nprint(unicorn, x)\n"
    )
    p = _ruff("check", "--no-cache", "--output-format", "json", "runtime/bad.py", cwd=tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    hits = {
        (d["location"]["row"], d["message"]) for d in json.loads(p.stdout) if d["code"] == "TID251"
    }
    rows = sorted(row for row, _ in hits)
    assert rows == [1, 2], hits
    messages = " ".join(m for _, m in hits)
    assert "`unicorn` is banned" in messages
    assert "`micropv" in messages
