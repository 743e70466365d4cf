"""Running the igbench CLI as a user does (a separate process) and checking its one-line errors."""
import os
import subprocess
import sys


def igbench(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "igbench", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"igbench {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def one_line_error(proc, fragment):
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("igbench: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert fragment in proc.stderr, proc.stderr
