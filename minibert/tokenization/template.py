"""Post-processing: where the special tokens go, and the token type ids, as data.

    BERT     (Devlin et al. 2019, §3):   [CLS] $A [SEP]          [CLS] $A [SEP] $B:1 [SEP]:1
    RoBERTa  (Liu et al. 2019, §4.2):    <s> $A </s>             <s> $A </s> </s> $B </s>   (type ids all 0)

A template is a list of items, each either a special token or one of the sequences ($A, $B),
with the type id it gets (`$B:1` = sequence B with type id 1). The reference is `tokenizers`'
`processors` module (TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel,
Sequence); `to_json`/`from_json` read and write its tokenizer.json "post_processor" section.

Byte-level BPE keeps the space before a word inside its first token ("Ġworld"); with
`trim_offsets` its offsets leave that space out (byte_level.py's `process_offsets`). The
processors act on `Encoding`s of one sequence each, then `process` lays them out with the
template.
"""

import dataclasses

from minibert.tokenization.byte_level import process_offsets
from minibert.tokenization.encoding import Encoding


@dataclasses.dataclass(frozen=True)
class Item:
    """One template item: a special token (`token` set) or sequence `sequence` (0 = $A, 1 = $B)."""
    type_id: int
    token: str | None = None
    sequence: int | None = None

    def to_json(self) -> dict:
        if self.token is not None:
            return {"SpecialToken": {"id": self.token, "type_id": self.type_id}}
        return {"Sequence": {"id": "AB"[self.sequence], "type_id": self.type_id}}


def parse(template: str | list) -> list[Item]:
    """"[CLS] $A [SEP] $B:1 [SEP]:1" (or tokenizers' JSON list of items) -> items."""
    if isinstance(template, list):
        return [Item(v["type_id"], token=v["id"]) if kind == "SpecialToken"
                else Item(v["type_id"], sequence="AB".index(v["id"]))
                for item in template for kind, v in item.items()]
    items = []
    for word in template.split():
        name, _, type_id = word.partition(":")
        type_id = int(type_id or 0)
        if name.startswith("$"):
            sequence = {"A": 0, "B": 1, "": 0}.get(name[1:])
            if sequence is None:  # "$1" means $B with type id 1, as in tokenizers
                sequence, type_id = (0, int(name[1:])) if name[1:].isdigit() else (None, 0)
            if sequence is None:
                raise ValueError(f"template item {word!r}: expected $A or $B")
            items.append(Item(type_id, sequence=sequence))
        else:
            items.append(Item(type_id, token=name))
    return items


class TemplateProcessing:
    """tokenizers' TemplateProcessing: `single` and `pair` templates, `special_tokens` the
    {token: [ids]} of their special tokens."""

    # tokenizers gives the windows that truncation cuts off their text's type id (0 for A, 1 for
    # B), not the template's; BERT's and RoBERTa's processors give the template's.
    cut_windows_keep_type_ids = True

    def __init__(self, single, pair=None, special_tokens: dict[str, list[int]] | None = None):
        self.single = parse(single)
        self.pair = parse(pair) if pair is not None else None
        self.special_tokens = dict(special_tokens or {})
        for item in self.single + (self.pair or []):
            if item.token is not None and item.token not in self.special_tokens:
                raise ValueError(f"template special token {item.token!r} has no id "
                                 f"(special_tokens: {sorted(self.special_tokens)})")

    def num_special_tokens_to_add(self, pair: bool) -> int:
        template = self.pair if pair else self.single
        return sum(len(self.special_tokens[i.token]) for i in template or [] if i.token)

    def process(self, encodings: list[Encoding], add_special_tokens=True) -> list[Encoding]:
        """[A] or [A, B] -> [the laid-out encoding]."""
        template = self.pair if len(encodings) == 2 else self.single
        if template is None:
            raise ValueError("this post-processor has no template for pairs of texts")
        out = Encoding.empty()
        for item in template:
            if item.token is None:
                part = encodings[item.sequence]
                out.extend(part, type_id=item.type_id, sequence_id=item.sequence)
            elif add_special_tokens:
                ids = self.special_tokens[item.token]
                out.extend_special(ids, [item.token] * len(ids), item.type_id)
        return [out]

    def to_json(self) -> dict:
        return {"type": "TemplateProcessing",
                "single": [i.to_json() for i in self.single],
                "pair": [i.to_json() for i in self.pair or []],
                "special_tokens": {t: {"id": t, "ids": ids, "tokens": [t] * len(ids)}
                                   for t, ids in self.special_tokens.items()}}


class BertProcessing(TemplateProcessing):
    """[CLS] $A [SEP] (+ $B:1 [SEP]:1); `sep`, `cls` are (token, id)."""
    cut_windows_keep_type_ids = False

    def __init__(self, sep: tuple[str, int], cls: tuple[str, int]):
        self.sep, self.cls = tuple(sep), tuple(cls)
        super().__init__(f"{cls[0]} $A {sep[0]}", f"{cls[0]} $A {sep[0]} $B:1 {sep[0]}:1",
                         {cls[0]: [cls[1]], sep[0]: [sep[1]]})

    def to_json(self) -> dict:
        return {"type": "BertProcessing", "sep": list(self.sep), "cls": list(self.cls)}


class ByteLevel:
    """Byte-level BPE's post-processor: only trims the offsets (`process_offsets`)."""
    cut_windows_keep_type_ids = False

    def __init__(self, add_prefix_space=True, trim_offsets=True, use_regex=True):
        self.add_prefix_space, self.trim_offsets, self.use_regex = \
            add_prefix_space, trim_offsets, use_regex

    def num_special_tokens_to_add(self, pair: bool) -> int:
        return 0

    def process(self, encodings: list[Encoding], add_special_tokens=True) -> list[Encoding]:
        if not self.trim_offsets:
            return encodings
        return [dataclasses.replace(e, offsets=process_offsets(e.tokens, e.offsets,
                                                               self.add_prefix_space))
                for e in encodings]

    def to_json(self) -> dict:
        return {"type": "ByteLevel", "add_prefix_space": self.add_prefix_space,
                "trim_offsets": self.trim_offsets, "use_regex": self.use_regex}


class RobertaProcessing(BertProcessing):
    """<s> $A </s> (+ </s> $B </s>), every type id 0; trims byte-level offsets like ByteLevel."""

    def __init__(self, sep: tuple[str, int], cls: tuple[str, int], trim_offsets=True,
                 add_prefix_space=True):
        self.sep, self.cls = tuple(sep), tuple(cls)
        self.trim_offsets, self.add_prefix_space = trim_offsets, add_prefix_space
        TemplateProcessing.__init__(self, f"{cls[0]} $A {sep[0]}",
                                    f"{cls[0]} $A {sep[0]} {sep[0]} $B {sep[0]}",
                                    {cls[0]: [cls[1]], sep[0]: [sep[1]]})

    def process(self, encodings: list[Encoding], add_special_tokens=True) -> list[Encoding]:
        if self.trim_offsets:
            encodings = [dataclasses.replace(e, offsets=process_offsets(
                e.tokens, e.offsets, self.add_prefix_space)) for e in encodings]
        return super().process(encodings, add_special_tokens)

    def to_json(self) -> dict:
        return {"type": "RobertaProcessing", "sep": list(self.sep), "cls": list(self.cls),
                "trim_offsets": self.trim_offsets, "add_prefix_space": self.add_prefix_space}


class Sequence:
    """Several post-processors, applied in order (e.g. ByteLevel, then a template)."""

    def __init__(self, processors: list):
        self.processors = list(processors)

    @property
    def cut_windows_keep_type_ids(self):
        return any(p.cut_windows_keep_type_ids for p in self.processors)

    def num_special_tokens_to_add(self, pair: bool) -> int:
        return sum(p.num_special_tokens_to_add(pair) for p in self.processors)

    def process(self, encodings: list[Encoding], add_special_tokens=True) -> list[Encoding]:
        for p in self.processors:
            encodings = p.process(encodings, add_special_tokens)
        return encodings

    def to_json(self) -> dict:
        return {"type": "Sequence", "processors": [p.to_json() for p in self.processors]}


def default_process(encodings: list[Encoding]) -> Encoding:
    """No post-processor (or one that left the sequences apart): A then B, type ids 0 then 1."""
    out = Encoding.empty()
    for sequence, part in enumerate(encodings):
        out.extend(part, type_id=sequence, sequence_id=sequence)
    return out


def from_json(section: dict | None, where="post_processor"):
    """tokenizer.json's "post_processor" section -> a processor (None for null)."""
    if section is None:
        return None
    kind = section.get("type")
    if kind == "BertProcessing":
        return BertProcessing(section["sep"], section["cls"])
    if kind == "RobertaProcessing":
        return RobertaProcessing(section["sep"], section["cls"],
                                 section.get("trim_offsets", True),
                                 section.get("add_prefix_space", True))
    if kind == "TemplateProcessing":
        special = {name: v["ids"] for name, v in section.get("special_tokens", {}).items()}
        return TemplateProcessing(section["single"], section.get("pair") or None, special)
    if kind == "ByteLevel":
        return ByteLevel(section.get("add_prefix_space", True), section.get("trim_offsets", True),
                         section.get("use_regex", True))
    if kind == "Sequence":
        return Sequence([from_json(p, f"{where}.processors[{i}]")
                         for i, p in enumerate(section["processors"])])
    raise ValueError(f"{where}.type: unknown post-processor {kind!r} (known: BertProcessing, "
                     f"ByteLevel, RobertaProcessing, Sequence, TemplateProcessing)")
