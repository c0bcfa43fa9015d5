"""``mtl-collect --right-size --write-resources STUDY``: the right-size proposal written into the study file.

Each experiment's ``resources:`` gets the proposed ``timeout_min``/``mem_gb``, so the next ``mtl-launch`` asks
Slurm for them. The file is the user's: only the changed values' text changes (comments, key order, quoting,
blank lines and every other byte stay), found through PyYAML's node marks, not by dumping YAML again, which would
lose all of that. The new text must load with ``study.load_experiments`` and give exactly the proposed values
before it is written (atomically; the old file kept as ``<name>.bak``).

Which experiment a table row is: the one whose grid makes its runs (same signature: an ``id`` shared name and
grid variants resolve exactly), else the one experiment of that name (runs from an edited study or a ``--set``).
Runs of the ``--debug``/``--demo`` grids are none: a tiny synthetic run's use must not set the full runs' limits.
Pure: reads and writes the study file, prints nothing; errors are one-line ``ConfigError``s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml

from ..errors import ConfigError
from ..fsio import atomic_write_text
from ..yamlio import read_text, safe_parse
from .grid import RunSpec, expand
from .study import Experiments, load_experiments

KEYS = ("timeout_min", "mem_gb")            # the keys a proposal sets, in this order
BACKUP_SUFFIX = ".bak"


@dataclass(frozen=True)
class RowProposal:
    """One table row's proposal, as the collector hands it over: its runs as (name, signature), and the values
    (None: nothing proposed for that key)."""

    row: str
    runs: tuple[tuple[str, str], ...]
    timeout_min: int | None
    mem_gb: int | None

    def values(self) -> dict[str, int]:
        return {k: v for k, v in zip(KEYS, (self.timeout_min, self.mem_gb)) if v is not None}


@dataclass(frozen=True)
class Change:
    experiment: str
    key: str
    old: object                               # None: the key was not set
    new: int


@dataclass
class Resized:
    """What ``write_resources`` did: ``changes`` empty means nothing was written (``backup`` None); ``matched``:
    how many experiments a row was found for (0: nothing of the file is these runs' study)."""

    path: Path
    matched: int = 0
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backup: Path | None = None


def _specs(exps: Experiments) -> tuple[list[RunSpec], set[str]]:
    """Every run the study makes (its grid) and the signatures of its debug/demo grids' runs, which are rows too
    but say nothing of what the full runs need."""
    specs = expand(exps, Path("results"))
    small: set[str] = set()
    for debug, demo, has in ((True, False, exps.debug or exps.debug_grid), (False, True, exps.demo or exps.demo_grid)):
        if has:
            try:
                small |= {s.signature for s in expand(exps, Path("results"), debug=debug, demo=demo)}
            except ConfigError:
                pass                          # a debug grid that does not expand makes no runs to match
    return specs, small - {s.signature for s in specs}


def experiments_of(exps: Experiments, specs: Sequence[RunSpec], name: str, signature: str,
                   small: frozenset[str] | set[str] = frozenset()) -> tuple[list[str], str]:
    """The experiment ids one run belongs to and, when it is not exact, why: (ids, note). A run of the debug or
    demo grid (``small``) belongs to none: tiny runs on synthetic data must not set the full runs' limits."""
    if signature in small:
        return [], ("a run of the --debug/--demo grid: its use says nothing of what the full runs need; not written "
                    "(right-size from the study's own runs)")
    exact = [i for s in specs if s.signature == signature for i in (s.name, *s.aliases)]
    if exact:
        return list(dict.fromkeys(exact)), ""
    named = [e.id for e in exps.experiments if e.overrides.get("name") == name]
    if len(named) == 1:
        return named, (f"taken as {named[0]} by its name only: no run of the study has its configuration "
                       f"(launched with --set, or the study was edited since)")
    if named:
        return [], (f"experiments {', '.join(named)} share the name {name} and none makes its runs; set their "
                    f"resources: by hand")
    return [], f"no experiment named {name} in {exps.path} (not the study these runs came from?)"


def targets(exps: Experiments, rows: Sequence[RowProposal]) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Experiment id -> key -> the largest value any of its rows proposes; and the note lines."""
    specs, small = _specs(exps)
    out: dict[str, dict[str, int]] = {}
    notes: list[str] = []
    for row in rows:
        values = row.values()
        if not values:
            continue                          # no usage records: nothing to propose, nothing to change
        ids: list[str] = []
        for name, sig in dict.fromkeys(row.runs):
            found, why = experiments_of(exps, specs, name, sig, small)
            ids += [i for i in found if i not in ids]
            if why and f"note: {row.row}: {why}" not in notes:
                notes.append(f"note: {row.row}: {why}")
        for exp_id in ids:
            mine = out.setdefault(exp_id, {})
            for key, value in values.items():
                mine[key] = max(mine.get(key, value), value)
    return out, notes


def _same(old: object, new: int) -> bool:
    return isinstance(old, (int, float)) and not isinstance(old, bool) and float(old) == new


def _entry(root: yaml.Node | None, index: int, path: Path) -> yaml.MappingNode:
    """The ``experiments[index]`` mapping node of the composed file."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "experiments" and isinstance(value, yaml.SequenceNode) and index < len(value.value):
                node = value.value[index]
                if isinstance(node, yaml.MappingNode):
                    return node
    raise ConfigError(f"{path}: experiments[{index}] is not where the loader found it; nothing written")


def _line_end(text: str, index: int, newline: str) -> tuple[int, str]:
    """Where the line holding ``index`` ends (after its newline) and what to prefix an insertion there with."""
    end = text.find("\n", index)
    return (len(text), newline) if end < 0 else (end + 1, "")


def _flow_items(values: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in values.items())


def _edits(text: str, entry: yaml.MappingNode, values: dict[str, int], where: str,
           path: Path) -> list[tuple[int, int, str]]:
    """(start, end, replacement) spans of ``text`` that set ``values`` in this entry's ``resources:``."""
    newline = "\r\n" if "\r\n" in text else "\n"
    pairs = {k.value: (k, v) for k, v in entry.value}
    if not (entry.start_mark.index <= entry.end_mark.index <= len(text)):
        raise ConfigError(f"{path}: {where}: cannot locate it in the file; set resources: by hand")
    if "resources" not in pairs:
        line = f"resources: {{{_flow_items(values)}}}"
        if entry.flow_style:                  # - {name: X, ...}: before its closing brace
            last = entry.value[-1][1]
            return [(last.end_mark.index, last.end_mark.index, f", {line}")]
        anchors = [pairs[k][1] for k in ("name", "id") if k in pairs] or [entry.value[0][1]]
        after = max(anchors, key=lambda n: n.end_mark.index)
        at, prefix = _line_end(text, after.end_mark.index, newline)
        indent = " " * entry.value[0][0].start_mark.column
        return [(at, at, f"{prefix}{indent}{line}{newline}")]
    res_key, res = pairs["resources"]
    if not isinstance(res, yaml.MappingNode) or res.start_mark.index < res_key.end_mark.index:
        raise ConfigError(f"{path}:{res_key.start_mark.line + 1}: {where}.resources: not a mapping written in "
                          f"this entry (an alias?); set timeout_min/mem_gb there by hand")
    have = {k.value: v for k, v in res.value}
    edits: list[tuple[int, int, str]] = []
    missing: dict[str, int] = {}
    for key, value in values.items():
        node = have.get(key)
        if node is None:
            missing[key] = value
        elif isinstance(node, yaml.ScalarNode):
            edits.append((node.start_mark.index, node.end_mark.index, str(value)))
        else:
            raise ConfigError(f"{path}:{node.start_mark.line + 1}: {where}.resources.{key}: not a number; "
                              f"fix it, then write again")
    if not missing:
        return edits
    if res.flow_style or not res.value:       # {...} (or an empty one): before the closing brace
        if res.value:
            at = res.value[-1][1].end_mark.index
            edits.append((at, at, f", {_flow_items(missing)}"))
        else:
            close = text.rfind("}", res.start_mark.index, res.end_mark.index)
            if close < 0:
                raise ConfigError(f"{path}:{res_key.start_mark.line + 1}: {where}.resources: empty and not "
                                  f"written as {{}}; write it as {{}} or set the keys by hand")
            edits.append((close, close, _flow_items(missing)))
        return edits
    indent = " " * res.value[0][0].start_mark.column
    lines = "".join(f"{indent}{k}: {v}{newline}" for k, v in missing.items())
    last_key, last = res.value[-1]
    if isinstance(last, yaml.ScalarNode) and last.end_mark.line == last_key.start_mark.line:
        at, prefix = _line_end(text, last.end_mark.index, newline)   # after the last key's line
    else:                                     # the last value spans lines: before the first key's line
        first = res.value[0][0].start_mark
        at, prefix = first.index - first.column, ""
    edits.append((at, at, prefix + lines))
    return edits


def resized_text(exps: Experiments, wanted: dict[str, dict[str, int]]) -> tuple[str, list[Change]]:
    """The study's text with each wanted value set, and the changes; values already there are left alone."""
    text = exps.text
    root, _raw = safe_parse(exps.path, text)
    by_id = {e.id: e for e in exps.experiments}
    edits: list[tuple[int, int, str]] = []
    changes: list[Change] = []
    for exp_id, values in wanted.items():
        exp = by_id[exp_id]
        todo = {k: v for k, v in values.items() if not _same(exp.resources.get(k), v)}
        if not todo:
            continue
        edits += _edits(text, _entry(root, exp.index, exps.path), todo, f"experiments[{exp.index}]", exps.path)
        changes += [Change(exp_id, k, exp.resources.get(k), v) for k, v in todo.items()]
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text, changes


def _check(before: Experiments, after: Experiments, changes: Sequence[Change]) -> None:
    """The edit did what it says and nothing else: same experiments and training keys, each changed experiment's
    resources exactly the old ones with the new values."""
    expected = {e.id: dict(e.resources) for e in before.experiments}
    for c in changes:
        expected[c.experiment][c.key] = c.new
    got = {e.id: dict(e.resources) for e in after.experiments}
    same_rest = ([(e.id, e.overrides) for e in before.experiments] == [(e.id, e.overrides) for e in after.experiments]
                 and (before.defaults, before.grid, before.debug, before.demo)
                 == (after.defaults, after.grid, after.debug, after.demo))
    wrong = [i for i in expected if got.get(i) != expected[i]]
    if wrong or not same_rest:
        what = f"{wrong[0]}'s resources would be {got.get(wrong[0])}" if wrong else "other keys would change"
        raise ConfigError(f"{before.path}: the edit did not come out as proposed ({what}); nothing written: set "
                          f"timeout_min/mem_gb under the experiments' resources: by hand")


def write_resources(path: Path, rows: Sequence[RowProposal]) -> Resized:
    """Write the rows' proposals into ``path``'s experiments (checked, atomic, ``<name>.bak`` beside it)."""
    path = Path(path)
    exps = load_experiments(path)
    wanted, notes = targets(exps, rows)
    text, changes = resized_text(exps, wanted)
    done = Resized(path, len(wanted), notes=notes)
    if not changes:
        return done
    try:
        after = load_experiments(path, text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: the edited file would not load ({exc}); nothing written: set "
                          f"timeout_min/mem_gb under the experiments' resources: by hand") from None
    _check(exps, after, changes)
    if read_text(path) != exps.text:
        raise ConfigError(f"{path}: changed while it was being edited; nothing written: run it again")
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    atomic_write_text(backup, exps.text, mode_of=path)   # the old text, as private as the study file
    atomic_write_text(path, text)
    done.changes, done.backup = changes, backup
    return done
