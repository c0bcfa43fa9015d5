"""YAML through the safe loader only, with one-line errors: ``file:line: problem``.

Refuses what PyYAML would accept silently or dangerously: unknown tags (``!!python/object``), a key
given twice, nesting too deep, alias bombs. Every YAML file the package reads comes through here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

MAX_YAML_NODES = 100_000      # a study file is a few hundred values; more is an alias bomb


def read_text(path: Path) -> str:
    """A config file's text; a missing or unreadable file is one ConfigError line."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None


def yaml_error(path: Path, exc: yaml.YAMLError) -> ConfigError:
    """PyYAML's multi-line complaint as one line: ``file:line: invalid YAML: problem``."""
    mark = getattr(exc, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ConfigError(f"{path}{line}: invalid YAML: {problem}")


def expanded_size(node: yaml.Node | None, limit: int = MAX_YAML_NODES) -> int:
    """How many values a composed YAML document holds once its aliases are expanded (stops past ``limit``).

    Aliases share nodes, so this counts each node once per path with a memo: linear in the file.
    """
    memo: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) not in memo:
            memo[id(n)] = 0   # a node that contains itself counts once (recursive aliases)
            kids = [x for kv in n.value for x in kv] if isinstance(n, yaml.MappingNode) else \
                n.value if isinstance(n, yaml.SequenceNode) else []
            total = 1
            for k in kids:
                total += size(k)
                if total > limit:
                    break
            memo[id(n)] = total
        return memo[id(n)]

    return size(node) if node is not None else 0


def duplicate_key(node: yaml.Node, path: str) -> tuple[str, int] | None:
    """A key given twice in one mapping (PyYAML silently keeps the last): its path and line."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            sub = f"{path}.{key.value}" if path else str(key.value)
            if isinstance(key, yaml.ScalarNode):   # a list as a key: the loader itself refuses it
                if key.value in seen:
                    return sub, key.start_mark.line + 1
                seen.add(key.value)
            found = duplicate_key(value, sub)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = duplicate_key(item, f"{path}[{i}]")
            if found:
                return found
    return None


def safe_parse(path: Path, text: str) -> tuple[yaml.Node | None, object]:
    """(node graph, value) of a YAML text through the safe loader only; one ConfigError line for a
    syntax error, an unknown tag (``!!python/object``), a key given twice, nesting too deep or an alias bomb."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if expanded_size(node) > MAX_YAML_NODES:
            raise ConfigError(f"{path}: expands to more than {MAX_YAML_NODES} values through aliases "
                              f"(a YAML alias bomb?)")
        dup = duplicate_key(node, "")
        if dup:   # PyYAML silently keeps the last one: almost always an edit gone wrong
            raise ConfigError(f"{path}:{dup[1]}: {dup[0]}: key given twice")
        return node, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file and, where known, the line."""
    _node, raw = safe_parse(path, read_text(path))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top, got {type(raw).__name__}")
    return raw
