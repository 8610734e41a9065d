"""Data files installed inside a Python package (the shipped rules, lists, model and page), found
without :mod:`importlib.resources`.

Why: ``importlib.resources.files`` imports the package it is asked about and, through its file
reader, :mod:`zipfile`; the running agent kept ~0.4 MB of modules for six reads at start-up (and a
third-party package run for nothing). Every package here is installed as files (wheel, Debian
package, editable checkout), never imported from a zip archive.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without running the package's code.

    Raises:
        ModuleNotFoundError: ``package`` is not installed, or is not a package of files.
    """
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not folders:
        raise ModuleNotFoundError(f"no installed package {package!r}", name=package)
    return Path(folders[0])


def package_file(package: str, name: str) -> Path:
    """The path of ``name`` (relative, ``/``-separated) inside an installed package."""
    return package_dir(package) / name
