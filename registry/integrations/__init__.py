"""Where adapters are made and served: the vLLM resolver plugin (``vllm``), the in-process
multi-adapter pool (``pool``) and the transformers ``TrainerCallback`` (``transformers``).

Clients of the ``Registry`` facade, like the CLI. Each imports its framework inside
itself; none is needed to use the registry.
"""
