"""A served registry with something to look at, for the web UI's browser tests: real
pushes, evals on both sides of a promotion gate, a combine with its lineage, a base model
record with a related base, a second namespace, and hostile text in every free-text
field a page shows."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from registry import Registry
from support.handmade import safetensors_bytes, write_lora
from support.server import ServedRegistry, served_registry

# Markup and script for fields that take any text (description, tag value, eval notes):
# if a page ever emitted it unescaped, the script or the handler would set window.__pwned
# or add an element with this id.
PWNED_ID = "pwned-marker"
HOSTILE = (
    "<script>window.__pwned=1</script>"
    f'<img src=x onerror="window.__pwned=2"><b id="{PWNED_ID}">bold</b>'
    '"\'><svg onload="window.__pwned=3">'
)
# Eval metric and dataset names may not hold whitespace or any of @<>=!, so theirs break
# out of a quoted attribute or a script string instead, and carry an escaped entity that
# must stay literal (it would show as <i> if a page un-escaped it or used |safe).
HOSTILE_METRIC = "acc\"');window.__pwned++;//&lt;i&gt;"
HOSTILE_DATASET = "ds'\"&amp;&lt;script&gt;window.__pwned++;"
ACTOR = "alice@example.com"
# The gate on alias prod: the latest accuracy on gsm8k must be at least 0.9.
POLICY = (
    '{"version": 1, "rules": [{"alias": "prod",'
    ' "evals": [{"metric": "accuracy", "dataset": "gsm8k", "min": 0.9}]}]}'
)


@contextmanager
def ui_site(root: Path) -> Iterator[ServedRegistry]:
    """A server over a registry holding:

    - ``chat-lora@1`` (accuracy 0.80 on gsm8k; hostile description, tag, eval and dataset),
      ``chat-lora@2`` (accuracy 0.85: below the prod gate), ``chat-combo@1`` (a linear
      combine of both, weights 0.7 and 0.3), all on base ``tiny/llama``;
    - ``chat-int8@1`` on ``tiny/llama-int8``, recorded as quantized from ``tiny/llama``;
    - ``team/summarise@1`` in namespace ``team``;
    - policy.json gating alias ``prod`` on accuracy@gsm8k >= 0.9.
    """
    url = f"sqlite:///{root / 'catalog.db'}"
    with served_registry(root / "home", url) as site:
        local = Registry.open(site.home, database_url=url)
        actor = os.environ.get("ADAPTERS_ACTOR")
        os.environ["ADAPTERS_ACTOR"] = ACTOR  # not this machine's user, in the screenshots
        try:
            _populate(local, root / "adapters")
        finally:
            local.close()
            if actor is None:
                del os.environ["ADAPTERS_ACTOR"]
            else:
                os.environ["ADAPTERS_ACTOR"] = actor
        (site.home / "policy.json").write_text(POLICY)
        yield site


def _populate(local: Registry, work: Path) -> None:
    dirs = [write_lora(work / f"lora{seed}", seed) for seed in range(5)]
    local.push(dirs[0], name="chat-lora", evals={"accuracy": 0.80}, eval_dataset="gsm8k",
               tags={"team": "nlp", "note": HOSTILE})  # fmt: skip
    local.push(dirs[1], name="chat-lora", evals={"accuracy": 0.85}, eval_dataset="gsm8k",
               tags={"team": "nlp"})  # fmt: skip
    local.describe("chat-lora@1", HOSTILE)
    local.describe("chat-lora@2", "Second round of chat tuning, more dialogue data.")
    local.record_eval("chat-lora@1", {HOSTILE_METRIC: 0.5}, dataset=HOSTILE_DATASET,
                      notes=HOSTILE)  # fmt: skip
    local.combine(["chat-lora@1", "chat-lora@2"], name="chat-combo", method="linear",
                  weights=[0.7, 0.3], rank=4, tags={"team": "nlp"})  # fmt: skip
    local.push(dirs[2], name="chat-int8", base="tiny/llama-int8")
    local.push(dirs[3], name="team/summarise", evals={"rouge_l": 0.41}, eval_dataset="cnn")
    _record_bases(local, work)


def _record_bases(local: Registry, work: Path) -> None:
    # Weights written by hand in the shapes write_lora targets: a real fingerprint
    # without building a model (transformers would add seconds to every run).
    for seed, name, quantization in ((0, "tiny/llama", None), (1, "tiny/llama-int8", "int8")):
        rng = np.random.default_rng(seed)
        directory = work / name.replace("/", "--")
        directory.mkdir(parents=True)
        tensors = {
            f"model.layers.{layer}.self_attn.{module}.weight": rng.standard_normal((16, 16))
            for layer in range(2)
            for module in ("q_proj", "v_proj")
        }
        (directory / "model.safetensors").write_bytes(safetensors_bytes(tensors))
        (directory / "config.json").write_text(
            json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
        )
        local.add_base(directory, name=name, quantization=quantization)
    local.link_bases("tiny/llama-int8", "tiny/llama", "quantized-from")
