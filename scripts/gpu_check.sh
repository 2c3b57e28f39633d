#!/usr/bin/env bash
# The CUDA checks, run on a lent GPU machine (no network): the default CUDA policy (QLoRA: 4-bit
# NF4 + LoRA, bf16 compute) trained end to end on the tiny model, then `workbench bench` on a
# Qwen2.5-0.5B-shaped model with random weights, QLoRA and bf16 LoRA, at demo, long and reasoning
# lengths. Missing packages travel as wheels in .whl/; the embedded tokenizer (no weights) in .gpu_home/ (see the README's GPU section).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export WORKBENCH_HOME=$PWD/.gpu_home PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
TASK=.gpu_home/chain_sum.jsonl
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, transformers, trl, peft, bitsandbytes as b; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__, 'bnb', b.__version__)"

python3 -m workbench.cli train --model tiny-random --task $TASK --max_steps 2 --num_generations 4 \
  --per_device_train_batch_size 8 --max_completion_length 16 --eval_items 8 --runs_root /tmp/runs \
  --run_name qlora_tiny 2>&1 | grep -v -i warn | tail -8
cp /tmp/runs/qlora_tiny/events.jsonl "$OUT/qlora_tiny_events.jsonl"; cp /tmp/runs/qlora_tiny/metrics.jsonl "$OUT/qlora_tiny_metrics.jsonl"

# Issue 16's settings (reasoning: every rollout forced to 256 new tokens), QLoRA and bf16 LoRA, each
# against TRL as it comes and TRL tuned. Not yet run on a GPU: if it overruns the 10-minute device
# check, STEPS=1 or SETTINGS=demo,reasoning.
for q in 4bit none; do
  python3 -m workbench.cli bench --model random-0.5b --task $TASK --fixed_length --settings "${SETTINGS:-demo,long,reasoning}" \
    --steps "${STEPS:-2}" --quantization $q --output "$OUT/bench_gpu_$q.json" 2>&1 | grep -v -i "warn\|Loading weights" | tail -22
done

# Scale-out (README "From laptop to cluster"): the same recipe through accelerate on one GPU, 2 steps
# each on the 0.5B-shaped model: QLoRA with no launcher, then FSDP2 and DeepSpeed ZeRO-2 as 1-process
# jobs (DeepSpeed from a carried wheel in .whl/, with no compiled ops). Prints step time and peak memory.
export DS_BUILD_OPS=0 DS_SKIP_CUDA_CHECK=1
SCALE=(--model random-0.5b --task $TASK --max_steps 2 --num_generations 4 --per_device_train_batch_size 8
       --max_completion_length 64 --eval_items 0 --save_adapter false --runs_root /tmp/runs_scale)
timeout 180 python3 -m workbench.cli train "${SCALE[@]}" --quantization 4bit --run_name qlora_05b 2>&1 | tail -3
timeout 180 python3 -m accelerate.commands.launch --config_file configs/accelerate/fsdp2.yaml --num_processes 1 \
  -m workbench train "${SCALE[@]}" --quantization none --run_name fsdp2_05b 2>&1 | tail -3
if python3 -c "import deepspeed" 2>/dev/null; then
  timeout 180 python3 -m accelerate.commands.launch --config_file configs/accelerate/zero2.yaml --num_processes 1 \
    -m workbench train "${SCALE[@]}" --quantization none --run_name zero2_05b 2>&1 | tail -3
else
  echo "zero2: deepspeed is not installed (carry its wheel in .whl/); skipped"
fi
python3 - <<'PY'
import json, pathlib
for run in ("qlora_05b", "fsdp2_05b", "zero2_05b"):
    path = pathlib.Path("/tmp/runs_scale", run, "metrics.jsonl")
    if not path.is_file():
        print(f"{run:10s} no metrics (did not run or crashed: see above)"); continue
    m = [json.loads(l) for l in path.read_text().splitlines()]
    print(f"{run:10s} steps {len(m)}  step s {[round(x['step_seconds'], 2) for x in m]}  "
          f"peak GPU memory {max(x.get('gpu_memory_peak_gb') or 0 for x in m):.2f} GB")
PY
cp -r /tmp/runs_scale "$OUT/" 2>/dev/null || true
