"""The layering rules of the project, checked by walking every import with ast.

- only `bot/discord/` and `cogs/` import discord;
- only `bot/engine/` and `models/` import torch;
- `models/` imports nothing from `bot/`;
- no import cycle between the project's modules, counting every import in a file: inside
  `if TYPE_CHECKING:` and inside functions too (a cycle there is still a tangle to read).

`check(root)` returns the broken rules as sentences; an empty list means the layout holds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("bot", "cogs", "models")
# (what is imported, the only folders allowed to import it)
EXCLUSIVE_IMPORTS = (
    ("discord", ("bot/discord/", "cogs/")),
    ("torch", ("bot/engine/", "models/")),
)
# (folder, top-level package it must never import)
FORBIDDEN = (("models/", "bot"),)


@dataclass(frozen=True)
class Import:
    """One imported module name, as written in `path` at `line`."""

    path: str  # relative to the root, with forward slashes
    line: int
    module: str


def module_name(path: str) -> str:
    """`bot/engine/worker.py` -> `bot.engine.worker`; a package's `__init__.py` -> the package."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def source_files(root: Path, packages: Iterable[str] = PACKAGES) -> Iterator[Path]:
    for package in packages:
        yield from sorted((root / package).rglob("*.py"))


def imports_of(root: Path, file: Path) -> list[Import]:
    """Every module `file` imports, wherever in the file the import statement stands."""
    relative = file.relative_to(root).as_posix()
    package = module_name(relative)
    if not relative.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), filename=relative)):
        if isinstance(node, ast.Import):
            found += [Import(relative, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from this file's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import name` may name a submodule: record both, resolve later.
            found.append(Import(relative, node.lineno, base))
            found += [Import(relative, node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def check(root: Path, packages: Iterable[str] = PACKAGES) -> list[str]:
    """The rules `root`'s source breaks, one sentence each (empty when it keeps them all)."""
    files = list(source_files(root, packages))
    modules = {module_name(f.relative_to(root).as_posix()) for f in files}
    problems: list[str] = []
    graph: dict[str, set[str]] = {}
    for file in files:
        edges = graph.setdefault(module_name(file.relative_to(root).as_posix()), set())
        for found in imports_of(root, file):
            top = found.module.split(".")[0]
            for name, allowed in EXCLUSIVE_IMPORTS:
                if top == name and not found.path.startswith(allowed):
                    problems.append(f"{found.path}:{found.line} imports {name}; only "
                                    f"{' and '.join(allowed)} may")
            for folder, package in FORBIDDEN:
                if found.path.startswith(folder) and top == package and found.module in modules:
                    problems.append(f"{found.path}:{found.line} imports {found.module}; "
                                    f"{folder} must not import {package}/")
            if found.module in modules:
                edges.add(found.module)
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return sorted(set(problems))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (closed: first == last) for each strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_through(graph, set(group)) for group in groups]


def _path_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A closed walk inside one strongly connected group, for the message."""
    start = min(group)
    path = [start]
    seen = {start}
    node = start
    while True:
        following = sorted(t for t in graph[node] if t in group)
        nxt = next((t for t in following if t == start and len(path) > 1), None) or \
            next((t for t in following if t not in seen), following[0])
        path.append(nxt)
        if nxt in seen:
            return path[path.index(nxt):]
        seen.add(nxt)
        node = nxt
