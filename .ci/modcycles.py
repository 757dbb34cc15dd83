#!/usr/bin/env python3
"""Finds import cycles between the files of each crate (issue 11: "no import cycles between
the files of a crate").

A file depends on another when it names an item that lives there: `use crate::a::B`,
`super::b::C`, `self::d::E`, or a child module's path. Re-exports are followed (`crate::Error`
re-exported by lib.rs from error.rs is a dependency on error.rs, not on lib.rs); a `mod`
declaration or a `pub use` re-export alone is not a dependency (a module's facade is not its
use of the items). Inline `mod x { ... }` blocks count as part of their file. Test-only files (`#[cfg(test)] mod tests;`) and inline
`mod tests { ... }` blocks are left out: they only use what they test. A cycle is a set of
two or more files that reach each other (a strongly connected component).

Usage: modcycles.py [CRATES_DIR]   (default: crates). Exits 1 when a cycle exists.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Blanks comments and string/char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            i += len(re.match(r"'(\\.|[^\\'])'", text[i:]).group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


# `#[cfg(test)]`, `#[cfg(all(test, feature = "x"))]`, ...; not `#[cfg(not(test))]`.
TEST_CFG = r"#\[cfg\((?:test|all\((?:[^()\]]|\([^()]*\))*?\btest\b(?:[^()\]]|\([^()]*\))*\))\)\]"


def remove_test_blocks(code):
    """Drops `#[cfg(test)] mod name { ... }` blocks (inline test modules)."""
    while True:
        m = re.search(TEST_CFG + r"\s*(#\[[^\]]*\]\s*)*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", code)
        if not m:
            return code
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        code = code[:m.start()] + code[i:]


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}}` -> [(['a','b'], 'b'), (['a','c','d'], 'd'), (['a','c','e'], 'f')]."""
    tree = re.sub(r"\s+", "", tree)
    results = []

    def walk(prefix, s):
        # s is one tree: path[::{...}] | path as alias | path::*
        depth = 0
        for i, ch in enumerate(s):
            if ch == "{":
                if depth == 0:
                    head = s[:i].rstrip(":")
                    inner = s[i + 1:s.rfind("}")]
                    base = prefix + [p for p in head.split("::") if p]
                    for part in split_top(inner):
                        walk(base, part)
                    return
                depth += 1
            elif ch == "}":
                depth -= 1
        alias = None
        if "as" in s and re.search(r"as" + IDENT + "$", s):
            m = re.match(r"(.*?)as(" + IDENT + ")$", s)
            if m and not m.group(1).endswith("::"):
                s, alias = m.group(1), m.group(2)
        parts = prefix + [p for p in s.split("::") if p]
        if not parts:
            return
        if parts[-1] == "self":
            parts = parts[:-1]
        results.append((parts, alias or (parts[-1] if parts else None)))

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    walk([], tree)
    return results


class Crate:
    def __init__(self, root_file):
        self.files = {}  # module path tuple -> file
        self.code = {}  # file -> code
        self.test_only = set()
        self.load(root_file, ())

    def load(self, path, modpath, test_only=False):
        with open(path, encoding="utf-8") as f:
            code = strip_comments_and_strings(f.read())
        self.files[modpath] = path
        if test_only:
            self.test_only.add(path)
        base = os.path.dirname(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem not in ("lib", "main", "mod") and modpath:
            base = os.path.join(base, stem)
        for m in re.finditer(r"(" + TEST_CFG + r"\s*)?(#\[[^\]]*\]\s*)*(pub(\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", code):
            name = m.group(5)
            for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
                if os.path.exists(cand):
                    self.load(cand, modpath + (name,), test_only or bool(m.group(1)))
                    break
        self.code[path] = remove_test_blocks(code)

    def module_of(self, path):
        for mod, p in self.files.items():
            if p == path:
                return mod
        raise KeyError(path)

    def uses(self, path):
        """(full path segments, visible name, is_pub, position) of each `use` in the file."""
        out = []
        for m in re.finditer(r"(pub(\([^)]*\))?\s+)?use\s+([^;]+);", self.code[path]):
            for parts, alias in expand_use_tree(m.group(3)):
                out.append((parts, alias, bool(m.group(1)), m.start()))
        return out

    def inline_path(self, path, position):
        """Names of the inline `mod x { ... }` blocks around `position` in the file."""
        code = self.code[path]
        names = []
        for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", code):
            if m.start() > position:
                break
            depth, i = 1, m.end()
            while i < len(code) and depth:
                depth += {"{": 1, "}": -1}.get(code[i], 0)
                i += 1
            if i > position:
                names.append(m.group(1))
        return names

    def absolute(self, current, parts):
        """Segments relative to module `current` -> absolute segments, or None if external."""
        if not parts:
            return None
        if parts[0] == "crate":
            return list(parts[1:])
        if parts[0] in ("self", "super"):
            mod = list(current)
            rest = list(parts)
            while rest and rest[0] in ("self", "super"):
                if rest[0] == "super":
                    if not mod:
                        return None
                    mod.pop()
                rest.pop(0)
            return mod + rest
        if tuple(current) + (parts[0],) in self.files:
            return list(current) + list(parts)
        return None

    def resolve(self, segments, seen=None):
        """The file defining the item at absolute `segments` (following re-exports)."""
        seen = seen or set()
        i = len(segments)
        while i > 0 and tuple(segments[:i]) not in self.files:
            i -= 1
        mod = tuple(segments[:i])
        file = self.files[mod]
        rest = segments[i:]
        if not rest or (mod, rest[0]) in seen:
            return file
        seen.add((mod, rest[0]))
        for parts, alias, _, pos in self.uses(file):
            # Only the file's own `use`s name items of its module, not those of inline modules.
            if alias == rest[0] and parts[-1] != "*" and not self.inline_path(file, pos):
                target = self.absolute(mod, parts)
                if target is not None:
                    return self.resolve(target + rest[1:], seen)
        return file

    def edges(self, why=None):
        graph = {p: set() for p in self.code if p not in self.test_only}
        for file in graph:
            mod = self.module_of(file)
            # Re-exports (`pub use`) are the facade, not a use; a `use` statement's paths are
            # taken from the statement, not again as inline paths.
            refs = [(parts, pos) for parts, _, is_pub, pos in self.uses(file) if not is_pub]
            code = re.sub(r"(pub(\([^)]*\))?\s+)?use\s+[^;]+;", lambda m: " " * len(m.group(0)), self.code[file])
            for m in re.finditer(r"\b((?:crate|super|self)(?:::" + IDENT + r")+)", code):
                refs.append((m.group(1).split("::"), m.start()))
            # Paths that start with a child module's name (`ipns::IpnsValidator`).
            for m in re.finditer(r"(?<![\w:])(" + IDENT + r")::(?=" + IDENT + ")", code):
                if mod + (m.group(1),) in self.files:
                    tail = re.match(r"(" + IDENT + r")((?:::" + IDENT + r")+)", code[m.start():])
                    if tail:
                        refs.append((tail.group(0).split("::"), m.start()))
            for parts, pos in refs:
                parts = [p for p in parts if p != "*"]
                here = list(mod) + self.inline_path(file, pos)
                target = self.absolute(here, parts)
                if target is None:
                    continue
                dest = self.resolve(target)
                if dest != file and dest in graph:
                    graph[file].add(dest)
                    if why is not None:
                        why.setdefault((file, dest), "::".join(parts))
        return graph


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def self_test():
    """Checks the checker on a small crate: a real cycle is found (through a child-module
    path, `super::` and an inline module), re-exports and test modules are not cycles."""
    import tempfile

    files = {
        "lib.rs": "mod a;\nmod b;\nmod c;\nmod d;\nmod e;\nmod f;\npub use a::A;\npub use b::B;\npub const K: u8 = 1;\n",
        # a -> b (crate path), b -> a (inline module's super::super): a cycle.
        "a.rs": "pub struct A(crate::b::B);\n",
        "b.rs": "pub struct B;\nmod inner {\n    fn f() -> super::super::a::A { todo!() }\n}\n",
        # c -> lib.rs only through re-exports (A lives in a.rs) and K (lib.rs): no cycle with lib.rs.
        "c.rs": "use crate::A;\nfn k() -> u8 { crate::K }\n#[cfg(test)]\nmod tests;\n",
        "c/tests.rs": "use super::*;\n",
        # A string and a comment naming a path are not uses.
        "d.rs": "// crate::a::A\nconst S: &str = \"crate::b::B\";\n",
        # e -> f only in a test module gated with cfg(all(test, ...)): no cycle with f -> e.
        "e.rs": "pub struct E;\n#[cfg(all(test, feature = \"x\"))]\nmod tests {\n    fn f(_: crate::f::F) {}\n}\n",
        "f.rs": "pub struct F(crate::e::E);\n",
    }
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "demo", "src")
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
            with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                f.write(text)
        found = [[os.path.relpath(p, src) for p in comp] for comp in cycles(Crate(os.path.join(src, "lib.rs")).edges())]
    assert found == [["a.rs", "b.rs"]], found
    print("self-test passed")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    crates_dir = sys.argv[1] if len(sys.argv) > 1 else "crates"
    found = 0
    for name in sorted(os.listdir(crates_dir)):
        src = os.path.join(crates_dir, name, "src")
        roots = [os.path.join(src, r) for r in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, r))]
        bins = os.path.join(src, "bin")
        if os.path.isdir(bins):
            roots += [os.path.join(bins, f) for f in sorted(os.listdir(bins)) if f.endswith(".rs")]
        for root in roots:
            why = {}
            for comp in cycles(Crate(root).edges(why)):
                found += 1
                print(f"{name}: import cycle between " + ", ".join(os.path.relpath(p, src) for p in comp))
                for (a, b), path in sorted(why.items()):
                    if a in comp and b in comp:
                        print(f"    {os.path.relpath(a, src)} -> {os.path.relpath(b, src)} ({path})")
    if found:
        print(f"{found} import cycle(s) between files", file=sys.stderr)
        return 1
    print("no import cycles between the files of any crate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
