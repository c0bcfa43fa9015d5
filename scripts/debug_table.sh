#!/usr/bin/env bash
# The debug study without a scheduler, ending with its comparison table: tiny synthetic runs of the seed's
# rows (multitask and single-task, two seeds where a 95% CI needs them, the age-loss variants, and a
# pretrained=True pair initialised from a Gender_Age run), then mtl-collect. One to two minutes on 2 CPU cores.
# Stands in for `mtl-launch experiments.yaml --debug && mtl-collect results/` until the launcher lands.
# Idempotent: completed runs are skipped. Usage: bash scripts/debug_table.sh [RESULTS] [mtl-collect flags]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
RESULTS=${1:-results}
shift || true
COLLECT_FLAGS=("$@")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
TINY=(--set image_size=64 --set epoch=3 --set steps_per_epoch=4 --set data.synthetic_train_size=96
      --set data.synthetic_eval_size=32)

train() {   # train NAME LOSS_WEIGHTS SEED [more --set pairs]
  local name=$1 weights=$2 seed=$3
  shift 3
  .venv/bin/python -m mtl_cluster.train --results "$RESULTS" "${TINY[@]}" --set "name=$name" \
    --set "loss_weights=$weights" --set "seed=$seed" "$@" >/dev/null
  echo "trained $name seed $seed" >&2
}

for seed in 0 1; do
  train AlexNet-Gender_Smile_Emotion_Age '[1,1,1,1]' $seed
  train AlexNet-Gender '[1,0,0,0]' $seed
done
train AlexNet-Smile '[0,1,0,0]' 0
train AlexNet-Emotion '[0,0,1,0]' 0
train AlexNet-Age '[0,0,0,1]' 0
train AlexNet-Age-100-class-10-classes-crossentropy '[0,0,0,1]' 0 --set age_loss_type=age_100_10_cls_loss
train AlexNet-Age-10-classes-crossentropy '[0,0,0,1]' 0 --set age_loss_type=age_10_cls_loss
# pretraining stand-in (IMDB-WIKI needs real data): a synthetic Gender_Age run whose weights start the next two
init="$RESULTS/debug_init/AlexNet-Gender_Age_seed0"
.venv/bin/python -m mtl_cluster.train --run-dir "$init" "${TINY[@]}" --set name=AlexNet-Gender_Age \
  --set 'loss_weights=[1,0,0,1]' >/dev/null
echo "trained AlexNet-Gender_Age seed 0 (init for load_IMDB_WIKI_pretrained_model=true)" >&2
PRE=(--set load_IMDB_WIKI_pretrained_model=true --set "init_checkpoint=$init" --set init_from=AlexNet-Gender_Age)
train AlexNet-Gender_Smile_Emotion_Age '[1,1,1,1]' 0 "${PRE[@]}"
train AlexNet-Gender '[1,0,0,0]' 0 "${PRE[@]}"

exec .venv/bin/python -m mtl_cluster.cli_collect "$RESULTS" "${COLLECT_FLAGS[@]}"
