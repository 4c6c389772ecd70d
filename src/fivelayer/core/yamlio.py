"""YAML reading that remembers the line of every value, so errors can name file, line and field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fivelayer.core.errors import FivelayerError

__all__ = ["LocatedYaml", "YamlError", "load_yaml", "load_yaml_text"]

Loc = tuple[str | int, ...]


class YamlError(FivelayerError):
    """A file that is not valid YAML."""


@dataclass(frozen=True)
class LocatedYaml:
    """Parsed YAML data plus the 1-based line of each value, keyed by its path (keys and list indices)."""

    data: Any
    origin: str
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest known prefix of ``loc``."""
        path = tuple(loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def where(self, loc: Loc) -> str:
        line = self.line_of(loc)
        return f"{self.origin} line {line}" if line is not None else self.origin


def _construct(node: yaml.Node, path: Loc, lines: dict[Loc, int], loader: yaml.SafeLoader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise YamlError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            out[key] = _construct(value_node, (*path, key), lines, loader)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_yaml_text(text: str, origin: str = "<string>") -> LocatedYaml:
    """Parse ``text``; ``origin`` (a file name) is used in messages."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        data = None if node is None else _construct(node, (), lines, loader)
    except YamlError as exc:
        raise YamlError(f"{origin}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise YamlError(f"{origin}{where}: not valid YAML ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{origin}: not valid YAML ({exc})") from None
    finally:
        loader.dispose()
    return LocatedYaml(data=data, origin=origin, lines=lines)


def load_yaml(path: str | Path) -> LocatedYaml:
    """Read and parse a YAML file, with a clear error if it is missing or unreadable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise YamlError(f"{p}: is a directory, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlError(f"{p}: cannot read ({exc})") from None
    return load_yaml_text(text, origin=str(p))
