"""schemas: the bundled JSON Schemas, their loader and the every-error validator."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peft
import pytest
from jsonschema import Draft202012Validator

from registry import schemas

# peft_type -> a PEFT config class instance with whatever PEFT requires to construct it.
PEFT_CONFIGS: dict[str, Callable[[], peft.PeftConfig]] = {
    "LORA": lambda: peft.LoraConfig(target_modules=["q_proj"], use_dora=True),
    "ADALORA": lambda: peft.AdaLoraConfig(total_step=10, target_modules=["q_proj"]),
    "IA3": lambda: peft.IA3Config(target_modules=["k", "ff"], feedforward_modules=["ff"]),
    "LOHA": lambda: peft.LoHaConfig(target_modules="all-linear"),
    "LOKR": lambda: peft.LoKrConfig(target_modules=["q_proj"], decompose_both=True),
    "VERA": lambda: peft.VeraConfig(target_modules=["q_proj"]),
    "PROMPT_TUNING": lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    "PREFIX_TUNING": lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    "P_TUNING": lambda: peft.PromptEncoderConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=4, encoder_hidden_size=8
    ),
    "TRAINABLE_TOKENS": lambda: peft.TrainableTokensConfig(
        target_modules=["embed_tokens"], token_indices=[1, 2]
    ),
    "LN_TUNING": lambda: peft.LNTuningConfig(target_modules=["input_layernorm"]),
}


def saved_config(peft_type: str, tmp_path: Path) -> dict[str, Any]:
    """The adapter_config.json PEFT itself writes for ``peft_type``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        PEFT_CONFIGS[peft_type]().save_pretrained(str(tmp_path))
    loaded: dict[str, Any] = json.loads((tmp_path / "adapter_config.json").read_text())
    return loaded


def test_bundled_schemas_are_valid_draft_2020_12() -> None:
    names = schemas.available_schemas()
    assert names == ["adapterhub_config", "peft_config", "policy"]
    for name in names:
        schema = schemas.load_schema(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def test_load_schema_accepts_the_file_name_and_returns_a_copy() -> None:
    first = schemas.load_schema("peft_config.schema.json")
    first["properties"].clear()
    assert schemas.load_schema("peft_config")["properties"]
    assert schemas.validate({"peft_type": "LORA", "r": "x"}, "peft_config")


@pytest.mark.parametrize("name", ["../peft_config", "PEFT_CONFIG", "", "nope"])
def test_bad_schema_names(name: str) -> None:
    with pytest.raises(ValueError, match="schema"):
        schemas.load_schema(name)


def test_schema_rules_match_the_analysed_peft_types() -> None:
    rules = schemas.load_schema("peft_config")["allOf"]
    typed = {rule["if"]["properties"]["peft_type"]["const"] for rule in rules}
    assert sorted(typed) == sorted(PEFT_CONFIGS)


@pytest.mark.parametrize("peft_type", ["OFT", "LN_TUNING", "SOME_TYPE_FROM_PEFT_9"])
def test_any_peft_type_name_is_valid(peft_type: str) -> None:
    assert schemas.validate({"peft_type": peft_type}, "peft_config") == []


@pytest.mark.parametrize("peft_type", ["", "lora", "LORA/../x", "A" * 65, 7])
def test_malformed_peft_type_names_are_refused(peft_type: object) -> None:
    assert schemas.validate({"peft_type": peft_type}, "peft_config")


@pytest.mark.parametrize("peft_type", sorted(PEFT_CONFIGS))
def test_configs_peft_writes_are_valid(peft_type: str, tmp_path: Path) -> None:
    config = saved_config(peft_type, tmp_path)
    assert config["peft_type"] == peft_type
    assert schemas.validate(config, "peft_config") == []


def test_unknown_keys_are_allowed() -> None:
    config = {"peft_type": "LORA", "r": 4, "added_in_peft_9": {"anything": [1, 2]}}
    assert schemas.validate(config, "peft_config") == []


def test_every_error_is_reported_with_its_path_sorted() -> None:
    config = {
        "peft_type": "LORA",
        "r": "eight",
        "lora_alpha": "16",
        "target_modules": ["q_proj", 7],
        "use_rslora": 1,
        "use_dora": "no",
        "rank_pattern": {"v_proj": 0, "q.proj": "2"},
        "fan_in_fan_out": None,
        "layers_to_transform": [0, -1],
        "bias": "some",
    }
    errors = schemas.validate(config, "peft_config")
    assert errors == [
        "$.bias: 'some' is not one of ['none', 'all', 'lora_only']",
        "$.fan_in_fan_out: None is not of type 'boolean'",
        "$.layers_to_transform[1]: -1 is less than the minimum of 0",
        "$.lora_alpha: '16' is not of type 'number'",
        "$.r: 'eight' is not of type 'integer'",
        "$.rank_pattern.v_proj: 0 is less than the minimum of 1",
        "$.rank_pattern[\"q.proj\"]: '2' is not of type 'integer'",
        "$.target_modules[1]: 7 is not of type 'string'",
        "$.use_dora: 'no' is not of type 'boolean'",
        "$.use_rslora: 1 is not of type 'boolean'",
    ]
    assert all("\n" not in line for line in errors)


def test_booleans_are_not_integers() -> None:
    assert schemas.validate({"peft_type": "LORA", "r": True}, "peft_config") == [
        "$.r: True is not of type 'integer'"
    ]


def test_peft_type_is_required_and_any_type_is_accepted() -> None:
    assert schemas.validate({"r": 8}, "peft_config") == ["$: 'peft_type' is a required property"]
    assert schemas.validate({"peft_type": "OFT"}, "peft_config") == []
    (error,) = schemas.validate({"peft_type": "oft"}, "peft_config")
    assert error.startswith("$.peft_type: 'oft' does not match")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"peft_type": "IA3", "feedforward_modules": 3}, "$.feedforward_modules"),
        ({"peft_type": "LOHA", "alpha": "x"}, "$.alpha"),
        ({"peft_type": "LOKR", "decompose_both": "yes"}, "$.decompose_both"),
        ({"peft_type": "VERA", "save_projection": "yes"}, "$.save_projection"),
        ({"peft_type": "ADALORA", "init_r": 0}, "$.init_r"),
        ({"peft_type": "PROMPT_TUNING"}, "'num_virtual_tokens' is a required property"),
        ({"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 0}, "$.num_virtual_tokens"),
        ({"peft_type": "P_TUNING", "num_virtual_tokens": 4, "token_dim": "x"}, "$.token_dim"),
    ],
)
def test_each_method_checks_its_own_keys(config: dict[str, Any], expected: str) -> None:
    (error,) = schemas.validate(config, "peft_config")
    assert expected in error


def test_rank_pattern_means_different_things_per_method() -> None:
    masks = {"model.layers.0.q_proj.lora_E": [True, False]}
    assert schemas.validate({"peft_type": "ADALORA", "rank_pattern": masks}, "peft_config") == []
    assert schemas.validate({"peft_type": "LORA", "rank_pattern": masks}, "peft_config")
    ranks = {"q_proj": 4}
    assert schemas.validate({"peft_type": "LORA", "rank_pattern": ranks}, "peft_config") == []
    assert schemas.validate({"peft_type": "ADALORA", "rank_pattern": ranks}, "peft_config")


def test_target_modules_accepts_list_string_or_null() -> None:
    for value in (["q_proj"], r".*\.q_proj", None):
        config = {"peft_type": "LORA", "target_modules": value}
        assert schemas.validate(config, "peft_config") == []
    (error,) = schemas.validate({"peft_type": "LORA", "target_modules": 3}, "peft_config")
    assert error == "$.target_modules: 3 is not of type 'array', 'string', 'null'"


ADAPTERHUB_CONFIG: dict[str, Any] = {
    "config": {
        "mh_adapter": False,
        "output_adapter": True,
        "reduction_factor": {"default": 16, "3": 8},
        "non_linearity": "relu",
        "original_ln_before": True,
        "leave_out": [0, 11],
        "scaling": 1.0,
        "residual_before_ln": True,
        "inv_adapter": None,
    },
    "hidden_size": 768,
    "model_class": "BertAdapterModel",
    "model_name": "bert-base-uncased",
    "model_type": "bert",
    "name": "sst-2",
    "version": "adapters.1.2.0",
}


def test_adapterhub_config_valid() -> None:
    assert schemas.validate(ADAPTERHUB_CONFIG, "adapterhub_config") == []


def test_adapterhub_config_errors() -> None:
    config = json.loads(json.dumps(ADAPTERHUB_CONFIG))
    config["hidden_size"] = "768"
    config["config"]["reduction_factor"] = {"default": 0}
    config["config"]["leave_out"] = ["0"]
    del config["config"]["non_linearity"]
    assert schemas.validate(config, "adapterhub_config") == [
        "$.config.leave_out[0]: '0' is not of type 'integer'",
        "$.config.reduction_factor.default: 0 is less than or equal to the minimum of 0",
        "$.config: 'non_linearity' is a required property",
        "$.hidden_size: '768' is not of type 'integer', 'null'",
    ]


def test_format_path() -> None:
    assert schemas.format_path([]) == "$"
    assert schemas.format_path(["config", "leave_out", 2]) == "$.config.leave_out[2]"
    assert schemas.format_path(["odd key", "3"]) == '$["odd key"]["3"]'


def test_schemas_imports_nothing_from_registry() -> None:
    code = (
        "import sys, schemas\n"
        "schemas.validate({'peft_type': 'LORA'}, 'peft_config')\n"
        "print(sorted(m for m in sys.modules if m == 'registry' or m.startswith('registry.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"r": 4.0}, "$.r: 4.0 is not of type 'integer'"),
        ({"r": True}, "$.r: True is not of type 'integer'"),
        ({"layers_to_transform": 0.0}, "$.layers_to_transform: 0.0 is not of type"),
        ({"layers_pattern": True}, "$.layers_pattern: True is not of type"),
    ],
)
def test_integers_are_whole_numbers_in_the_json_text(
    extra: dict[str, object], expected: str
) -> None:
    # JSON Schema would take 4.0 as an integer; PEFT hands it to torch, which refuses it.
    for peft_type, config in (
        ("LORA", {"r": 4, "target_modules": ["q_proj"]}),
        ("IA3", {"target_modules": ["q_proj"], "feedforward_modules": []}),
    ):
        if peft_type == "IA3" and "r" in extra:
            continue
        problems = schemas.validate({"peft_type": peft_type, **config, **extra}, "peft_config")
        assert any(p.startswith(expected) for p in problems), (peft_type, problems)


def test_outcomes_are_kept_by_json_text_and_never_shared() -> None:
    bad = {"peft_type": "LORA", "r": "eight"}
    first = schemas.validate(bad, "peft_config")
    assert first and first == schemas.validate(dict(bad), "peft_config")
    first.append("edited by the caller")
    assert "edited by the caller" not in schemas.validate(bad, "peft_config")
    # Another text is checked afresh: 8 is valid where "eight" was not, True is not 1.
    assert schemas.validate({"peft_type": "LORA", "r": 8}, "peft_config") == []
    assert schemas.validate({"peft_type": "LORA", "r": True}, "peft_config") != []


def test_a_large_instance_is_validated_but_its_outcome_not_kept() -> None:
    import registry.schemas as schemas

    big = {"peft_type": "LORA", "r": 8, "pad": "x" * (1024 * 1024)}
    schemas.validate(big, "peft_config")
    assert all(len(text) < 1024 * 1024 for _name, text in schemas._outcomes)
