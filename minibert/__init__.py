"""minibert: the BERT family of encoders, from scratch in JAX / flax.nnx.

    import minibert
    model = minibert.from_pretrained("path/to/hf_dir")      # config.json + model.safetensors
    out = model(input_ids, attention_mask=mask, token_type_ids=types)
    minibert.save_pretrained(model, "out_dir")               # transformers loads it back
"""

from minibert.checkpoints.hf import CheckpointError, from_pretrained, save_pretrained
from minibert.compilation_cache import enable_compilation_cache
from minibert.config import BertConfig, PretrainedConfig
from minibert.models.albert import AlbertConfig, AlbertForMaskedLM, AlbertForPreTraining, AlbertModel
from minibert.models.bert import BertForMaskedLM, BertForPreTraining, BertModel
from minibert.models.electra import (ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel,
                                     ElectraPretrainer)
from minibert.models.convbert import ConvBertConfig, ConvBertForMaskedLM, ConvBertModel
from minibert.models.deberta_v2 import DebertaV2Config, DebertaV2ForMaskedLM, DebertaV2Model
from minibert.models.distilbert import DistilBertConfig, DistilBertForMaskedLM, DistilBertModel
from minibert.models.flex import FlexConfig, FlexForMaskedLM, FlexForPreTraining, FlexModel
from minibert.models.modernbert import ModernBertConfig, ModernBertForMaskedLM, ModernBertModel
from minibert.models.mobilebert import MobileBertConfig, MobileBertForMaskedLM, MobileBertForPreTraining, MobileBertModel
from minibert.models.mosaicbert import MosaicBertConfig, MosaicBertForMaskedLM, MosaicBertModel
from minibert.models.roberta import RobertaConfig, RobertaForMaskedLM, RobertaModel
from minibert.models.outputs import ModelOutput
from minibert.models.auto import (AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForMultipleChoice,
                                  AutoModelForNextSentencePrediction, AutoModelForPreTraining,
                                  AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                                  AutoModelForTokenClassification)
from minibert.quantization import quantize_pretrained
from minibert.tokenization import AutoTokenizer, Encoding, WordPieceTokenizer
# the documented submodules, reachable after `import minibert` (parity imports torch only when `compare` runs)
from minibert import parity  # noqa: F401,E402
from minibert.tasks import embeddings, pipelines  # noqa: F401,E402

__all__ = [
    "AutoConfig", "AutoModel", "AutoModelForMaskedLM", "AutoModelForMultipleChoice", "AutoModelForNextSentencePrediction",
    "AutoModelForPreTraining", "AutoModelForQuestionAnswering", "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AlbertConfig", "AlbertForMaskedLM", "AlbertForPreTraining", "AlbertModel",
    "BertConfig", "BertForMaskedLM", "BertForPreTraining", "BertModel", "CheckpointError", "ModelOutput",
    "ConvBertConfig", "ConvBertForMaskedLM", "ConvBertModel",
    "DebertaV2Config", "DebertaV2ForMaskedLM", "DebertaV2Model",
    "DistilBertConfig", "DistilBertForMaskedLM", "DistilBertModel",
    "ElectraConfig", "ElectraForMaskedLM", "ElectraForPreTraining", "ElectraModel", "ElectraPretrainer",
    "FlexConfig", "FlexForMaskedLM", "FlexForPreTraining", "FlexModel",
    "ModernBertConfig", "ModernBertForMaskedLM", "ModernBertModel",
    "MobileBertConfig", "MobileBertForMaskedLM", "MobileBertForPreTraining", "MobileBertModel",
    "MosaicBertConfig", "MosaicBertForMaskedLM", "MosaicBertModel",
    "RobertaConfig", "RobertaForMaskedLM", "RobertaModel",
    "AutoTokenizer", "Encoding", "PretrainedConfig", "WordPieceTokenizer", "enable_compilation_cache", "from_pretrained",
    "quantize_pretrained",
    "save_pretrained",
]
