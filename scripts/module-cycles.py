#!/usr/bin/env python3
"""Fails when two modules of one crate import each other (directly or around a longer circle).

Every crate root of the workspace is read (`src/lib.rs`, `src/main.rs`, `src/bin/*.rs`, and
the `main.rs` of each multi-file test, bench or example target), its module tree followed
through `mod x;` (x.rs or x/mod.rs, or `#[path = ".."]`) and inline `mod x { .. }`, and every
`crate::..`, `super::..` and `self::..` path in code (comments and string literals are
skipped) becomes an edge from the module it is written in to the deepest module the path
names. An edge between a module and one of its ancestors is not a circle: a parent declares
its children, and a child is part of its parent. Any other edge is lifted to the two sibling
modules under the common ancestor (`a::x` using `b::y` is `a` using `b`), and a circle among
siblings at any level is reported with the lines that make it.

Usage: scripts/module-cycles.py [workspace root]   (exit 1 when a circle is found)
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

# Comments, string and char literals (kept apart so that paths inside them are ignored).
TOKEN = re.compile(
    r"""
      (?P<line_comment>//[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<raw_string>b?r(?P<hashes>\#*)")
    | (?P<string>b?"(?:\\.|[^"\\])*")
    | (?P<char>b?'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^'\\\n])')
    """,
    re.VERBOSE | re.DOTALL,
)
IDENT = r"(?:r\#)?[A-Za-z_][A-Za-z0-9_]*"
MOD_DECL = re.compile(
    rf"(?<![A-Za-z0-9_])(?P<attrs>(?:\#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(?P<name>{IDENT})\s*(?P<end>[;{{])"
)
PATH_ATTR = re.compile(r'\#\[path\s*=\s*"(?P<path>[^"]+)"\s*\]')
USE_STMT = re.compile(r"\buse\s+(?P<tree>[^;]*);")
# A path used in code outside `use` items: `crate::a::b`, `super::super::c`, `self::d`.
CODE_PATH = re.compile(rf"(?<![A-Za-z0-9_:])(?P<path>(?:crate|super|self)(?:\s*::\s*{IDENT})+)")


def blank(text):
    """The text with comments and literals replaced by spaces (line numbers kept)."""
    out = []
    pos = 0
    while True:
        m = TOKEN.search(text, pos)
        if not m:
            out.append(text[pos:])
            break
        out.append(text[pos : m.start()])
        if m.group("block_comment"):
            depth, i = 1, m.end()
            while depth and i < len(text):
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            end = i
        elif m.group("raw_string"):
            close = '"' + m.group("hashes")
            found = text.find(close, m.end())
            end = len(text) if found < 0 else found + len(close)
        else:
            end = m.end()
        # Blank, not drop: offsets and line numbers must still match the original text.
        out.append(re.sub(r"[^\n]", " ", text[m.start() : end]))
        pos = end
    return "".join(out)


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (globs and renames dropped)."""
    tree = re.sub(r"\s+as\s+" + IDENT, "", tree)
    tree = re.sub(r"\s+", "", tree)

    def parse(s, prefix):
        paths, depth, start = [], 0, 0
        parts = []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0 and part.endswith("}"):
                head = part[:brace].rstrip(":")
                paths += parse(part[brace + 1 : -1], prefix + ([head] if head else []))
            else:
                paths.append("::".join(prefix + [part]))
        return paths

    return parse(tree, [])


class Crate:
    def __init__(self, workspace, root_file):
        self.workspace = workspace
        self.root_file = root_file
        self.modules = set()  # module paths as tuples; () is the crate root
        self.uses = []  # (from_module, path_segments, file, line)

    def load(self):
        self.read_file(self.root_file, (), self.root_file.parent)
        return self

    def read_file(self, file, module, dir_for_children):
        self.modules.add(module)
        original = file.read_text(encoding="utf-8")
        text = blank(original)
        # Inline modules: find `mod x {` spans and the module each offset belongs to.
        spans = []  # (start, end, name)
        for m in MOD_DECL.finditer(text):
            name = m.group("name").removeprefix("r#")
            attrs = original[m.start("attrs") : m.end("attrs")]
            if m.group("end") == "{":
                depth, i = 1, m.end()
                while depth and i < len(text):
                    if text[i] == "{":
                        depth += 1
                    elif text[i] == "}":
                        depth -= 1
                    i += 1
                spans.append((m.end(), i, name))
            else:
                spans.append((m.end(), m.end(), name))
                owner = self.module_at(module, spans[:-1], m.start())
                self.load_child(owner, name, attrs, file, dir_for_children, module)

        for start, end, _ in spans:
            if start != end:
                self.modules.add(self.module_at(module, spans, start))

        def record(path, offset):
            line = text.count("\n", 0, offset) + 1
            owner = self.module_at(module, spans, offset)
            self.uses.append((owner, [s.strip() for s in path.split("::")], file, line))

        use_spans = []
        for m in USE_STMT.finditer(text):
            use_spans.append((m.start(), m.end()))
            for path in expand_use_tree(m.group("tree")):
                first = path.split("::", 1)[0]
                if first in ("crate", "super", "self"):
                    record(path, m.start())
        for m in CODE_PATH.finditer(text):
            if any(s <= m.start() < e for s, e in use_spans):
                continue
            record(re.sub(r"\s+", "", m.group("path")), m.start())

    def module_at(self, file_module, spans, offset):
        """The module whose code contains `offset` (innermost inline `mod` block)."""
        path = list(file_module)
        enclosing = [(s, e, n) for s, e, n in spans if s != e and s <= offset < e]
        for _, _, name in sorted(enclosing):
            path.append(name)
        return tuple(path)

    def load_child(self, owner, name, attrs, file, dir_for_children, file_module):
        explicit = PATH_ATTR.search(attrs)
        child = owner + (name,)
        inline_dirs = owner[len(file_module) :]
        if explicit:
            target = (file.parent / explicit.group("path")).resolve()
            self.read_file(target, child, target.parent)
            return
        base = dir_for_children.joinpath(*inline_dirs)
        for target in (base / f"{name}.rs", base / name / "mod.rs"):
            if target.exists():
                self.read_file(target, child, base / name)
                return
        print(f"warning: {file}: module {name} not found", file=sys.stderr)

    def resolve(self, here, segments):
        """The deepest module a path starting with crate/super/self names."""
        current = list(here)
        rest = list(segments)
        while rest and rest[0] in ("crate", "super", "self"):
            head = rest.pop(0)
            if head == "crate":
                current = []
            elif head == "super":
                current = current[:-1]
        for segment in rest:
            candidate = tuple(current + [segment])
            if candidate in self.modules:
                current = list(candidate)
            else:
                break
        return tuple(current)

    def sibling_edges(self):
        """Edges between sibling modules, with the uses that make each one."""
        edges = defaultdict(list)
        for here, segments, file, line in self.uses:
            there = self.resolve(here, segments)
            common = 0
            while common < min(len(here), len(there)) and here[common] == there[common]:
                common += 1
            if common == len(here) or common == len(there):
                continue  # the same module, or a module and its ancestor
            a, b = here[: common + 1], there[: common + 1]
            edges[(a, b)].append(f"{file.relative_to(self.workspace)}:{line}: {'::'.join(segments)}")
        return edges


def find_cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph.setdefault(b, set())
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def crate_roots(workspace):
    skip = {"target", ".git", "fuzz"}
    for path in sorted(workspace.rglob("*.rs")):
        rel = path.relative_to(workspace)
        if skip & set(rel.parts):
            continue
        parts = rel.parts
        if len(parts) >= 2 and parts[-2] == "src" and parts[-1] in ("lib.rs", "main.rs"):
            yield path
        elif len(parts) >= 3 and parts[-3] == "src" and parts[-2] == "bin":
            yield path
        elif len(parts) >= 3 and parts[-3] in ("tests", "benches", "examples") and parts[-1] == "main.rs":
            yield path


def main():
    workspace = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    failed = False
    crates = 0
    for root in crate_roots(workspace):
        crates += 1
        crate = Crate(workspace, root).load()
        edges = crate.sibling_edges()
        for component in find_cycles(edges):
            failed = True
            names = ["::".join(m) for m in component]
            print(f"{root.relative_to(workspace)}: modules import each other: {' <-> '.join(names)}")
            members = set(component)
            for (a, b), sites in sorted(edges.items()):
                if a in members and b in members:
                    print(f"  {'::'.join(a)} -> {'::'.join(b)}")
                    for site in sites[:3]:
                        print(f"    {site}")
    if failed:
        print("Break the circle: move what both sides need into the module it belongs to, so "
              "the imports run one way.")
        return 1
    print(f"module-cycles: no module circles in {crates} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
