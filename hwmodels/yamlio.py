"""Safe YAML loading that remembers where every value came from.

Only the YAML core types are built (mappings, sequences, strings, numbers, booleans,
null): tags that construct objects (``!!python/...``) are refused, duplicate keys are
errors rather than silent overwrites, and alias expansion is bounded so an alias bomb
fails fast. Each value's source line is kept in :class:`Document.lines`, keyed by its
field path, so later validation can say ``FILE:LINE: field.path: what was expected``.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError, Problem, did_you_mean

MAX_NODES = 200_000  # values built after alias expansion; real hardware files have a few hundred
_SAFE_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary", "omap")
}


@dataclass
class Document:
    """A parsed YAML document: its data, its file name and the line of each field path."""

    data: Any
    file: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, path: tuple | list) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def problem(self, message: str, path=(), suggestion: str | None = None) -> Problem:
        """A Problem located at ``path`` in this document."""
        return Problem(message, self.file, self.line_of(path), dotted(path) or None, suggestion)

    def error(self, message: str, path=(), suggestion: str | None = None) -> InputError:
        return InputError(problems=[self.problem(message, path, suggestion)])


def dotted(path) -> str:
    """``("memory", "hbm", "bandwidth")`` -> ``"memory.hbm.bandwidth"``; list indices as ``[i]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str):
        self.loader = loader
        self.file = file
        self.lines: dict[tuple, int] = {}
        self.count = 0

    def build(self, node: yaml.Node, path: tuple) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise InputError(f"document expands to more than {MAX_NODES} values "
                             "(alias bomb?); refusing to load it", file=self.file,
                             line=node.start_mark.line + 1)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if node.tag not in _SAFE_TAGS:
            raise InputError(f"YAML tag '{node.tag}' is not allowed (only plain data is loaded)",
                             file=self.file, line=node.start_mark.line + 1, path=dotted(path) or None)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise InputError("mapping keys must be plain scalars", file=self.file,
                                     line=key_node.start_mark.line + 1, path=dotted(path) or None)
                key = self._construct(key_node, path)
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    key = str(key)
                if key in out:
                    raise InputError(f"duplicate key '{key}'", file=self.file,
                                     line=key_node.start_mark.line + 1, path=dotted(path) or None)
                sub = (*path, key)
                self.lines[sub] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        value = self._construct(node, path)
        if node.tag.endswith(":timestamp"):
            return str(value)
        return value


    def _construct(self, node: yaml.Node, path: tuple) -> Any:
        """A scalar's value; a tag whose text does not fit it (``!!float abc``) is an InputError."""
        try:
            return self.loader.construct_object(node)
        except yaml.MarkedYAMLError:
            raise
        except Exception as exc:  # PyYAML's scalar constructors raise ValueError, TypeError, ...
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise InputError(f"cannot read {node.value!r} as {tag} ({type(exc).__name__})", file=self.file,
                             line=node.start_mark.line + 1, path=dotted(path) or None) from None


def loads(text: str, file: str = "<string>") -> Document:
    """Parse one YAML document from ``text`` (safely; see module doc)."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        # a control character (a NUL byte, ...) that YAML does not allow anywhere in a file
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise InputError(f"character U+{code:04X} at column "
                         f"{exc.position - text.rfind(chr(10), 0, exc.position)} is not allowed in YAML",
                         file=file, line=line) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError("the document is empty; expected a mapping of fields", file=file, line=1)
        builder = _Builder(loader, file)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        context = exc.context
        if context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            # PyYAML notices an unclosed bracket or quote where parsing fails; say where it opened.
            context = f"{context} (opened at line {exc.context_mark.line + 1})"
        what = " ".join(str(x) for x in (context, exc.problem) if x)
        raise InputError(f"YAML syntax error: {what}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", file=file) from None
    except RecursionError:
        raise InputError("YAML nesting is too deep", file=file) from None
    finally:
        loader.dispose()
    return Document(data, file, builder.lines)


def load(path: str | Path) -> Document:
    """Parse the YAML file at ``path``; a missing or unreadable file is an InputError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", file=str(path)) from None
    return loads(text, str(path))


def require_mapping(doc: Document) -> dict:
    """The document's data, which must be a mapping."""
    if not isinstance(doc.data, dict):
        kind = type(doc.data).__name__
        raise doc.error(f"expected a mapping of fields at the top level, got {kind}")
    return doc.data


def _model_at(model: Any, loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class reached by following ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) in (dict, list, tuple):
            args = typing.get_args(current)
            current = args[-1] if args else None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Optional[X] / X | None / Annotated[X, ...] -> X (the first model member of a union)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        for m in members:
            m = _unwrap(m)
            if isinstance(m, type) and issubclass(m, BaseModel):
                return m
        return members[0] if members else tp
    return tp


_PYDANTIC_TAG = re.compile(r"^(function-(before|after|wrap|plain)\[.*\]|[a-z-]+\[.*\])$")


def _is_pydantic_tag(part, doc: Document, prefix: tuple) -> bool:
    """Whether a location part is pydantic's own union/validator tag rather than a user key."""
    return isinstance(part, str) and bool(_PYDANTIC_TAG.match(part)) and not _user_key(part, doc)


def _user_key(part: str, doc: Document) -> bool:
    return any(path and path[-1] == part for path in doc.lines)


def validation_problems(exc: ValidationError, doc: Document, model: type[BaseModel],
                        prefix: tuple = ()) -> list[Problem]:
    """One Problem per pydantic error, located in ``doc``, with typo suggestions for unknown keys."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_pydantic_tag(p, doc, prefix))
        full = (*prefix, *loc)
        msg = err["msg"]
        suggestion = None
        if err["type"] == "extra_forbidden" and loc:
            parent = _model_at(model, loc[:-1])
            allowed = sorted(parent.model_fields) if parent else []
            suggestion = did_you_mean(str(loc[-1]), allowed)
            msg = "unknown field" + (f"; expected one of: {', '.join(allowed)}" if allowed else "")
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        problems.append(doc.problem(msg, full, suggestion))
    return problems
