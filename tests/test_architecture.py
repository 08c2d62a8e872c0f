"""The house's rules, checked: small nodes, and imports that point one way.

A node reads its tables, the resources it uses and one settings object; the
import graph of ``src/reason4rec`` (imports inside functions included) has no
cycle, and a pipeline imports the library, never another pipeline.
"""

import ast
from pathlib import Path

from kedro.framework.startup import bootstrap_project

from reason4rec.pipeline_registry import register_pipelines
from tests.helpers import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src"
MOST_NODE_INPUTS = 6


def import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports, anywhere in its body."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parents + ([base] if base else []))
                # `from package import module` imports the module; `from module import name` the module.
                submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
                targets = submodules + ([base] if len(submodules) < len(node.names) else [])
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def test_no_node_takes_more_than_six_inputs():
    bootstrap_project(PROJECT_ROOT)
    registered = register_pipelines()
    crowded = {(pipeline, node.name, len(node.inputs)) for pipeline, nodes in registered.items() for node in nodes.nodes if len(node.inputs) > MOST_NODE_INPUTS}
    assert not crowded and "reason_ablations" in registered and "evaluate" in registered


def test_the_import_graph_has_no_cycle():
    graph, state, cycles = import_graph(), {}, []

    def visit(module, path):
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycles.append(path[path.index(imported) :] + [imported])
            elif imported not in state:
                visit(imported, path + [imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles


def test_pipelines_import_the_library_not_each_other():
    graph = import_graph()

    def pipeline_of(module):
        parts = module.split(".")
        return parts[2] if len(parts) > 3 and parts[1] == "pipelines" else None

    crossing = [(m, t) for m, targets in graph.items() for t in targets if pipeline_of(m) and pipeline_of(t) and pipeline_of(m) != pipeline_of(t)]
    assert not crossing
    assert Path(PACKAGE / "reason4rec" / "pipelines").is_dir() and any(pipeline_of(m) for m in graph)
