"""Model sizes by name, per family, and which model class each pretraining objective trains.

BERT sizes follow Turc et al. (2019, "Well-Read Students Learn Better", Table 1): tiny L=2/H=128, mini
L=4/H=256, small L=4/H=512, base L=12/H=768 (BERT-base, Devlin et al. 2019 §3), heads = H/64, FFN = 4H.
The other families scale the same way from their paper's own shape, and each has its paper's configuration
by name (`mobilebert`, `convbert-small`, `electra-small`, `convbert-base`, `mosaicbert-base`, `roberta-base`,
`roberta-large`; ModernBERT's `base` is its paper's). `vocab_size` and the special-token ids are set by the run's
tokenizer; a vocabulary trained for the run uses the family's algorithm (`tokenizer`: BERT's WordPiece, RoBERTa's
byte-level BPE; `AutoTokenizer.train`, tokenization/recipes.py) unless `--tokenizer` says otherwise.

RoBERTa (Liu et al. 2019) pretrains BERT's shapes differently, and the pretraining run does what §4 found best
for every family trained with objective "mlm": a new mask each time a row is drawn (dynamic masking, §4.1),
rows packed FULL-SENTENCES across documents with no NSP (§4.2) — `training/data.py` `Batches` and `PackedRows`.
Its batches are larger (8K sequences, §4.3, Table 3): set `--batch-size` (the sizes here are the model's only).
"""

import dataclasses


# No attention dropout when pretraining, as MosaicBERT and ModernBERT do (Portes et al. 2023 §2.1; Warner et al.
# 2024 §2.1.3): it keeps the fused attention kernels (which have none) on accelerators. Fine-tuning keeps the
# config's own value (BERT's 0.1 for a released checkpoint). `preset` puts a family's `pretraining` values under
# every size's.
NO_ATTENTION_DROPOUT = dict(attention_probs_dropout_prob=0.0)


@dataclasses.dataclass(frozen=True)
class Family:
    objectives: dict[str, str]          # objective → model class name; the first is the family's default
    sizes: dict[str, dict]              # size name → config values
    mask_rate: float = 0.15             # Devlin et al. 2019 §3.1; MosaicBERT masks 30% (Portes et al. 2023 §2.2)
    generator_fraction: float = 0.25    # ELECTRA (Clark et al. 2020, §3.2): generator width / discriminator width;
                                        # DeBERTa-v3 (He et al. 2023, §5.1): generator depth / discriminator depth
    tokenizer: str = "wordpiece"        # the algorithm of a vocabulary trained for it (training/prepare.py)
    pretraining: dict = dataclasses.field(default_factory=lambda: NO_ATTENTION_DROPOUT)   # under every size


def _bert_sizes(**extra) -> dict[str, dict]:
    dims = {"tiny": (128, 2, 2), "mini": (256, 4, 4), "small": (512, 4, 8), "base": (768, 12, 12)}
    return {name: dict(hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * h,
                       **extra) for name, (h, layers, heads) in dims.items()}


_DEBERTA_V3 = dict(relative_attention=True, position_buckets=256, max_relative_positions=-1, share_att_key=True,
                   norm_rel_ebd="layer_norm", pos_att_type=["p2c", "c2p"], position_biased_input=False,
                   type_vocab_size=0, legacy=False, layer_norm_eps=1e-7, hidden_dropout_prob=0.1)


FAMILIES = {
    "bert": Family({"mlm+nsp": "BertForPreTraining", "mlm": "BertForMaskedLM"}, _bert_sizes()),
    "mobilebert": Family(
        {"mlm+nsp": "MobileBertForPreTraining", "mlm": "MobileBertForMaskedLM"},
        {   # Sun et al. 2020, Table 1: inter-block 512, intra-block 128, 4 stacked FFNs, 24 layers
            "tiny": dict(hidden_size=128, embedding_size=64, intra_bottleneck_size=64, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=128, num_feedforward_networks=2),
            "mini": dict(hidden_size=256, embedding_size=64, intra_bottleneck_size=64, num_hidden_layers=6,
                         num_attention_heads=4, intermediate_size=256, num_feedforward_networks=4),
            "mobilebert": dict(hidden_size=512, embedding_size=128, intra_bottleneck_size=128, num_hidden_layers=24,
                               num_attention_heads=4, intermediate_size=512, num_feedforward_networks=4),
        }),
    "convbert": Family(
        {"mlm": "ConvBertForMaskedLM"},
        {   # Jiang et al. 2020, Table 8 (appendix): head_ratio 2, kernel 9; small: H=256 with E=128
            **_bert_sizes(embedding_size=None, head_ratio=2, conv_kernel_size=9),
            "convbert-small": dict(hidden_size=256, embedding_size=128, num_hidden_layers=12, num_attention_heads=4,
                                   intermediate_size=1024, head_ratio=2, conv_kernel_size=9, num_groups=1),
            "convbert-base": dict(hidden_size=768, embedding_size=768, num_hidden_layers=12, num_attention_heads=12,
                                  intermediate_size=3072, head_ratio=2, conv_kernel_size=9, num_groups=1),
        }),
    "electra": Family(
        {"rtd": "ElectraForPreTraining", "mlm": "ElectraForMaskedLM"},
        {   # Clark et al. 2020, Table 6 (appendix): Small = H 256, E 128, 12 layers; Base = H 768
            **_bert_sizes(embedding_size=None),
            "electra-small": dict(hidden_size=256, embedding_size=128, num_hidden_layers=12, num_attention_heads=4,
                                  intermediate_size=1024),
            "electra-base": dict(hidden_size=768, embedding_size=768, num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072),
        }),
    "roberta": Family(
        {"mlm": "RobertaForMaskedLM"},
        {   # Liu et al. 2019 §3.1: BERT-base / -large; 512 positions after the offset (514 = 512 + pad + 1),
            # one token type, LayerNorm ε 1e-5 (the released config.json)
            **_bert_sizes(max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5),
            "roberta-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                                 max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5),
            "roberta-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                  intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1,
                                  layer_norm_eps=1e-5),
        },
        tokenizer="bpe"),               # §4.4: GPT-2's byte-level BPE
    "mosaicbert": Family(
        {"mlm": "MosaicBertForMaskedLM"},
        {**_bert_sizes(), "mosaicbert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                  intermediate_size=3072)},
        mask_rate=0.3),
    "modernbert": Family(
        {"mlm": "ModernBertForMaskedLM"},
        {   # Warner et al. 2024, Table 4: base = 22 layers, H=768, GeGLU 1152, global every 3rd, window 128
            "tiny": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=2, intermediate_size=192,
                         local_attention=32),
            "mini": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=384,
                         local_attention=64),
            "small": dict(hidden_size=512, num_hidden_layers=9, num_attention_heads=8, intermediate_size=768),
            "base": dict(hidden_size=768, num_hidden_layers=22, num_attention_heads=12, intermediate_size=1152),
        },
        mask_rate=0.3,                  # §2.2.1: 30% masking, after MosaicBERT
        pretraining={}),                # its config's attention dropout (`attention_dropout`) is 0 already
    "albert": Family(
        {"mlm+sop": "AlbertForPreTraining", "mlm": "AlbertForMaskedLM"},
        {   # Lan et al. 2020, Table 1: E = 128, one layer group shared by all layers, heads = H/64, FFN = 4H
            **_bert_sizes(embedding_size=128),
            "tiny": dict(hidden_size=128, embedding_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=512),
            "albert-base": dict(hidden_size=768, embedding_size=128, num_hidden_layers=12, num_attention_heads=12,
                                intermediate_size=3072),
            "albert-large": dict(hidden_size=1024, embedding_size=128, num_hidden_layers=24, num_attention_heads=16,
                                 intermediate_size=4096),
            "albert-xxlarge": dict(hidden_size=4096, embedding_size=128, num_hidden_layers=12, num_attention_heads=64,
                                   intermediate_size=16384),
        },
        tokenizer="unigram"),           # SentencePiece (Kudo & Richardson 2018), §4.1
    "deberta": Family(
        {"rtd": "DebertaV2ForReplacedTokenDetection", "mlm": "DebertaV2ForMaskedLM"},
        {   # DeBERTa-v3 (He et al. 2023, Table 8 and the released config.json): relative positions in 256 log
            # buckets, shared position/content projections, no absolute positions, no token types
            name: {**values, **_DEBERTA_V3} for name, values in {
                **_bert_sizes(),
                "deberta-v3-xsmall": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                          intermediate_size=1536),
                "deberta-v3-small": dict(hidden_size=768, num_hidden_layers=6, num_attention_heads=12,
                                         intermediate_size=3072),
                "deberta-v3-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                        intermediate_size=3072),
            }.items()},
        generator_fraction=0.5,         # §5.1: the generator has the discriminator's width and half its depth
        tokenizer="unigram"),           # SentencePiece, 128K pieces in the released models
    "distilbert": Family(
        {"mlm": "DistilBertForMaskedLM"},
        {   # Sanh et al. 2019 §3: BERT's width with half its layers; distilbert-base = 6 × 768
            name: dict(dim=v["hidden_size"], n_layers=max(1, v["num_hidden_layers"] // 2),
                       n_heads=v["num_attention_heads"], hidden_dim=v["intermediate_size"])
            for name, v in _bert_sizes().items()
        },
        pretraining=dict(attention_dropout=0.0)),
    # the composable encoder (models/flex.py) at BERT's sizes; its ideas are chosen with config overrides, and
    # `flex.preset("bert" | "mosaicbert" | "modernbert")` gives a family's whole configuration
    "flex": Family({"mlm": "FlexForMaskedLM", "mlm+nsp": "FlexForPreTraining", "mlm+sop": "FlexForPreTraining",
                    "rtd": "FlexForReplacedTokenDetection"},
                   _bert_sizes()),
}


def preset(family: str, size: str) -> tuple[Family, dict]:
    """(the family, config values for the size); a clear error naming the choices if either is unknown."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    sizes = FAMILIES[family].sizes
    if size not in sizes:
        raise ValueError(f"unknown size {size!r} for {family}; choose from {', '.join(sizes)}")
    values = FAMILIES[family].pretraining | sizes[size]
    if values.get("embedding_size", 0) is None:       # factorised embeddings off: as wide as the hidden state
        values["embedding_size"] = values["hidden_size"]
    return FAMILIES[family], values
