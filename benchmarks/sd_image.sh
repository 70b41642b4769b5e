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

SD="sd train --batch-size 32 --holdout-robot 1 --budget 3000 --no-progress"
EVAL="sd eval --data $ROOT/log-image --holdout-robot 1"

# 1. outcome examples (the examples code of commit 38677a4): 400 pairs per task for
#    training, 50 (another seed) for testing
for t in $TASKS; do
  $RUN sd examples --task "$t" --out "$ROOT/examples" --pairs 400 --seed 3 --no-progress
  $RUN sd examples --task "$t" --out "$ROOT/examples-test" --pairs 50 --seed 4 --no-progress
done

# 2. the fleet's first log, two robots (robot 1 is the holdout): scripted and
#    epsilon-greedy episodes with per-step images and the final side images
$RUN collect --out "$ROOT/log-image" --episodes 2000 --robots 2 --seed 2 --obs image \
    --side-images --no-progress
$RUN collect --out "$ROOT/log-image" --episodes 1500 --robots 2 --seed 5 --obs image \
    --side-images --policy "$POLICY" --epsilon 0.2 --exploration motion --no-progress

# 3. the base detector: examples + robot 0's episodes relabelled
$RUN $SD --examples "$ROOT/examples" --log "$ROOT/log-image" --out "$ROOT/sd-image" \
    --steps 12000 --network.kind image --network.channels 16 --checkpoint-every 1000

# 4. more fleet data, final views only (--final-views), then continual fine-tuning
$RUN collect --out "$ROOT/log-image" --episodes 4000 --robots 2 --seed 6 --final-views \
    --no-progress
$RUN collect --out "$ROOT/log-image" --episodes 2000 --robots 2 --seed 7 --final-views \
    --policy "$POLICY" --epsilon 0.2 --exploration motion --no-progress
$RUN $SD --init "$ROOT/sd-image" --examples "$ROOT/examples" --log "$ROOT/log-image" \
    --out "$ROOT/sd-image-ft" --steps 6000 --learning-rate 0.0005 --checkpoint-every 2000 --seed 1

# 5. outcome examples v2 (gripper anywhere, lifted heights from the boundary; commit ce0e113)
#    and a second fine-tuning round on them
for t in $TASKS; do
  $RUN sd examples --task "$t" --out "$ROOT/examples-v2" --pairs 400 --seed 3 --no-progress
  $RUN sd examples --task "$t" --out "$ROOT/examples-test-v2" --pairs 50 --seed 4 --no-progress
done
$RUN $SD --init "$ROOT/sd-image-ft" --examples "$ROOT/examples-v2" --log "$ROOT/log-image" \
    --out "$ROOT/sd-image-ft2" --steps 9000 --learning-rate 0.0005 --checkpoint-every 1500 --seed 2

# 6. paper Table 3 on the held-out robot (all 9,500 episodes' robot 1) and on held-out examples
for sd in sd-image sd-image-ft sd-image-ft2; do
  $RUN $EVAL --checkpoint "$ROOT/$sd" --json "$ROOT/$sd-holdout.json"
done
$RUN sd eval --checkpoint "$ROOT/sd-image" --data "$ROOT/examples-test" --json "$ROOT/sd-image-examples.json"
$RUN sd eval --checkpoint "$ROOT/sd-image-ft2" --data "$ROOT/examples-test-v2" \
    --json "$ROOT/sd-image-ft2-examples-v2.json"
