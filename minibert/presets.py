"""Model sizes by name, and which model class each pretraining objective trains, per family.

Sizes follow Turc et al. (2019, "Well-Read Students Learn Better", Table 1): tiny L=2/H=128, mini L=4/H=256,
small L=4/H=512, base L=12/H=768 (BERT-base, Devlin et al. 2019 §3); heads = H/64 and FFN = 4H.
`vocab_size` is set by the run's tokenizer; every size has BERT's 512 positions.
"""

SIZES = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "small": dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}

# family → {objective: model class name}; the first objective is the family's default
FAMILIES = {
    "bert": {"mlm+nsp": "BertForPreTraining", "mlm": "BertForMaskedLM"},
}


def preset(family: str, size: str) -> tuple[dict[str, str], dict]:
    """(objectives → model class names, config values) for a family and size; a clear error if unknown."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r} for {family}; choose from {', '.join(SIZES)}")
    return FAMILIES[family], dict(SIZES[size])
