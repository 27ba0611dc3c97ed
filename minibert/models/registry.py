"""Which config class a `model_type` names, and which model class an `architectures` entry names.

Each family registers itself here; `from_pretrained` reads `config.json` and asks the registry.
"""

CONFIGS: dict[str, type] = {}       # model_type → config class
MODELS: dict[str, type] = {}        # architecture name (e.g. "BertForMaskedLM") → model class
BASE_MODELS: dict[str, type] = {}   # model_type → its bare encoder, used when `architectures` is absent


def register_model(model_class):
    """Class decorator: make a model (and its config class) loadable by name."""
    CONFIGS[model_class.config_class.model_type] = model_class.config_class
    MODELS[model_class.__name__] = model_class
    if model_class.is_base_model:
        BASE_MODELS[model_class.config_class.model_type] = model_class
    return model_class


def config_class_for(model_type: str | None) -> type:
    if model_type not in CONFIGS:
        raise ValueError(f"unknown model_type {model_type!r} in config.json; minibert knows: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[model_type]


def model_class_for(config) -> type:
    architectures = config.architectures or []
    if not architectures:
        return BASE_MODELS[config.model_type]
    name = architectures[0]
    if name not in MODELS:
        raise ValueError(f"unknown architecture {name!r} in config.json; minibert knows: {', '.join(sorted(MODELS))}")
    return MODELS[name]
