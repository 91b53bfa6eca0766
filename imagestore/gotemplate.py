"""The part of Go's text/template that ``docker inspect -f`` users write.

Supported: field paths (``{{.Config.Cmd}}``, ``{{.}}``, ``{{$}}``), pipelines
(``{{.RepoTags | json}}``), ``range`` (with ``$k, $v :=``), ``if``/``else``,
``with``, parenthesised calls, string and number literals, trim markers
(``{{-`` / ``-}}``), and the functions docker adds: json, join, split, index,
len, upper, lower, title, println, print, printf, truncate, pad, eq, ne, not,
and, or. Values print as Go prints the typed inspect struct (``[a b]``,
``map[k:v]``, ``[]`` for an empty Cmd). https://pkg.go.dev/text/template

Templates come from read-only users (``?format=``), so every run is bounded: the
template's length and nesting, its output (checked as it is produced, and before a
function such as ``pad`` builds a string), and its time (a deadline checked in every
loop). 61 characters of ``{{pad . N 0}}`` built a 286 MiB answer and nested ``range``
ran for 15 s before these bounds; now both stop with a TemplateLimit (a 400).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext


class TemplateError(ValueError):
    pass


class TemplateLimit(TemplateError):
    """A template went past one of the bounds below."""


MAX_OUTPUT = 1 << 20  # characters a template may produce (and any one value it builds)
MAX_SECONDS = 1.0  # how long one template may run
MAX_TEMPLATE = 8192  # characters of template: docker's own are a line or two
MAX_NESTING = 32  # blocks (range/if/with) inside each other, and parentheses


class _Budget:
    """What a run may still produce, and until when it may run."""

    def __init__(self, max_output: int, max_seconds: float) -> None:
        self.max_output = max_output
        self.left = max_output
        self.max_seconds = max_seconds
        self.deadline = time.monotonic() + max_seconds

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise TemplateLimit(gettext("template: the output is larger than the limit of %(max_output)s characters")
                                % {"max_output": self.max_output})

    def check_size(self, n: int) -> None:
        """A value about to be built (or just built) of ``n`` characters."""
        if n > self.max_output:
            raise TemplateLimit(gettext("template: a value is larger than the limit of %(max_output)s characters")
                                % {"max_output": self.max_output})

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"template: execution took longer than the limit of {self.max_seconds:g} s")


# Keys whose Go type is a slice or a map: null prints as [] or map[], as docker does.
_LIST_KEYS = {"Cmd", "Entrypoint", "Env", "RepoTags", "RepoDigests", "Layers", "OnBuild", "Shell"}
_MAP_KEYS = {"Labels", "Volumes", "ExposedPorts", "Data"}


@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    pipe: list[list[Any]]
    decl: list[str] = field(default_factory=list)


@dataclass
class _Block:
    kind: str  # range, if, with
    action: _Action
    body: list[Any] = field(default_factory=list)
    orelse: list[Any] = field(default_factory=list)


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<decl>:=)
      | (?P<punct>[()|,])
      | (?P<var>\$\w*(?:\.\w+)*)
      | (?P<field>(?:\.\w+)+|\.)
      | (?P<ident>[A-Za-z_]\w*)
    )""",
    re.VERBOSE,
)


def _tokens(source: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    source = source.strip()
    while pos < len(source):
        match = _TOKEN_RE.match(source, pos)
        if not match or match.end() == pos:
            raise TemplateError(gettext("template parsing error: unexpected %(source)s")
                                % {"source": repr(source[pos:])})
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _parse_pipe(tokens: list[tuple[str, str]], i: int = 0, stop: str | None = None,
                depth: int = 0) -> tuple[list[list[Any]], int]:
    if depth > MAX_NESTING:
        raise TemplateLimit(gettext("template: parentheses nest deeper than the limit of %(MAX_NESTING)s")
                            % {"MAX_NESTING": MAX_NESTING})
    commands: list[list[Any]] = [[]]
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "punct" and value == stop:
            return commands, i + 1
        if kind == "punct" and value == "|":
            commands.append([])
        elif kind == "punct" and value == "(":
            inner, i = _parse_pipe(tokens, i + 1, ")", depth + 1)
            commands[-1].append(("pipe", inner))
            continue
        elif kind == "punct":
            raise TemplateError(gettext("template parsing error: unexpected %(value)s") % {"value": repr(value)})
        else:
            commands[-1].append((kind, value))
        i += 1
    if stop is not None:
        raise TemplateError(gettext("template parsing error: unclosed left paren"))
    if any(not c for c in commands):
        raise TemplateError(gettext("template parsing error: missing value for command"))
    return commands, i


def _parse_action(source: str) -> _Action:
    tokens = _tokens(source)
    decl: list[str] = []
    for j, (kind, _value) in enumerate(tokens):
        if kind == "decl":
            decl = [v for k, v in tokens[:j] if k == "var"]
            tokens = tokens[j + 1:]
            break
    pipe, _ = _parse_pipe(tokens)
    return _Action(pipe, decl)


def _split_actions(template: str) -> list[str]:
    r"""Text and ``{{...}}`` pieces alternately, as ``re.split(r"(\{\{.*?\}\})")`` gives them,
    found with str.find so an unclosed ``{{{{{{...`` costs linear time, not quadratic."""
    pieces, pos = [], 0
    while (start := template.find("{{", pos)) >= 0 and (end := template.find("}}", start + 2)) >= 0:
        pieces += [template[pos:start], template[start:end + 2]]
        pos = end + 2
    pieces.append(template[pos:])
    return pieces


def parse(template: str) -> list[Any]:
    if len(template) > MAX_TEMPLATE:
        raise TemplateLimit(gettext("template: longer than the limit of %(MAX_TEMPLATE)s characters")
                            % {"MAX_TEMPLATE": MAX_TEMPLATE})
    pieces = _split_actions(template)
    root: list[Any] = []
    stack: list[tuple[_Block | None, list[Any]]] = [(None, root)]
    for n, piece in enumerate(pieces):
        if not (piece.startswith("{{") and piece.endswith("}}")):
            if "{{" in piece:
                raise TemplateError(gettext("template parsing error: unclosed action"))
            if piece:
                stack[-1][1].append(_Text(piece))
            continue
        inner = piece[2:-2]
        if inner.startswith("-") and (len(inner) == 1 or inner[1].isspace()):
            inner = inner[1:]
            _trim_previous(stack[-1][1])
        if inner.endswith("-") and (len(inner) == 1 or inner[-2].isspace()):
            inner = inner[:-1]
            if n + 1 < len(pieces):
                pieces[n + 1] = pieces[n + 1].lstrip()
        inner = inner.strip()
        if inner.startswith("/*"):
            continue
        word = inner.split(None, 1)[0] if inner else ""
        rest = inner[len(word):].strip()
        if word in ("range", "if", "with"):
            block = _Block(word, _parse_action(rest))
            stack[-1][1].append(block)
            stack.append((block, block.body))
            if len(stack) > MAX_NESTING + 1:
                raise TemplateLimit(gettext("template: blocks nest deeper than the limit of %(MAX_NESTING)s")
                                    % {"MAX_NESTING": MAX_NESTING})
        elif word == "else":
            current = stack[-1][0]
            if current is None:
                raise TemplateError(gettext("template parsing error: unexpected {{else}}"))
            stack[-1] = (current, current.orelse)
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError(gettext("template parsing error: unexpected {{end}}"))
            stack.pop()
        elif not inner:
            raise TemplateError(gettext("template parsing error: missing value for command"))
        else:
            stack[-1][1].append(_parse_action(inner))
    if len(stack) != 1:
        raise TemplateError(gettext("template parsing error: unexpected EOF"))
    return root


def _trim_previous(nodes: list[Any]) -> None:
    if nodes and isinstance(nodes[-1], _Text):
        nodes[-1].text = nodes[-1].text.rstrip()


def go_format(value: Any, key: str = "") -> str:
    if value is None:
        if key in _LIST_KEYS:
            return "[]"
        if key in _MAP_KEYS:
            return "map[]"
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def go_json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _truthy(value: Any) -> bool:
    return bool(value) if value is not None else False


class _Missing:
    def __str__(self) -> str:
        return "<no value>"


MISSING = _Missing()


def _field(value: Any, path: str) -> tuple[Any, str]:
    key = ""
    for name in [p for p in path.split(".") if p]:
        key = name
        if isinstance(value, dict):
            value = value.get(name, MISSING)
        elif value is None or value is MISSING:
            return MISSING, key
        else:
            raise TemplateError(gettext("template: can't evaluate field %(name)s in type %(type)s")
                                % {"name": name, "type": type(value).__name__})
    return value, key


def _pad(s: Any, left: Any, right: Any, budget: _Budget) -> str:
    text = go_format(s)
    budget.check_size(max(int(left), 0) + len(text) + max(int(right), 0))  # before building it
    return " " * int(left) + text + " " * int(right)


def _call(name: str, args: list[Any], budget: _Budget) -> Any:
    budget.tick()
    fns: dict[str, Callable[..., Any]] = {
        "json": lambda v: go_json(v),
        "join": lambda items, sep: sep.join(go_format(i) for i in (items or [])),
        "split": lambda s, sep: s.split(sep),
        "index": lambda v, *keys: _index(v, keys),
        "len": lambda v: len(v or []),
        "upper": lambda s: go_format(s).upper(),
        "lower": lambda s: go_format(s).lower(),
        "title": lambda s: go_format(s).title(),
        "println": lambda *a: " ".join(go_format(x) for x in a) + "\n",
        "print": lambda *a: "".join(go_format(x) for x in a),
        "printf": lambda fmt, *a: _printf(fmt, a),
        "truncate": lambda s, n: go_format(s)[: int(n)],
        "pad": lambda s, left, right: _pad(s, left, right, budget),
        "eq": lambda a, *b: any(a == x for x in b),
        "ne": lambda a, b: a != b,
        "not": lambda a: not _truthy(a),
        "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1]),
        "or": lambda *a: next((x for x in a if _truthy(x)), a[-1]),
    }
    if name not in fns:
        raise TemplateError(gettext('template parsing error: function "%(name)s" not defined') % {"name": name})
    try:
        result = fns[name](*args)
    except TemplateError:
        raise
    except (TypeError, KeyError, IndexError, ValueError, AttributeError) as exc:
        raise TemplateError(gettext("template: error calling %(name)s: %(exc)s")
                            % {"name": name, "exc": exc}) from None
    if isinstance(result, (str, list)):
        budget.check_size(len(result))  # what join, print, split... built, before it is used again
    return result


def _index(value: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list):
            value = value[int(key)]
        else:
            raise TemplateError(gettext("template: error calling index: cannot index a scalar"))
    return value


def _printf(fmt: str, args: tuple[Any, ...]) -> str:
    values = iter(args)

    def repl(match: re.Match[str]) -> str:
        verb = match.group(1)
        if verb == "%":
            return "%"
        value = next(values, None)
        if verb == "q":
            return json.dumps(go_format(value))
        return go_format(value)

    return re.sub(r"%([svdq%])", repl, fmt)


class _Scope:
    def __init__(self, root: Any, budget: _Budget) -> None:
        self.root = root
        self.vars: dict[str, Any] = {"$": root}
        self.budget = budget


def _operand(token: tuple[str, Any], dot: Any, scope: _Scope) -> tuple[Any, str]:
    kind, value = token
    if kind == "field":
        return (dot, "") if value == "." else _field(dot, value)
    if kind == "var":
        name, _, path = value.partition(".")
        if name not in scope.vars:
            raise TemplateError(gettext("template parsing error: undefined variable %(name)s") % {"name": repr(name)})
        return _field(scope.vars[name], path) if path else (scope.vars[name], "")
    if kind == "str":
        return (value[1:-1] if value.startswith("`") else json.loads(value)), ""
    if kind == "num":
        return (float(value) if "." in value else int(value)), ""
    if kind == "pipe":
        return _run_pipe(value, dot, scope)
    if kind == "ident":
        if value in ("true", "false"):
            return value == "true", ""
        if value == "nil":
            return None, ""
        return _call(value, [], scope.budget), ""
    raise TemplateError(gettext("template parsing error: unexpected %(value)s") % {"value": repr(value)})


def _run_pipe(pipe: list[list[Any]], dot: Any, scope: _Scope) -> tuple[Any, str]:
    result: Any = MISSING
    key = ""
    for n, command in enumerate(pipe):
        head_kind, head = command[0]
        if head_kind == "ident" and head not in ("true", "false", "nil"):
            args = [_operand(t, dot, scope)[0] for t in command[1:]]
            if n > 0:
                args.append(result)
            result, key = _call(head, args, scope.budget), ""
        else:
            if len(command) > 1:
                raise TemplateError(gettext("template: can't give argument to non-function %(head)s")
                                    % {"head": head})
            if n > 0:
                raise TemplateError(gettext("template: can't give argument to non-function %(head)s")
                                    % {"head": head})
            result, key = _operand(command[0], dot, scope)
    return result, key


def _emit(out: list[str], text: str, budget: _Budget) -> None:
    budget.spend(len(text))
    out.append(text)


def _render(nodes: list[Any], dot: Any, scope: _Scope, out: list[str]) -> None:
    budget = scope.budget
    for node in nodes:
        budget.tick()
        if isinstance(node, _Text):
            _emit(out, node.text, budget)
        elif isinstance(node, _Action):
            value, key = _run_pipe(node.pipe, dot, scope)
            if node.decl:
                scope.vars[node.decl[0]] = value
            else:
                _emit(out, str(value) if value is MISSING else go_format(value, key), budget)
        else:
            value, _key = _run_pipe(node.action.pipe, dot, scope)
            if value is MISSING:
                value = None
            if node.kind == "range":
                items: list[tuple[Any, Any]]
                if isinstance(value, dict):
                    items = [(k, value[k]) for k in sorted(value)]
                elif isinstance(value, list):
                    items = list(enumerate(value))
                elif value is None:
                    items = []
                else:
                    raise TemplateError(gettext("template: range can't iterate over %(value)s")
                                        % {"value": go_format(value)})
                if not items:
                    _render(node.orelse, dot, scope, out)
                for k, v in items:
                    if len(node.action.decl) == 2:
                        scope.vars[node.action.decl[0]], scope.vars[node.action.decl[1]] = k, v
                    elif len(node.action.decl) == 1:
                        scope.vars[node.action.decl[0]] = v
                    _render(node.body, v, scope, out)
            elif node.kind == "if":
                _render(node.body if _truthy(value) else node.orelse, dot, scope, out)
            else:  # with
                if _truthy(value):
                    _render(node.body, value, scope, out)
                else:
                    _render(node.orelse, dot, scope, out)


def render(template: str, data: Any, *, max_output: int = MAX_OUTPUT, max_seconds: float = MAX_SECONDS) -> str:
    """Execute ``template`` on ``data`` (the inspect JSON as Python objects), producing at
    most ``max_output`` characters within ``max_seconds`` (TemplateLimit past either)."""
    nodes = parse(template)
    out: list[str] = []
    _render(nodes, data, _Scope(data, _Budget(max_output, max_seconds)), out)
    return "".join(out)
