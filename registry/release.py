"""This release's version number, importable without loading the facade."""

__version__ = "0.1.0"
