"""Writing a PEFT adapter directory exactly as PEFT's ``save_pretrained`` does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.formats.config_file import CONFIG_NAME, config_bytes, normalise_peft_config

if TYPE_CHECKING:
    import torch

PEFT_WEIGHTS_NAME = "adapter_model.safetensors"


def write_peft_adapter(
    directory: Path, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> None:
    """Write ``adapter_config.json`` and ``adapter_model.safetensors`` into ``directory``.

    The config is written as PEFT writes it (sorted keys, indent 2, no trailing newline) with
    set-like fields sorted; the weights with metadata ``{"format": "pt"}``.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_bytes(config_bytes(normalise_peft_config(dict(config))))
    contiguous = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    save_file(contiguous, str(directory / PEFT_WEIGHTS_NAME), metadata={"format": "pt"})
