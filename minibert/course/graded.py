"""The functions a student writes: one `Graded` entry each, in the order a course meets them.

To grade another function, add an entry here, with the names of its checks, and write those checks in
`autograder/test_graded.py`. `minibert assignment make` appends the check names to the stubbed function's docstring,
so a student reads which tests grade it and how to run them alone (`pytest autograder -m NAME`).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Graded:
    name: str        # the autograder's key for this function
    path: str        # the file, relative to the package root (the folder holding minibert/)
    qualname: str    # "function" or "Class.method"
    paper: str       # where the idea comes from
    checks: tuple[str, ...]  # its checks: functions of autograder/test_graded.py, the autograder's test ids

    @property
    def module(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


GRADED = (
    Graded("greedy_longest_match", "minibert/tokenization/wordpiece.py", "WordPiece.greedy_longest_match",
           "Wu et al. 2016 §4.1 (WordPiece); Devlin et al. 2019 §3",
           ("wordpiece_random_words", "wordpiece_unknown_and_long")),
    Graded("dot_product_attention", "minibert/nn/attention.py", "dot_product_attention",
           "Vaswani et al. 2017 §3.2.1, Eq. 1",
           ("attention_plain", "attention_bias", "attention_padding_mask", "attention_window_mask_and_bias")),
    Graded("mask_tokens", "minibert/training/masking.py", "mask_tokens",
           "Devlin et al. 2019 §3.1 (Task #1) and Appendix A.1",
           ("masking_labels", "masking_rates", "masking_whole_words")),
    Graded("apply_rotary", "minibert/nn/rope.py", "apply_rotary", "Su et al. 2021 §3.4.2, Eq. 34",
           ("rope_random", "rope_broadcast_positions", "rope_bad_positions")),
    Graded("alibi_slopes", "minibert/nn/alibi.py", "alibi_slopes", "Press et al. 2022 §3",
           ("alibi_powers_of_two", "alibi_other_counts", "alibi_bad_count")),
    Graded("span_based_dynamic_convolution", "minibert/nn/dynamic_conv.py", "span_based_dynamic_convolution",
           "Jiang et al. 2020 §3.2, Eq. 4", ("dynamic_conv_kernels", "dynamic_conv_longer_than_sequence")),
    Graded("layer_groups", "minibert/models/albert.py", "layer_groups", "Lan et al. 2020 §3.1 (ALBERT)",
           ("layer_groups_even", "layer_groups_uneven")),
    Graded("cosine_loss", "minibert/distillation.py", "cosine_loss", "Sanh et al. 2019 §3 (DistilBERT)",
           ("cosine_random", "cosine_padding_ignored")),
    Graded("make_log_bucket_position", "minibert/nn/relative_position.py", "make_log_bucket_position",
           "He et al. 2021 §3.1 (DeBERTa); v2's log buckets",
           ("log_buckets_near_positions", "log_buckets_far_positions")),
)
