"""The repository stands alone: no tracked file points at a path outside it (the seed's table and the facts
of its code live in docs/seed.md), the pages the README names exist, and every flag of every console script
is described somewhere a user reads."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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


# -- docs/configuration.md: every key of the code, with its default, so the reference cannot drift ---------------
CONFIG_PAGE = REPO / "docs" / "configuration.md"


def _section(text: str, heading: str) -> str:
    """The part of a page from the ``## heading`` line to the next ``## `` heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _rendered(value: object) -> str:
    """A default as the page writes it: strings bare, the rest as JSON (null, true, [], {}, 1e-06)."""
    import json
    return value if isinstance(value, str) else json.dumps(list(value) if isinstance(value, tuple) else value)


def _default(f: Any) -> object:
    """A dataclass field's default, from its factory where it has one."""
    import dataclasses
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def _rows(section: str) -> dict[str, list[str]]:
    """Table rows of a section: the first cell's `key` -> the other cells."""
    out: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and cells[0].startswith("`") and cells[0].endswith("`"):
            out.setdefault(cells[0].strip("`"), cells[1:])
    return out


def test_every_configuration_key_is_documented() -> None:
    """Every field of TrainConfig (as `key`) and DataConfig (as `data.key`) has a row in docs/configuration.md
    whose default column starts with the code's default."""
    from dataclasses import fields

    from mtl_cluster.config import DataConfig, TrainConfig

    text = CONFIG_PAGE.read_text(encoding="utf-8")
    rows = {**_rows(_section(text, "Training keys")), **_rows(_section(text, "Data keys"))}
    keys = [(f.name, f) for f in fields(TrainConfig)] + [(f"data.{f.name}", f) for f in fields(DataConfig)]
    missing = [k for k, _ in keys if f"`{k}`" not in text or k not in rows]
    assert not missing, f"keys of mtl_cluster/config.py not documented in docs/configuration.md: {missing}"
    wrong = [f"{k}: the page says {rows[k][0]}, the code {_rendered(_default(f))!r}" for k, f in keys
             if k != "data" and not rows[k][0].startswith(f"`{_rendered(_default(f))}`")]
    assert not wrong, wrong


def test_every_cluster_profile_key_is_documented() -> None:
    """Every field of ClusterProfile has a row, with its default, in the cluster profiles section, and the table of
    the profiles experiments.yaml ships shows each one's keys as it resolves them."""
    from dataclasses import fields

    from mtl_cluster.launch.clusters import ClusterProfile
    from mtl_cluster.launch.study import load_experiments

    section = _section(CONFIG_PAGE.read_text(encoding="utf-8"), "Cluster profiles")
    header = next(line for line in section.splitlines() if line.startswith("| key | `"))
    rows = _rows(section[:section.index(header)])        # the key table, before the shipped profiles' table
    missing = [f.name for f in fields(ClusterProfile) if f.name not in rows]
    assert not missing, f"cluster profile keys not documented in docs/configuration.md: {missing}"
    wrong = [f"{f.name}: the page says {rows[f.name][0]}, the code {_rendered(_default(f))!r}"
             for f in fields(ClusterProfile) if not rows[f.name][0].startswith(f"`{_rendered(_default(f))}`")]
    assert not wrong, wrong
    shipped = load_experiments(REPO / "experiments.yaml").clusters
    names = [c.strip().strip("`") for c in header.strip().strip("|").split("|")[1:]]
    assert sorted(names) == sorted(shipped), f"experiments.yaml ships {sorted(shipped)}, the page shows {names}"
    table = _rows(section[section.index(header):])
    wrong = [f"{name}.{f.name}: the page says {table[f.name][i]}"
             for i, name in enumerate(names) for f in fields(ClusterProfile)
             if table[f.name][i] != f"`{_rendered(getattr(shipped[name], f.name))}`"]
    assert not wrong, wrong


def test_every_study_file_key_is_documented() -> None:
    from mtl_cluster.launch.study import ENTRY_KEYS, TOP_KEYS

    text = CONFIG_PAGE.read_text(encoding="utf-8")
    missing = [k for k in (*TOP_KEYS, *ENTRY_KEYS) if f"`{k}`" not in text]
    assert not missing, f"study file keys not documented in docs/configuration.md: {missing}"


def test_the_readme_is_a_first_read() -> None:
    """What a newcomer needs first fits in about 150 lines; the reference lives in docs/."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move reference material to docs/"


def test_every_exit_code_is_in_the_one_table() -> None:
    """docs/troubleshooting.md's exit-code table has a row for every EXIT_* code of errors.py, and for Ctrl-C."""
    from mtl_cluster import errors

    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_") and isinstance(v, int)} | {130}
    rows = _rows_by_first_cell(_section((REPO / "docs" / "troubleshooting.md").read_text(encoding="utf-8"),
                                        "Exit codes"))
    missing = sorted(c for c in codes if str(c) not in rows)
    assert not missing, f"exit codes without a row in docs/troubleshooting.md: {missing}"


def _rows_by_first_cell(section: str) -> set[str]:
    return {line.strip().strip("|").split("|")[0].strip() for line in section.splitlines() if line.startswith("| ")}


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_pages_lands() -> None:
    """``[text](page.md#anchor)`` links in README.md and docs/*.md name a page that exists and a heading it has."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    bad = []
    for page in pages:
        for target, anchor in re.findall(r"\]\(([\w./-]*\.md)?(?:#([\w-]+))?\)", page.read_text(encoding="utf-8")):
            path = (page.parent / target) if target else page
            if not path.exists():
                bad.append(f"{page.name}: {target} does not exist")
            elif anchor and anchor not in {_slug(h) for h in re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"),
                                                                          re.M)}:
                bad.append(f"{page.name}: no heading #{anchor} in {target or page.name}")
    assert not bad, bad


def test_the_floor_plan_names_every_module() -> None:
    """docs/ARCHITECTURE.md is the map a newcomer walks: a module it does not name is a room nobody can find."""
    plan = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    modules = {p.name for p in (REPO / "mtl_cluster").rglob("*.py") if not p.name.startswith("__")}
    missing = sorted(m for m in modules if f"`{m}`" not in plan)
    assert not missing, f"modules docs/ARCHITECTURE.md does not name: {missing}"
