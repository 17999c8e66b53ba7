"""Helpers shared by the test modules, one module per concept:

- ``models``: tiny Llama / GPT-2 / BERT bases (and a convolutional model), inputs, outputs;
- ``peft_adapters``: real PEFT adapters of every kind (``make_adapter``), perturbed and saved;
- ``ops_adapters``: several adapters on one shared base, for the operator tests;
- ``handmade``: valid adapters written by hand, without building a model;
- ``lifecycle``: the CLI in-process, and versions inserted straight into the catalog;
- ``stress`` and ``stress_worker``: concurrent writer processes and the invariants they keep;
- ``fuzz``: the fuzz target of the format readers, and a standalone mutation fuzzer;
- ``hub_emulator``: a local Hugging Face Hub for the real ``huggingface_hub`` client.

Importable as ``support.<module>`` because pytest puts tests/ on ``sys.path`` (tests/ is
not a package, so its conftest.py directory is prepended). Subprocesses need tests/ on
``PYTHONPATH`` (as ``support.stress.run_workers`` sets it).
"""
