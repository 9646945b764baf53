"""Imports flow one way, checked on the real imports: search_spaces <- latency_models <- nas, and inside nas
from the bottom (configs, paths, objective terms) up through the stages to the command line."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "search_spaces": {"search_spaces"},
    "latency_models": {"search_spaces", "latency_models"},
    "nas": {"search_spaces", "latency_models", "nas"},
}
# The stages of nas/, lowest first; a module may import its own stage and the stages below it.
STAGES = (
    "bottom",
    "compress",
    "usermodel",
    "training",
    "runtime",
    "search",
    "analysis",
    "deploy",
    "profiling",
    "api",
    "cli",
)
BOTTOM = {
    "config",
    "errors",
    "paths",
    "objectives",
    "checkpoint",
    "progress",
    "provenance",
    "locks",
    "activity",
    "compile_cache",
}


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _stage(module: str) -> str:
    """The stage of a dotted ``nas`` module name (``nas.search.study`` -> ``search``)."""
    parts = module.split(".")
    if len(parts) < 2:
        return "bottom"
    if parts[1] in BOTTOM:
        return "bottom"
    return parts[1]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_flow_towards_nas(package):
    files = list((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        roots = {name.split(".")[0] for name in _imported_modules(path)} & set(ALLOWED)
        assert roots <= ALLOWED[package], path


def test_nas_stages_import_only_their_own_stage_and_the_ones_below():
    for path in (ROOT / "nas").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        own = STAGES.index(_stage(module))
        assert _stage(module) in STAGES, module
        for imported in _imported_modules(path):
            if imported.split(".")[0] == "nas" and imported != "nas":
                assert STAGES.index(_stage(imported)) <= own, f"{module} imports {imported}"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_no_module_imports_itself_through_others():
    """No import circle anywhere in the three packages, function-level imports included: a circle means two
    modules that cannot be read, tested or replaced one without the other."""
    modules = {_module_name(p): p for package in ALLOWED for p in (ROOT / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imported_modules(path):
            # "from package import module" names a module too: resolve to the longest known prefix.
            parts = imported.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts and ".".join(parts) != name:
                targets.add(".".join(parts))
        graph[name] = targets - {n for n in targets if name.startswith(n + ".") or n == name.rsplit(".", 1)[0]}

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for target in graph.get(node, ()):
                if target == start:
                    return [*trail, start]
                if target not in seen:
                    seen.add(target)
                    stack.append((target, [*trail, target]))
        return None

    for name in sorted(graph):
        assert cycle_from(name) is None, " -> ".join(cycle_from(name) or [])


def test_only_the_trial_record_reads_what_a_trial_stored():
    """A trial's stored figures are read through ``nas.search.record.TrialRecord``: no other module of the
    packages or the benchmarks indexes the ``metrics`` user attribute by key, so a new field is one change in
    one module."""
    record = ROOT / "nas" / "search" / "record.py"
    keyed = ('user_attrs["metrics"]', 'user_attrs.get("metrics"')
    readers = [
        path
        for folder in (*ALLOWED, "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
        if path != record and any(key in path.read_text() for key in keyed)
    ]
    assert not readers, readers


def test_every_compression_technique_is_registered_from_its_own_module():
    """One technique per module in ``search_spaces/techniques/``, each registered: a new technique is one
    new module (plus its registry entry), never a branch in a shared one."""
    from search_spaces.techniques import TECHNIQUES
    from search_spaces.techniques.base import Technique

    folder = ROOT / "search_spaces" / "techniques"
    modules = {path.stem for path in folder.glob("*.py")} - {"__init__", "base"}
    registered = {type(technique).__module__.rsplit(".", 1)[-1] for technique in TECHNIQUES}
    assert registered == modules, "every technique module registers one technique, and nothing else registers"
    assert len(registered) == len(TECHNIQUES), "one technique per module"
    for path in folder.glob("*.py"):
        classes = [
            node.name
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "Technique" for b in node.bases)
        ]
        assert len(classes) == (0 if path.stem in ("__init__", "base") else 1), path
    assert all(isinstance(technique, Technique) for technique in TECHNIQUES)


def _subclasses_defined(path: Path, base: str) -> list[str]:
    """Names of the classes ``path`` defines directly on ``base`` (by the base's name)."""
    return [
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ClassDef)
        and any(
            getattr(b, "id", "") == base or getattr(getattr(b, "value", None), "id", "") == base for b in node.bases
        )
    ]


def test_every_cost_model_kind_is_registered_from_its_own_folder():
    """One folder per cost-model kind in ``latency_models/kinds/``, whose ``kind.py`` defines its one
    ``CostModelKind`` and registers it: a new kind is one new folder (plus its registry entry)."""
    from latency_models.kinds import KINDS
    from latency_models.kinds.base import CostModelKind

    folder = ROOT / "latency_models" / "kinds"
    packages = {path.parent.name for path in folder.glob("*/__init__.py")}
    modules = [type(kind).__module__ for kind in KINDS]
    assert sorted(modules) == sorted(f"latency_models.kinds.{name}.kind" for name in packages), (
        "every kind folder registers one kind from its kind.py, and nothing else registers"
    )
    assert len({kind.name for kind in KINDS}) == len(KINDS), "kind names are unique"
    for path in folder.rglob("*.py"):
        expected = 1 if path.name == "kind.py" else 0
        assert len(_subclasses_defined(path, "CostModelKind")) == expected, path
    assert all(isinstance(kind, CostModelKind) for kind in KINDS)


def test_every_runtime_is_registered_from_its_own_module():
    """One runtime per module (or per package, whose ``__init__`` defines it and whose other modules are its
    interpreter, timing and memory plan) in ``latency_models/runtimes/``, each registered: TFLite Micro or Vela
    is one new module or package (plus its registry entry), never a branch in a shared one."""
    from latency_models.runtimes import RUNTIMES
    from latency_models.runtimes.base import Runtime

    folder = ROOT / "latency_models" / "runtimes"
    defining = {path.stem: path for path in folder.glob("*.py")} | {
        path.parent.name: path for path in folder.glob("*/__init__.py")
    }
    modules = set(defining) - {"__init__", "base"}
    registered = [type(runtime).__module__.rsplit(".", 1)[-1] for runtime in RUNTIMES]
    assert sorted(registered) == sorted(modules), "every runtime module registers one runtime, and nothing else does"
    assert len({runtime.name for runtime in RUNTIMES}) == len(RUNTIMES), "runtime names are unique"
    for path in folder.rglob("*.py"):
        expected = 1 if (path in defining.values() and path.parent != folder) or path.stem in modules else 0
        assert len(_subclasses_defined(path, "Runtime")) == expected, path
    assert all(isinstance(runtime, Runtime) for runtime in RUNTIMES)


# Keys only a verification record has (nas.deploy.export_record): reading one of them by key, or loading a
# verification file with json, is reading a record around its typed class.
RECORD_KEYS = {
    "jax_test_accuracy",
    "cost_check",
    "device_figures",
    "first_divergent_layer",
    "quality_warning",
    "kernels",
    "kernel_agreement",
    "runtime_memory",
    "file_bytes",
    "gzip_bytes",
    "latency_provenance",
    "margin_pct",
}


def _record_reads(path: Path) -> list[str]:
    """Where ``path`` reads a verification record by key (``x["kernels"]``, ``x.get("cost_check")``) or loads a
    verification file itself (``json.loads(...verification...)``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        key, line = None, getattr(node, "lineno", 0)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            key = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if key in RECORD_KEYS:
            found.append(f"{path.relative_to(ROOT)}:{line} reads {key!r}")
        loads = isinstance(node, ast.Call) and ast.unparse(node.func) in ("json.load", "json.loads")
        if loads and "verification" in ast.unparse(node):
            found.append(f"{path.relative_to(ROOT)}:{line} loads a verification file")
    return found


def test_only_the_export_record_reads_what_an_export_recorded():
    """An export's verification record is read through ``nas.deploy.export_record.ExportRecord``: no other module
    of the packages or the benchmarks reads ``verification.json`` or a record's keys, so a new part of the record
    is one change in one module."""
    record = ROOT / "nas" / "deploy" / "export_record.py"
    readers = [
        read
        for folder in (*ALLOWED, "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
        if path != record
        for read in _record_reads(path)
    ]
    assert not readers, readers
    assert _record_reads(record)  # the check sees the reads the record module does make
