"""Single source of the package version (read by setuptools and by records)."""

__version__ = "0.1.0"
