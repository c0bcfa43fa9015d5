"""The repository stands alone: no tracked file points at a path outside it (the seed's table and the facts
of its code live in docs/seed.md), and the pages the README links exist."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / name for name in out.decode().split("\0") if name]


def test_nothing_tracked_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|/work/shared")
    hits = []
    for path in _tracked():
        if not path.is_file() or path.suffix in (".png", ".pt", ".npy"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits += [f"{path.relative_to(REPO)}:{i}" for i, line in enumerate(text.splitlines(), 1)
                 if outside.search(line) and path.name != "test_docs.py"]
    assert not hits, hits


def test_the_pages_the_readme_names_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:docs|studies|scripts|bench|tests)/[\w./-]+\.(?:md|yaml|sh|py|png))`", readme))
    named |= set(re.findall(r"\]\(((?:docs)/[\w./-]+)\)", readme))
    assert "docs/seed.md" in named
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert not missing, missing
