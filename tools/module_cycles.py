"""Prints the module cycles of every crate under `crates/*/src`; exits 1 if there are any.

    python3 tools/module_cycles.py [--skip-tests] [WORKSPACE]

WORKSPACE defaults to the checkout this file is in. Nothing is printed when there is no
cycle. Python 3.11, standard library only; it reads the sources as text (no cargo, no
build), in well under a second for the workspace.

Modules. Each crate root (`src/lib.rs`, `src/main.rs`, `src/bin/*.rs`) is a tree of its
own whose root is `crate`. `mod x;` in a file declares the module `x`, read from `x.rs` or
`x/mod.rs` beside a crate root or a `mod.rs`, and under the directory named after the file
otherwise (`a.rs` declares `a/x.rs`). A module is a file: inline `mod x { ... }` blocks
(the unit tests, mostly) belong to the file's module.

References. Every path that starts with `crate::`, `super::` or `self::`, in `use` trees
(braces expanded) and in code, and every path whose first segment is a child module of the
file's module (`use x::Item;` in a parent). Comments, strings and character literals are
skipped; so are bare names (an item used by its imported name counts once, at its `use`).
A path is followed module by module as far as it names modules; where a segment names
something the module imported with `use` (`pub use` or not), the import is followed to the
module it comes from, so `crate::Error` re-exported by `lib.rs` from `error.rs` is a
reference to `error`, not to the crate root. `super::` inside inline modules counts the
inline levels first. A `mod` declaration is not a reference, and neither is a `pub use`
of a module's own descendants (a facade publishing its children's items depends on
nothing). `--skip-tests` leaves out `#[cfg(test)]` modules; by default they count.

Edges (granularity). The graph links a module only with its siblings and its children,
so that each cycle shows the level at which the design goes round in a circle. A reference
from module A to module B (A != B) adds at most one edge:

- B is neither inside A nor around it: from the ancestor-or-self of A to the
  ancestor-or-self of B that are children of their lowest common ancestor (`a::x` using
  `crate::b::y` is `a -> b`; two siblings give an edge between themselves);
- A contains B (a parent uses a descendant, e.g. calls `x::run()`): from A to the
  ancestor-or-self of B that is a child of A;
- B contains A (a child uses what its parent or the crate root defines, e.g.
  `super::Item`, or `crate::App` defined in `lib.rs`): no edge. A module lives in its
  ancestors' namespace and may extend it (the app crate's use cases are `impl App` blocks
  in its modules, beside the `App` that `lib.rs` defines); a circle worth breaking is
  between modules side by side, which the first rule catches at every level.

A cycle of this graph lies among the children of one module. Every elementary cycle is
printed (at most 1,000 per crate root), with one reference (file:line) behind each edge;
a crate root without cycles prints nothing. Exit status: 0 without cycles, 1 with, 2 when
WORKSPACE holds no `crates/*/src`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

MAX_CYCLES = 1000

TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*)
  | (?P<raw_string>b?r(?P<hashes>\#*)")
  | (?P<string>b?")
  | (?P<char>b?'(?:[^'\\\n]|\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.))')
  | (?P<lifetime>'[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>\$?(?:r\#)?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<path_sep>::)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)

ITEM_KEYWORDS = {"fn", "struct", "enum", "trait", "type", "const", "static", "union"}


@dataclass
class Token:
    text: str
    line: int


@dataclass
class UseImport:
    """`use path as name;` at file level: `name` stands for `segments`."""

    segments: list[str]


@dataclass
class Reference:
    """A path used in a module's file."""

    segments: list[str]
    depth: int  # inline modules around it
    line: int
    text: str
    reexport: bool = False  # in a `pub use`


@dataclass
class Module:
    path: tuple[str, ...]
    file: Path
    children: dict[str, tuple[str, ...]] = field(default_factory=dict)
    imports: dict[str, UseImport] = field(default_factory=dict)
    globs: list[list[str]] = field(default_factory=list)
    items: set[str] = field(default_factory=set)
    references: list[Reference] = field(default_factory=list)


def tokenize(text: str) -> list[Token]:
    """Identifiers, `::` and punctuation with their line numbers; no comments, no
    literals."""
    tokens: list[Token] = []
    pos, line, end = 0, 1, len(text)
    while pos < end:
        m = TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - `.` matches anything
            break
        kind = m.lastgroup
        if kind == "hashes":
            kind = "raw_string"
        start = pos
        pos = m.end()
        if kind == "block_comment":
            depth = 1
            while depth and pos < end:
                if text.startswith("/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif text.startswith("*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
        elif kind == "raw_string":
            close = '"' + m.group("hashes")
            found = text.find(close, pos)
            pos = end if found < 0 else found + len(close)
        elif kind == "string":
            while pos < end and text[pos] != '"':
                pos += 2 if text[pos] == "\\" else 1
            pos += 1
        elif kind in ("ident", "path_sep", "punct"):
            tokens.append(Token(m.group(kind), line))
        line += text.count("\n", start, pos)
    return tokens


def parse_use_tree(tokens: list[Token], i: int, prefix: list[str], out: list) -> int:
    """Parses one use tree at `tokens[i]`, appending (segments, alias, glob) to `out`;
    returns the index after it."""
    segments = list(prefix)
    while i < len(tokens):
        t = tokens[i].text
        if t == "{":
            i += 1
            while i < len(tokens) and tokens[i].text != "}":
                i = parse_use_tree(tokens, i, segments, out)
                if i < len(tokens) and tokens[i].text == ",":
                    i += 1
            return i + 1
        if t == "*":
            out.append((segments, None, True))
            return i + 1
        if t == "::":
            i += 1
            continue
        if t in (",", "}", ";"):
            break
        if t == "as":
            alias = tokens[i + 1].text if i + 1 < len(tokens) else "_"
            out.append((segments, alias, False))
            return i + 2
        if t == "self" and prefix and len(segments) == len(prefix):
            # `use a::{self, b}`: `self` is `a` itself.
            i += 1
            alias = prefix[-1]
            if i < len(tokens) and tokens[i].text == "as":
                alias = tokens[i + 1].text if i + 1 < len(tokens) else "_"
                i += 2
            out.append((segments, alias, False))
            return i
        segments = segments + [t]
        i += 1
    if segments and len(segments) > len(prefix):
        out.append((segments, segments[-1], False))
    return i


def is_cfg_test(tokens: list[Token], i: int) -> bool:
    """Whether the item at `tokens[i]` (`mod`, after `pub` if any) is `#[cfg(test)]`."""
    j = i - 1
    while j >= 0 and tokens[j].text in ("pub", ")", "crate", "super", "(", "in"):
        j -= 1
    texts = [t.text for t in tokens[max(0, j - 6) : j + 1]]
    return texts[-7:] == ["#", "[", "cfg", "(", "test", ")", "]"]


def mod_declarations(tokens: list[Token], skip_tests: bool) -> list[str]:
    """The names of the `mod x;` declarations at file level."""
    names: list[str] = []
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.text == "{":
            depth += 1
        elif tok.text == "}":
            depth -= 1
        elif (
            tok.text == "mod"
            and depth == 0
            and i + 2 < len(tokens)
            and tokens[i + 2].text == ";"
            and not (skip_tests and is_cfg_test(tokens, i))
        ):
            names.append(tokens[i + 1].text)
    return names


def read_module(module: Module, tokens: list[Token], skip_tests: bool) -> None:
    """Reads the references, imports and items of `module` from its file's tokens (its
    children already known)."""
    inline: list[int] = []  # brace depth at which each open inline module started
    depth = 0
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        t = tok.text
        prev = tokens[i - 1].text if i else ""
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            if inline and depth == inline[-1]:
                inline.pop()
        elif t == "mod" and i + 2 < n and tokens[i + 2].text in (";", "{"):
            if tokens[i + 2].text == ";":
                i += 3
                continue
            if skip_tests and is_cfg_test(tokens, i):
                # Skip to the matching brace.
                level, i = 0, i + 2
                while i < n:
                    level += {"{": 1, "}": -1}.get(tokens[i].text, 0)
                    i += 1
                    if level == 0:
                        break
                continue
            inline.append(depth)
            depth += 1
            i += 3
            continue
        elif t == "use" and prev != "::" and i + 1 < n and tokens[i + 1].text != "<":
            found: list = []
            j = i + 1
            if j < n and tokens[j].text == "::":
                j += 1
            j = parse_use_tree(tokens, j, [], found)
            public = is_pub(tokens, i)
            for segments, alias, glob in found:
                text = "use " + "::".join(segments) + ("::*" if glob else "")
                module.references.append(
                    Reference(segments, len(inline), tok.line, text, public)
                )
                if depth == 0:
                    if glob:
                        module.globs.append(segments)
                    elif alias and alias != "_":
                        module.imports[alias] = UseImport(segments)
            i = j
            continue
        elif t in ITEM_KEYWORDS and depth == 0 and i + 1 < n:
            module.items.add(tokens[i + 1].text)
        elif t == "macro_rules" and depth == 0 and i + 2 < n:
            module.items.add(tokens[i + 2].text)
        elif (
            (
                t in ("crate", "$crate", "super", "self")
                or (t in module.children and prev != ".")
            )
            and prev not in ("::", "in")
            and i + 1 < n
            and tokens[i + 1].text == "::"
        ):
            segments = ["crate" if t == "$crate" else t]
            j = i + 1
            while j + 1 < n and tokens[j].text == "::" and is_ident(tokens[j + 1].text):
                segments.append(tokens[j + 1].text)
                j += 2
            module.references.append(
                Reference(segments, len(inline), tok.line, "::".join(segments))
            )
            i = j
            continue
        i += 1


def is_pub(tokens: list[Token], i: int) -> bool:
    """Whether the item at `tokens[i]` has a `pub` or `pub(...)` visibility."""
    j = i - 1
    if j >= 0 and tokens[j].text == ")":
        while j >= 0 and tokens[j].text != "(":
            j -= 1
        j -= 1
    return j >= 0 and tokens[j].text == "pub"


def is_ident(text: str) -> bool:
    return text[:1].isalpha() or text[:1] == "_"


class CrateTree:
    """The modules of one crate root."""

    def __init__(self, root_file: Path, skip_tests: bool) -> None:
        self.root_file = root_file
        self.src = root_file.parent
        self.modules: dict[tuple[str, ...], Module] = {}
        self.skip_tests = skip_tests
        self._load((), root_file, root_file.parent)

    def _load(self, path: tuple[str, ...], file: Path, child_dir: Path) -> None:
        module = Module(path, file)
        self.modules[path] = module
        tokens = tokenize(file.read_text(encoding="utf-8", errors="replace"))
        # Children first, so that `x::` in the file is known to name a child.
        for name in mod_declarations(tokens, self.skip_tests):
            for candidate in (child_dir / f"{name}.rs", child_dir / name / "mod.rs"):
                if candidate.is_file():
                    module.children[name] = path + (name,)
                    break
        read_module(module, tokens, self.skip_tests)
        for name, child in module.children.items():
            child_file = child_dir / f"{name}.rs"
            if child_file.is_file():
                self._load(child, child_file, child_dir / name)
            else:
                self._load(child, child_dir / name / "mod.rs", child_dir / name)

    def resolve(
        self, origin: tuple[str, ...], depth: int, segments: list[str], hops: int = 0
    ) -> tuple[str, ...] | None:
        """The module a path used in `origin` (`depth` inline modules deep) reaches, or
        None for a path outside the crate."""
        if not segments or hops > 16:
            return None
        first, rest = segments[0], segments[1:]
        if first == "crate":
            current: tuple[str, ...] = ()
        elif first == "super":
            ups = 1
            while rest and rest[0] == "super":
                ups += 1
                rest = rest[1:]
            ups -= depth  # the inline levels are the file's module
            if ups > len(origin):
                return None
            current = origin[: len(origin) - ups] if ups > 0 else origin
        elif first == "self":
            current = origin
        elif first in self.modules[origin].children:
            current = self.modules[origin].children[first]
        else:
            return None
        for k, seg in enumerate(rest):
            module = self.modules[current]
            if seg == "self":
                continue
            if seg in module.children:
                current = module.children[seg]
                continue
            target = self._follow(module, seg, rest[k + 1 :], hops)
            return target if target is not None else current
        return current

    def _follow(
        self, module: Module, name: str, rest: list[str], hops: int
    ) -> tuple[str, ...] | None:
        """Where `name` used through `module` comes from, if `module` imports it."""
        if name in module.items:
            return None
        imported = module.imports.get(name)
        if imported is not None:
            return self.resolve(module.path, 0, imported.segments + rest, hops + 1)
        for glob in module.globs:
            source = self.resolve(module.path, 0, glob, hops + 1)
            if source is None or source == module.path:
                continue
            src = self.modules[source]
            if name in src.items or name in src.children or name in src.imports:
                return self.resolve(source, 0, ["self", name] + rest, hops + 1)
        return None


@dataclass
class Edge:
    line: int
    file: Path
    text: str


def family_edge(
    a: tuple[str, ...], b: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The edge a reference from module `a` to module `b` gives (see the docstring)."""
    if a == b:
        return None
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    if common == len(b):  # b contains a: a module may use its ancestors' items
        return None
    if common == len(a):  # a contains b
        return a, b[: common + 1]
    return a[: common + 1], b[: common + 1]


def graph_of(tree: CrateTree) -> dict[tuple, dict[tuple, Edge]]:
    graph: dict[tuple, dict[tuple, Edge]] = defaultdict(dict)
    for module in tree.modules.values():
        for ref in module.references:
            target = tree.resolve(module.path, ref.depth, ref.segments)
            if target is None:
                continue
            if ref.reexport and target[: len(module.path)] == module.path:
                continue  # a parent publishing its children's items
            edge = family_edge(module.path, target)
            if edge is None:
                continue
            src, dst = edge
            graph[src].setdefault(dst, Edge(ref.line, module.file, ref.text))
    return graph


def strongly_connected(graph: dict[tuple, dict[tuple, Edge]]) -> list[set[tuple]]:
    """Tarjan's components with more than one node (no self edges exist)."""
    index: dict[tuple, int] = {}
    low: dict[tuple, int] = {}
    stack: list[tuple] = []
    on_stack: set[tuple] = set()
    found: list[set[tuple]] = []
    counter = 0
    nodes = sorted(set(graph) | {d for e in graph.values() for d in e})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, {})))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def elementary_cycles(graph: dict[tuple, dict[tuple, Edge]]) -> list[list[tuple]]:
    """Every elementary cycle, each starting at its smallest module, at most
    MAX_CYCLES."""
    cycles: list[list[tuple]] = []
    for component in strongly_connected(graph):
        order = sorted(component)
        rank = {node: k for k, node in enumerate(order)}
        for start in order:
            path = [start]
            on_path = {start}
            work = [iter(sorted(d for d in graph.get(start, {}) if d in component))]
            while work:
                for nxt in work[-1]:
                    if nxt == start:
                        cycles.append(list(path))
                        if len(cycles) >= MAX_CYCLES:
                            return cycles
                    elif rank[nxt] > rank[start] and nxt not in on_path:
                        path.append(nxt)
                        on_path.add(nxt)
                        work.append(
                            iter(
                                sorted(d for d in graph.get(nxt, {}) if d in component)
                            )
                        )
                        break
                else:
                    work.pop()
                    on_path.discard(path.pop())
    return sorted(cycles)


def name(path: tuple[str, ...]) -> str:
    return "::".join(path) if path else "crate"


def crate_roots(workspace: Path) -> list[Path]:
    roots = []
    for src in sorted(workspace.glob("crates/*/src")):
        for candidate in (src / "lib.rs", src / "main.rs"):
            if candidate.is_file():
                roots.append(candidate)
        roots.extend(sorted((src / "bin").glob("*.rs")))
    return roots


def report(root_file: Path, workspace: Path, skip_tests: bool) -> list[str]:
    """The lines printed for one crate root (none without cycles)."""
    tree = CrateTree(root_file, skip_tests)
    graph = graph_of(tree)
    cycles = elementary_cycles(graph)
    if not cycles:
        return []
    where = (
        root_file.relative_to(workspace)
        if root_file.is_relative_to(workspace)
        else root_file
    )
    plural = "" if len(cycles) == 1 else "s"
    more = " (stopped counting)" if len(cycles) >= MAX_CYCLES else ""
    lines = [f"{where}: {len(cycles)} module cycle{plural}{more}"]
    for cycle in cycles:
        lines.append("  " + " -> ".join(name(m) for m in cycle + [cycle[0]]))
        for k, src in enumerate(cycle):
            dst = cycle[(k + 1) % len(cycle)]
            edge = graph[src][dst]
            file = edge.file.relative_to(tree.src)
            lines.append(
                f"    {name(src)} -> {name(dst)}: {file}:{edge.line} {edge.text}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "workspace",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parents[1],
        help="the workspace root (default: this checkout)",
    )
    parser.add_argument(
        "--skip-tests", action="store_true", help="leave out #[cfg(test)] modules"
    )
    args = parser.parse_args(argv)
    workspace = args.workspace.resolve()
    roots = crate_roots(workspace)
    if not roots:
        print(f"no crates/*/src under {workspace}", file=sys.stderr)
        return 2
    found = False
    for root_file in roots:
        lines = report(root_file, workspace, args.skip_tests)
        if lines:
            found = True
            print("\n".join(lines))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
