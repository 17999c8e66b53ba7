"""Tensor operators on adapters: folding into base weights, combining, resizing,
extracting, and merging into checkpoints on disk (the math is in docs/ops.md).

Everything here imports torch, except ``methods`` (what each operator accepts, which the
CLI checks its options against); nothing outside ``ops``, ``loader``, ``fingerprint`` and
the formats' value checks may.
"""
