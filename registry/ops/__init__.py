"""Tensor operators on adapters: folding into base weights (and, later, combining).

Everything here imports torch; nothing outside ``ops``, ``loader``,
``fingerprint`` and the formats' value checks may.
"""
