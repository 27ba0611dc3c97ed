"""The functions a student writes: one `Graded` entry each, in the order a course meets them.

To grade another function, add an entry here and its checks to `autograder/test_graded.py` (keyed by `name`).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Graded:
    name: str        # the autograder's key for this function
    path: str        # the file, relative to the package root (the folder holding minibert/)
    qualname: str    # "function" or "Class.method"
    paper: str       # where the idea comes from

    @property
    def module(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


GRADED = (
    Graded("greedy_longest_match", "minibert/tokenization/wordpiece.py", "WordPiece.greedy_longest_match",
           "Wu et al. 2016 §4.1 (WordPiece); Devlin et al. 2019 §3"),
    Graded("dot_product_attention", "minibert/nn/attention.py", "dot_product_attention",
           "Vaswani et al. 2017 §3.2.1, Eq. 1"),
    Graded("mask_tokens", "minibert/training/masking.py", "mask_tokens",
           "Devlin et al. 2019 §3.1 (Task #1) and Appendix A.1"),
    Graded("apply_rotary", "minibert/nn/rope.py", "apply_rotary", "Su et al. 2021 §3.4.2, Eq. 34"),
    Graded("alibi_slopes", "minibert/nn/alibi.py", "alibi_slopes", "Press et al. 2022 §3"),
    Graded("span_based_dynamic_convolution", "minibert/nn/dynamic_conv.py", "span_based_dynamic_convolution",
           "Jiang et al. 2020 §3.2, Eq. 4"),
)
