#!/usr/bin/env bash
# Issue 5, session 8: the image success detector trained on matched success/failure pairs,
# with batch norm and without augmentation, on 128 px views pooled to 64 px
# (docs/RESULTS.md, "Image success detector, session 8").
# Usage: bash benchmarks/sd_image_paired.sh [ROOT] POLICY_CHECKPOINT   (default ROOT=runs/i8)
# POLICY_CHECKPOINT is a state Q-policy (session 7's learning benchmark, runs/L8's final
# checkpoint) whose epsilon-greedy episodes hold the successes scripted episodes rarely have.
set -euo pipefail
ROOT=${1:-runs/i8}
POLICY=${2:?give a state Q-policy checkpoint, e.g. runs/L8/round-4/checkpoints/ckpt-000003000.pt}
export OMP_NUM_THREADS=1
RUN="python -m mtopt"
V128="--final-views --workcell.image-size 128 --workcell.side-image-size 128 --no-progress"
LIFTS="lift-any lift-banana lift-bottle lift-sausage lift-milk lift-box lift-can lift-carrot"
SECTIONS="place-bottom place-top-left place-top-right"

# 1. the fleet's log, two robots (robot 1 is the holdout): 4,000 scripted and 8,000
#    epsilon-greedy episodes of the learned policy, final views only, 128 px
$RUN collect --out "$ROOT/log" --episodes 4000 --robots 2 --seed 2 $V128
$RUN collect --out "$ROOT/log" --episodes 8000 --robots 2 --seed 5 --policy "$POLICY" \
    --epsilon 0.2 $V128

# 2. outcome examples at 128 px: 400 pairs per task (seed 3) and 50 for testing (seed 4);
#    1,600 more pairs per lift task and place-any (seed 23); 6,000 more pairs per plate section
#    (2,000 with seed 13, 4,000 with seed 31)
for t in $SECTIONS place-any $LIFTS; do
  $RUN sd examples --task "$t" --out "$ROOT/examples" --pairs 400 --seed 3 --image-size 128 --no-progress
  $RUN sd examples --task "$t" --out "$ROOT/examples-test" --pairs 50 --seed 4 --image-size 128 --no-progress
done
for t in $LIFTS place-any; do
  $RUN sd examples --task "$t" --out "$ROOT/examples-more" --pairs 1600 --seed 23 --image-size 128 --no-progress
done
for t in $SECTIONS; do
  $RUN sd examples --task "$t" --out "$ROOT/examples-big" --pairs 2000 --seed 13 --image-size 128 --no-progress
  $RUN sd examples --task "$t" --out "$ROOT/examples-big2" --pairs 4000 --seed 31 --image-size 128 --no-progress
done
#    boundary cases of the place tasks (objects near rims and dividers, beside the plate)
for t in place-any $SECTIONS; do
  $RUN sd examples --task "$t" --out "$ROOT/examples-edge" --pairs 1500 --seed 41 --image-size 128 \
      --boundary-fraction 0.5 --no-progress
done
