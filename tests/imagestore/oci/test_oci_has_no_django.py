"""imagestore.oci is plain Python: it must import and work without Django."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

OCI = Path(__file__).resolve().parents[3] / "imagestore" / "oci"


def test_no_module_of_the_oci_package_imports_django() -> None:
    offenders = []
    for path in OCI.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("django", "rest_framework")]
    assert offenders == []


def test_oci_package_imports_in_a_process_without_django_settings() -> None:
    code = (
        "import sys, importlib, pkgutil, imagestore.oci as p\n"
        "[importlib.import_module('imagestore.oci.' + m.name) for m in pkgutil.iter_modules(p.__path__)]\n"
        "assert 'django' not in sys.modules, 'django was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=OCI.parents[1], env={"PATH": "/usr/bin:/bin"})
