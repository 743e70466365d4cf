"""Heavy dependencies load only when a command needs them."""
import subprocess
import sys

import pytest


def loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(m for m in ('bpy', 'torch', 'datasets') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_igbench_loads_neither_torch_nor_bpy():
    assert loaded_after("import igbench, igbench.program, igbench.task, igbench.scene, igbench.generators") == set()


def test_the_render_parent_never_imports_blender():
    # The parent only spawns the Blender workers; it should not pay for a Blender of its own.
    assert "bpy" not in loaded_after("import igbench.render.job, igbench.render.workers, igbench.render.staging, igbench.cli.main")


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
