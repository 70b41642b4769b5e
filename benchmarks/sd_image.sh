#!/usr/bin/env bash
# Issue 5, session 5: the image success detector with 3x the outcome examples and a 9,500-
# episode log of final views (docs/RESULTS.md, "Image success detector, session 5").
# Usage: bash benchmarks/sd_image.sh [ROOT] [POLICY_CHECKPOINT]   (default ROOT=runs/i5)
# POLICY_CHECKPOINT is a state Q-policy (e.g. the learning benchmark's final checkpoint) whose
# epsilon-greedy episodes add the successes the scripted policies rarely produce.
set -euo pipefail
ROOT=${1:-runs/i5}
POLICY=${2:?give a state Q-policy checkpoint, e.g. runs/learning/round-6/checkpoints/ckpt-000003000.pt}
export OMP_NUM_THREADS=1
RUN="python -m mtopt"
TASKS="lift-any lift-banana lift-bottle lift-sausage lift-milk lift-box lift-can lift-carrot \
place-any place-bottom place-top-left place-top-right"

# 1. outcome examples: 400 pairs per task for training, 50 (another seed) for testing
for t in $TASKS; do
  $RUN sd examples --task "$t" --out "$ROOT/examples" --pairs 400 --seed 3 --no-progress
  $RUN sd examples --task "$t" --out "$ROOT/examples-test" --pairs 50 --seed 4 --no-progress
done

# 2. the fleet's log, two robots (robot 1 is the holdout): scripted and epsilon-greedy
#    episodes; the first part records per-step images too, the rest only the final views
$RUN collect --out "$ROOT/log-image" --episodes 2000 --robots 2 --seed 2 --obs image \
    --side-images --no-progress
$RUN collect --out "$ROOT/log-image" --episodes 1500 --robots 2 --seed 5 --obs image \
    --side-images --policy "$POLICY" --epsilon 0.2 --exploration motion --no-progress
$RUN collect --out "$ROOT/log-image" --episodes 4000 --robots 2 --seed 6 --final-views \
    --no-progress
$RUN collect --out "$ROOT/log-image" --episodes 2000 --robots 2 --seed 7 --final-views \
    --policy "$POLICY" --epsilon 0.2 --exploration motion --no-progress
