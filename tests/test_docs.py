"""The repository stands alone: no tracked file points at a path outside it (the seed's table and the facts
of its code live in docs/seed.md), the pages the README names exist, and every flag of every console script
is described somewhere a user reads."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("script", ["mtl-launch", "mtl-status", "mtl-collect", "mtl-train", "mtl-data check"])
def test_every_flag_of_every_console_script_is_in_the_docs(script: str) -> None:
    """A flag in --help that no page describes is a flag a user cannot find."""
    exe = Path(sys.executable).parent / script.split()[0]
    res = subprocess.run([str(exe), *script.split()[1:], "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", res.stdout)) - {"--help"}
    assert len(flags) >= 3, res.stdout
    docs = "\n".join(p.read_text(encoding="utf-8") for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", docs))
    assert not missing, f"{script}: {missing} are in --help but in no page (README.md, docs/*.md)"


def test_every_module_path_the_docs_name_exists() -> None:
    """``mtl_cluster/...`` paths in the pages (README, docs/, the .md files at the top) are the house as it is."""
    pages = [REPO / "README.md", *sorted(REPO.glob("*.md")), *sorted((REPO / "docs").glob("*.md"))]
    named = {m for p in pages for m in re.findall(r"mtl_cluster/[\w/]+\.py", p.read_text(encoding="utf-8"))}
    missing = sorted(m for m in named if not (REPO / m).exists())
    assert not missing, missing
