"""Heavy dependencies load only when a command needs them."""
import subprocess
import sys


def loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(m for m in ('bpy', 'torch', 'datasets') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_igbench_loads_neither_torch_nor_bpy():
    assert loaded_after("import igbench, igbench.program, igbench.task, igbench.scene, igbench.generators") == set()


def test_the_render_parent_never_imports_blender():
    # The parent spawns the Blender workers; bpy imported there breaks their own import of bpy.
    assert "bpy" not in loaded_after("import igbench.render.job, igbench.render.workers, igbench.render.staging, igbench.cli.main")
