#!/usr/bin/env bash
# Issue 5 measurements (docs/RESULTS.md, "Issue 5 — success detectors"): outcome examples, the
# state and image success detectors with robot 1 held out, their paper-Table-3 evaluation,
# labelling throughput, and a 12-task policy trained with SD rewards vs oracle rewards on the
# same log. Usage: bash benchmarks/sd_pipeline.sh [ROOT]   (default ROOT=runs/issue5)
set -euo pipefail
ROOT=${1:-runs/issue5}
RUN="nice -n 10 python -m mtopt"
mkdir -p "$ROOT"

# 1. data: a state log and an image log (with the SD's inputs), both from 2 scripted robots
$RUN collect --out "$ROOT/log-state" --episodes 8000 --robots 2 --seed 1 --no-progress
$RUN collect --out "$ROOT/log-image" --episodes 1500 --robots 2 --seed 2 --obs image \
    --side-images --no-progress

# 2. outcome examples, 150 success/failure pairs per task
for t in lift-any lift-banana lift-bottle lift-sausage lift-milk lift-box lift-can lift-carrot \
         place-any place-bottom place-top-left place-top-right; do
  $RUN sd examples --task "$t" --out "$ROOT/examples" --pairs 150 --seed 3 --no-progress
done
# held-out outcome examples (another seed), 50 pairs per task
for t in lift-any lift-banana lift-bottle lift-sausage lift-milk lift-box lift-can lift-carrot \
         place-any place-bottom place-top-left place-top-right; do
  $RUN sd examples --task "$t" --out "$ROOT/examples-test" --pairs 50 --seed 4 --no-progress
done

# 3. success detectors, robot 1 held out, labelling budget 3000 per task
OMP_NUM_THREADS=1 $RUN sd train --examples "$ROOT/examples" --log "$ROOT/log-state" \
    --budget 3000 --holdout-robot 1 --out "$ROOT/sd-state" --steps 3000 --batch-size 128 \
    --network.kind state --no-progress
OMP_NUM_THREADS=1 $RUN sd train --examples "$ROOT/examples" --log "$ROOT/log-image" \
    --budget 3000 --holdout-robot 1 --out "$ROOT/sd-image-base" --steps 4000 --batch-size 32 \
    --network.kind image --network.channels 16 --checkpoint-every 500 --no-progress
# continual fine-tuning (--init) on the same data
OMP_NUM_THREADS=1 $RUN sd train --init "$ROOT/sd-image-base" --examples "$ROOT/examples" \
    --log "$ROOT/log-image" --budget 3000 --holdout-robot 1 --out "$ROOT/sd-image" \
    --steps 6000 --batch-size 32 --learning-rate 0.0005 --checkpoint-every 1000 --seed 1 \
    --no-progress

# 4. paper Table 3 on the held-out robot, and on held-out outcome examples
for kind in state image; do
  $RUN sd eval --checkpoint "$ROOT/sd-$kind" --data "$ROOT/log-$kind" --holdout-robot 1 \
      --json "$ROOT/sd-$kind-holdout.json"
  $RUN sd eval --checkpoint "$ROOT/sd-$kind" --data "$ROOT/examples-test" \
      --json "$ROOT/sd-$kind-examples.json"
done

# 5. labelling throughput
PYTHONPATH=. python benchmarks/bench_sd_labelling.py --checkpoint "$ROOT/sd-state" --log "$ROOT/log-state"
PYTHONPATH=. python benchmarks/bench_sd_labelling.py --checkpoint "$ROOT/sd-image" --log "$ROOT/log-image" \
    --episodes 500
PYTHONPATH=. python benchmarks/sd_reward_agreement.py --checkpoint "$ROOT/sd-state" \
    --log "$ROOT/log-state"

# 6. SD rewards vs oracle rewards: same log, same seed, same settings
for rewards in oracle success_detector; do
  OMP_NUM_THREADS=1 $RUN train --config configs/train/state.yaml --data "$ROOT/log-state" \
      --out "$ROOT/q-$rewards" --steps 3000 --seed 0 --rewards "$rewards" \
      --success-detector "$ROOT/sd-state" --no-progress
  $RUN eval --checkpoint "$ROOT/q-$rewards/checkpoints/ckpt-000003000.pt" \
      --episodes-per-task 30 --seed 10000 --json "$ROOT/eval-$rewards.json" --no-progress
done

# 7. the demo with the new default (SD rewards)
/usr/bin/time -f "%e s wall %M KB" $RUN demo --out "$ROOT/demo" --no-progress
