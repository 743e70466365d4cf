"""Heavy dependencies load only when a command needs them."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest


def loaded_after(code: str, modules=("bpy", "torch", "datasets")) -> set[str]:
    probe = code + f"\nimport sys\nprint(' '.join(sorted(m for m in {tuple(modules)!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_igbench_loads_neither_torch_nor_bpy():
    assert loaded_after("import igbench, igbench.program, igbench.task, igbench.scene, igbench.generators") == set()


def test_the_render_parent_never_imports_blender():
    # The parent only spawns the Blender workers; it should not pay for a Blender of its own.
    assert "bpy" not in loaded_after("import igbench.render.job, igbench.render.workers, igbench.render.staging, igbench.cli.main")


def test_a_command_imports_only_its_own_modules(tmp_path):
    """`igbench render --programs-only --quiet` (a start of a few tenths of a second) parses its arguments without
    the other commands' modules, and shows no progress bar without tqdm."""
    command = ["render", "--task", "clevr", "--n", "3", "--out", str(tmp_path), "--programs-only", "--quiet"]
    run = f"import contextlib, io\nfrom igbench.cli.main import main\nwith contextlib.redirect_stdout(io.StringIO()):\n    main({command!r})"
    assert loaded_after(run,
                        ("igbench.score.api", "igbench.cli.score", "igbench.models", "tqdm")) == set()
    assert (tmp_path / "clevr" / "train" / "programs.jsonl").read_text().count("\n") == 3


def test_the_help_lists_every_command_and_each_command_its_own_options(capsys):
    from igbench.cli.main import COMMANDS, main

    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert all(name in listed for name in COMMANDS)
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    assert "--bootstrap" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit:
        main(["score"])  # its positional argument is missing: one line, exit 2
    assert exit.value.code == 2 and "predictions" in capsys.readouterr().err


@pytest.mark.blender
def test_a_worker_spawned_by_a_process_that_imported_bpy_still_imports_it(tmp_path):
    # Such a child inherits Blender's script folders on sys.path, where a pure-Python `bpy` shadows the module.
    script = tmp_path / "spawn_after_bpy.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "def child(q):\n"
        "    try:\n"
        "        from igbench.blender_scenes._bpy import bpy\n"
        "        q.put(bpy.app.version_string)\n"
        "    except BaseException as err:\n"
        "        q.put(repr(err))\n"
        "if __name__ == '__main__':\n"
        "    import bpy\n"
        "    ctx = mp.get_context('spawn')\n"
        "    q = ctx.Queue()\n"
        "    p = ctx.Process(target=child, args=(q,))\n"
        "    p.start()\n"
        "    print(q.get(timeout=120))\n"
        "    p.join()\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert out.stdout.strip().startswith("5."), out.stdout + out.stderr[-2000:]


# ---- the import graph: no cycles between modules or packages, no private name imported across modules

REPO = Path(__file__).resolve().parents[1]
# source folder -> the package it installs as (pyproject.toml's package-dir)
SOURCE_ROOTS = {"igbench": "igbench", "generators": "igbench.generators", "blender_scenes": "igbench.blender_scenes",
                "baselines": "igbench.baselines"}


def module_files(repo: Path, roots: dict[str, str]) -> dict[str, Path]:
    modules = {}
    for folder, package in roots.items():
        for path in sorted((repo / folder).rglob("*.py")):
            parts = list(path.relative_to(repo / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def import_graph(modules: dict[str, Path]) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """(module -> the project modules it imports anywhere in its text, lazy imports included;
    [(importer, module, name)] for every `from module import _name`)."""
    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph, private = {}, []
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(filter(None, (owner(alias.name) for alias in node.names)))
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    source = f"{base}.{source}" if source else base
                for alias in node.names:
                    if f"{source}.{alias.name}" in modules:  # `from package import module`
                        deps.add(f"{source}.{alias.name}")
                    elif (target := owner(source)) is not None:
                        deps.add(target)
                        if alias.name.startswith("_") and not alias.name.startswith("__") and target != name:
                            private.append((name, target, alias.name))
        deps.discard(name)
        graph[name] = deps
    return graph, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(graph: dict[str, set[str]], modules: dict[str, Path]) -> dict[str, set[str]]:
    """The module graph folded onto packages: every module of a subpackage (igbench.render.job ->
    igbench.render) becomes its package; igbench's own top-level modules stay themselves."""
    packages = {name for name, path in modules.items() if path.name == "__init__.py" and name.count(".") == 1}

    def fold(name):
        head = ".".join(name.split(".")[:2])
        return head if head in packages else name

    folded = {}
    for name, deps in graph.items():
        folded.setdefault(fold(name), set()).update(fold(d) for d in deps if fold(d) != fold(name))
    return folded


def test_no_import_cycle_between_modules_or_packages():
    modules = module_files(REPO, SOURCE_ROOTS)
    graph, _ = import_graph(modules)
    assert cycles(graph) == []
    assert cycles(package_graph(graph, modules)) == []


def test_no_private_name_is_imported_across_modules():
    _, private = import_graph(module_files(REPO, SOURCE_ROOTS))
    assert private == []


def test_the_import_checks_find_a_planted_cycle_and_a_private_import(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for name in ("pkg/__init__.py", "pkg/sub/__init__.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "pkg" / "a.py").write_text("def f():\n    from pkg.sub.b import g\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("from . import c\n")
    (tmp_path / "pkg" / "sub" / "c.py").write_text("from pkg.a import _hidden\n")
    modules = module_files(tmp_path, {"pkg": "pkg"})
    graph, private = import_graph(modules)
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]
    assert private == [("pkg.sub.c", "pkg.a", "_hidden")]
    (tmp_path / "pkg" / "sub" / "c.py").write_text("")
    (tmp_path / "pkg" / "d.py").write_text("import pkg.sub.c\n")
    (tmp_path / "pkg" / "sub" / "c.py").write_text("def f():\n    import pkg.d\n")
    graph, _ = import_graph(module_files(tmp_path, {"pkg": "pkg"}))
    assert cycles(graph) == [["pkg.d", "pkg.sub.c"]]
    (tmp_path / "pkg" / "sub" / "c.py").write_text("")
    (tmp_path / "pkg" / "sub" / "e.py").write_text("import pkg.a\n")
    graph, _ = import_graph(module_files(tmp_path, {"pkg": "pkg"}))
    assert cycles(graph) == []
    assert cycles(package_graph(graph, module_files(tmp_path, {"pkg": "pkg"}))) == [["pkg.a", "pkg.sub"]]
