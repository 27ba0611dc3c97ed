#!/usr/bin/env bash
# The GPU checks, in one run of under 8 minutes on one H100/H200 (bench/README.md, "On one GPU"):
#   bash bench/gpu_check.sh OUT
# writes into the folder OUT, section by section (a section that fails or runs out of time loses only itself):
#   device.txt       the device line: GPU, driver, jax, jaxlib, flax, torch, transformers
#   attention.md     cuDNN attention parity in bf16 and padding as lengths (bench/attention_check.py), .json too
#   bert-mlm.md      train_throughput.py rows for BERT-base seq 128 batch 128, MLM
#   bert-nsp.md      the same for MLM + NSP
#   modernbert.md    ModernBERT-base seq 1024 on WikiText-2 section lengths, minibert and torch eager
# WikiText-2 (wiki.valid.raw and wiki.test.raw, for ModernBERT's lengths) is read from $BENCH_DATA/wikitext-2-raw
# (default ../shared/data). Python packages the machine lacks travel as wheels in .whl/ (bench/README.md).
# SECTIONS="attention bert-mlm" reruns only those sections.
set -u
out=${1:?usage: bash bench/gpu_check.sh OUT}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi

section() {   # section NAME SECONDS COMMAND...: run it with a time limit, its output into OUT/NAME.md
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    [[ " ${SECTIONS:-attention bert-mlm bert-nsp modernbert} " == *" $name "* ]] || return 0
    timeout -k 5 "$limit" "$@" > "$out/$name.md" 2>&1
    local status=$?
    pkill -f "train_throughput.py --worker" 2> /dev/null   # a timed-out run's workers go with it
    echo "$name: exit $status in $((SECONDS - start)) s" | tee -a "$out/sections.txt"
}

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c 'import sys, jax, jaxlib, flax, optax, orbax.checkpoint as ocp, torch, transformers
print(f"python {sys.version.split()[0]}, jax {jax.__version__}, jaxlib {jaxlib.__version__}, flax {flax.__version__}, "
      f"optax {optax.__version__}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"transformers {transformers.__version__}; jax devices: {jax.devices()}")'
} > "$out/device.txt" 2>&1
cat "$out/device.txt"

throughput=(python3 bench/train_throughput.py --peak-tflops 989 --steps 20)
section attention 120 python3 bench/attention_check.py --json "$out/attention.json"
section bert-mlm 150 "${throughput[@]}" --configs bert-base-128-b128-mlm
section bert-nsp 120 "${throughput[@]}" --configs bert-base-128-b128-mlm+nsp
section modernbert 110 "${throughput[@]}" --data "${BENCH_DATA:-../shared/data}" \
    --configs modernbert-base-1024-wiki --impls minibert torch-eager
