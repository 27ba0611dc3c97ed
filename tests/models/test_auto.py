"""The explicit model_type → module / task → class table: it covers every model and config class, config dialects
resolve, the Auto* classes build and load, and no module needs another to have been imported first."""

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minibert
from minibert import presets
from minibert.config import PretrainedConfig
from minibert.models import auto
from minibert.models.base import PreTrainedModel
from tests.conftest import save_reference

TINY = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
            max_position_embeddings=20)


@pytest.mark.parametrize("module", ["minibert.quantization", "minibert.checkpoints.hf", "minibert.checkpoints.files",
                                    "minibert.models.auto", "minibert.training.finetune", "minibert.cli"])
def test_every_module_imports_first_in_a_fresh_interpreter(module):
    """Loading needs no `import minibert` side effect: each module works imported first, on its own."""
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr


def _imports(root: Path) -> dict[str, set[str]]:
    """minibert module → the minibert modules it imports, at module level or inside a function (package parents,
    which Python imports first anyway, left out)."""
    files = {}
    for file in root.rglob("*.py"):
        parts = file.relative_to(root.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    graph = {}
    for name, file in files.items():
        targets = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                            for a in node.names}
        graph[name] = {t for t in targets if t in files and t != name and not name.startswith(t + ".")}
    return graph


def test_no_import_cycle_between_modules():
    """Not even through imports deferred into functions (the loader once imported the quantizer that imported it)."""
    graph, done, cycles = _imports(Path(minibert.__file__).parent), set(), []

    def visit(module, path):
        for imported in sorted(graph[module]):
            if imported in path:
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in done:
                visit(imported, path + [imported])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == []


def _defined_in(module_name: str, base: type) -> set[str]:
    module = importlib.import_module(module_name)
    return {name for name, value in vars(module).items() if inspect.isclass(value) and issubclass(value, base)
            and value.__module__ == module_name and not name.startswith("_") and value is not base}


def test_the_tables_cover_every_family_model_and_config():
    modules = [*auto.MODULES.values(), auto.FINETUNING_MODULE]
    models = set().union(*(_defined_in(m, PreTrainedModel) for m in modules))
    assert models == set(auto.all_model_classes())
    configs = set().union(*(_defined_in(m, PretrainedConfig) for m in [*auto.MODULES.values(), "minibert.config"]))
    assert configs == set(auto.CONFIG_CLASSES.values())
    for model_type, config_class in auto.config_classes().items():
        assert config_class.model_type == model_type
        for task in auto.MODEL_CLASSES[model_type]:
            assert auto.model_class(model_type, task).config_class is config_class
    assert {family.objectives[o] for family in presets.FAMILIES.values() for o in family.objectives} <= models


def test_lookups_and_their_errors():
    assert auto.model_class("electra", "pretraining") is minibert.ElectraForPreTraining
    assert auto.model_class("roberta", "masked-lm") is minibert.RobertaForMaskedLM
    assert auto.model_class_by_name("RobertaForMultipleChoice").__name__ == "RobertaForMultipleChoice"
    with pytest.raises(ValueError, match="the 'roberta' family has no pretraining model"):
        auto.model_class("roberta", "pretraining")                       # no NSP (Liu et al. 2019, §4.2)
    assert auto.model_class_by_name("ConvBertForTokenClassification").__name__ == "ConvBertForTokenClassification"
    with pytest.raises(ValueError, match="the 'mosaic_bert' family has no sequence-classification model"):
        auto.model_class("mosaic_bert", "sequence-classification")
    with pytest.raises(ValueError, match="unknown model_type 'gpt9'"):
        auto.config_class_for({"model_type": "gpt9"})


def test_config_dialects_are_claimed():
    """Published MosaicBERT configs say model_type "bert"; ModernBERT's transformers 4.x dialect is its own type."""
    assert auto.config_class_for({"model_type": "bert", "alibi_starting_size": 512}) is minibert.MosaicBertConfig
    assert auto.config_class_for({"model_type": "bert"}) is minibert.BertConfig
    config = auto.config_class_for({"model_type": "modernbert"}).from_dict(
        {"num_hidden_layers": 4, "global_attn_every_n_layers": 2})
    assert config.layer_types == ["full_attention", "sliding_attention"] * 2


def test_auto_classes_build_and_load(tmp_path):
    save_reference("BertForPreTraining", "BertConfig", tmp_path, **TINY)
    config = minibert.AutoConfig.from_pretrained(tmp_path)
    assert type(config) is minibert.BertConfig and type(minibert.AutoConfig.for_model("electra")) is minibert.ElectraConfig
    for auto_class, name in ((minibert.AutoModel, "BertModel"), (minibert.AutoModelForMaskedLM, "BertForMaskedLM"),
                             (minibert.AutoModelForPreTraining, "BertForPreTraining"),
                             (minibert.AutoModelForSequenceClassification, "BertForSequenceClassification"),
                             (minibert.AutoModelForTokenClassification, "BertForTokenClassification"),
                             (minibert.AutoModelForQuestionAnswering, "BertForQuestionAnswering"),
                             (minibert.AutoModelForMultipleChoice, "BertForMultipleChoice")):
        assert type(auto_class.from_config(config)).__name__ == name
        model = auto_class.from_pretrained(tmp_path)
        assert type(model).__name__ == name
    classifier = minibert.AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=4)
    assert classifier.classifier.weight.shape == (4, TINY["hidden_size"])
    full = minibert.from_pretrained(tmp_path)
    np.testing.assert_array_equal(np.asarray(classifier.bert.pooler.dense.weight[...]),
                                  np.asarray(full.bert.pooler.dense.weight[...]))


def test_a_config_is_checked_when_a_model_is_built(tmp_path):
    """As in transformers: BertConfig(hidden_size=37) is written and read as JSON; building a model from it fails."""
    config = minibert.BertConfig(hidden_size=37)
    config.save(tmp_path)
    again = minibert.AutoConfig.from_pretrained(tmp_path)
    assert again.hidden_size == 37
    with pytest.raises(ValueError, match="hidden_size 37 is not a multiple of num_attention_heads 12"):
        minibert.AutoModel.from_config(again)
    with pytest.raises(TypeError, match="BertConfig: num_hidden_layers must be int, got 2.5"):
        minibert.BertModel(minibert.BertConfig(**{**TINY, "num_hidden_layers": 2.5}))
