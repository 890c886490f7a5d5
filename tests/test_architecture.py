"""The shape of the code: no import cycles, one home per definition, small modules,
no machine-specific paths, and tests that never patch the codec's module globals.

These read the source (ast and text); nothing is imported or run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .conftest import REPO

PACKAGE = REPO / "mcodec"
TESTS = REPO / "tests"
MAX_LINES = 700
MAX_LINES_EXCEPT = {"mcodec/codec/bitstream.py": None,   # the format's one reader/writer: no limit
                    "mcodec/codec/codec.py": 600}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
              known: set[str]) -> set[str]:
    """The package modules an import statement (anywhere in `module`) loads by name."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # `from pkg import name`: name is a submodule, or an attribute of pkg.
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix
                 for a in node.names]
    out = set()
    for name in names:
        while name and name not in known:      # `import a.b.c` of a non-module tail
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports: top-level, inside functions, under
    TYPE_CHECKING, all counted (a lazy import is still a dependency)."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _imported(node, name, path.name == "__init__.py", known)
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _cycle_path(graph: dict[str, set[str]], comp: list[str]) -> str:
    """One concrete cycle inside the component `comp`, as 'a -> b -> a'."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return " -> ".join(reversed(path)) + f" -> {start}"
            if w not in prev:
                prev[w] = v
                todo.append(w)
    return ", ".join(comp)


def test_the_graph_sees_top_level_and_lazy_imports() -> None:
    graph = import_graph()
    assert "mcodec.eval.metrics" in graph["mcodec.eval.bench"]         # top level
    assert "mcodec.eval.learned" in graph["mcodec.eval.bench"]         # inside codec_factories
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_cycle_path(graph, c) for c in found)


def test_psnr_from_mse_is_defined_once_in_distortion() -> None:
    homes = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
             for line in p.read_text(encoding="utf-8").splitlines()
             if re.match(r"\s*def psnr_from_mse\b", line)]
    assert homes == ["mcodec/codec/distortion.py"]


ABSOLUTE = re.compile(r"(?<![\w.~-])/(work|home|tmp)(?=[/\s\"'`)]|$)")


def test_no_machine_specific_absolute_paths_in_the_package() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*")):
        if not path.is_file() or path.suffix in (".safetensors", ".pyc"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if ABSOLUTE.search(line):
                bad.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not bad, "absolute paths:\n" + "\n".join(bad)


# Built from pieces so that this file does not match itself.
_CODEC = "codec"
PATCHING = [
    re.compile(r"monkeypatch\.setattr\(\s*" + _CODEC + r"\b"),                    # the module object
    re.compile(r"monkeypatch\.setattr\(\s*[\"']mcodec\.codec\." + _CODEC + r"\."),  # by dotted name
    re.compile(r"(?<![\w.])setattr\(\s*" + _CODEC + r"\s*,"),
    re.compile(r"(?<![\w.])" + _CODEC + r"\.\w+\s*=(?!=)"),                        # codec.X = ...
    re.compile(r"mcodec\.codec\." + _CODEC + r"\.\w+\s*=(?!=)"),
]


def test_no_test_patches_the_codec_module() -> None:
    """Knobs are data (`EncoderTuning`, `EncodeOptions`), passed in; a test that rebinds
    a global of mcodec.codec.codec (here or in a child process it starts) tests a
    program nobody runs."""
    bad = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == Path(__file__).name:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(p.search(line) for p in PATCHING):
                bad.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not bad, "tests patching mcodec.codec.codec:\n" + "\n".join(bad)


def test_modules_stay_small() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        limit = MAX_LINES_EXCEPT.get(rel, MAX_LINES)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if limit is not None and lines > limit:
            bad.append(f"{rel}: {lines} lines (at most {limit})")
    assert not bad, "modules too long:\n" + "\n".join(bad)


def test_eval_modules_import_only_the_ones_listed_above_them() -> None:
    """mcodec/eval/__init__.py lists its modules bottom-up; each may import only
    modules listed before it (so the bench, the report and the results never loop)."""
    doc = (PACKAGE / "eval" / "__init__.py").read_text(encoding="utf-8")
    order = re.findall(r"^\* ``(\w+)``", doc, flags=re.M)
    listed = {f"mcodec.eval.{m}" for m in order}
    actual = {m for m in _modules() if m.startswith("mcodec.eval.")}
    assert listed == actual, f"mcodec/eval/__init__.py lists {sorted(listed)}, the folder has {sorted(actual)}"
    graph = import_graph()
    for i, m in enumerate(order):
        deps = {d.rpartition(".")[2] for d in graph[f"mcodec.eval.{m}"] if d.startswith("mcodec.eval.")}
        assert deps <= set(order[:i]), f"mcodec.eval.{m} imports {sorted(deps - set(order[:i]))}, listed after it"
