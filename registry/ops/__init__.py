"""Tensor operators on adapters: folding into base weights, combining, resizing,
extracting, and merging into checkpoints on disk (the math is in docs/ops.md).

Everything here imports torch; nothing outside ``ops``, ``loader``,
``fingerprint`` and the formats' value checks may.
"""
