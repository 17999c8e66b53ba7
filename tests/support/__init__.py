"""Helpers shared by the test modules: tiny models, adapters, the Hub emulator, workers.

Importable as ``support.<module>`` because pytest puts tests/ on ``sys.path`` (tests/ is
not a package, so its conftest.py directory is prepended). Subprocesses get the same
through ``PYTHONPATH`` (see ``support.stress``).
"""
