"""PEFT types: which ones the registry analyses fully, which it knows, how deep each is read.

Storage never depends on this table: any config with a well-formed ``peft_type`` string and
safetensors weights is stored and exported byte for byte. The table only says how much more
than that the registry checks (the *analysis* level recorded in the manifest):

    full        config checked against the type's rules, every tensor checked against the
                config (names, shapes, ranks); the type binds to base parameters, and loads
                natively or through peft after the base checks
    structural  a type of the peft release this registry was built against, not modelled here:
                config parsed within the JSON limits, common keys typed, safetensors header
                checked, values finite; loads through peft (mode="peft") after the base checks
    opaque      a type this registry does not know (newer than its code): the same checks as
                structural; whether it loads depends on the installed peft
"""

from __future__ import annotations

ANALYSIS_LEVELS: tuple[str, ...] = ("full", "structural", "opaque")
DEFAULT_ANALYSIS = "full"

# peft_type -> method name, for the types whose tensors are checked against their config.
ANALYSED_TYPES: dict[str, str] = {
    "LORA": "lora",
    "IA3": "ia3",
    "PREFIX_TUNING": "prefix_tuning",
    "PROMPT_TUNING": "prompt_tuning",
    "P_TUNING": "p_tuning",
    "LOHA": "loha",
    "LOKR": "lokr",
    "ADALORA": "adalora",
    "VERA": "vera",
    "TRAINABLE_TOKENS": "trainable_tokens",
    "LN_TUNING": "ln_tuning",
}

# Every PeftType of peft 0.21.2, the release the registry is tested against.
KNOWN_TYPES: frozenset[str] = frozenset(
    {
        *ANALYSED_TYPES,
        "ADAMSS",
        "ADAPTION_PROMPT",
        "BEFT",
        "BOFT",
        "C3A",
        "CARTRIDGE",
        "CPT",
        "DEFT",
        "DELORA",
        "FOURIERFT",
        "FROD",
        "GLORA",
        "GRALORA",
        "HIRA",
        "HRA",
        "LILY",
        "MISS",
        "MULTITASK_PROMPT_TUNING",
        "OFT",
        "OSF",
        "PEANUT",
        "POLY",
        "PSOFT",
        "PVERA",
        "RANDLORA",
        "ROAD",
        "SHADOW",
        "SHIRA",
        "SUPERTUNING",
        "TINYLORA",
        "UNILORA",
        "VBLORA",
        "WAVEFT",
        "XLORA",
    }
)


def method_of(peft_type: str) -> str:
    """The method name recorded for ``peft_type``: the type lowercased, as PEFT's own values."""
    return ANALYSED_TYPES.get(peft_type, peft_type.lower())


def analysis_of(peft_type: str) -> str:
    """How deeply an adapter of ``peft_type`` is analysed (one of ``ANALYSIS_LEVELS``)."""
    if peft_type in ANALYSED_TYPES:
        return "full"
    return "structural" if peft_type in KNOWN_TYPES else "opaque"
