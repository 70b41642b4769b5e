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

# 3. the plate-section proxy (outcome examples of the three sections only): J, then J2
mkdir -p "$ROOT/px-test"
for t in $SECTIONS; do ln -sf "../examples-test/examples-place-$t-s4.npz" "$ROOT/px-test/"; done
SD="sd train --network.kind image --network.input-size 128 --network.channels 16 \
    --network.norm batch --augment.no-enabled --no-progress"
$RUN $SD --examples "$ROOT/examples-big" --out "$ROOT/px-J" --steps 3000 --batch-size 32 \
    --pair-fraction 1.0 --checkpoint-every 500 --keep-checkpoints 10
$RUN sd train --examples "$ROOT/examples-big" --out "$ROOT/px-J2" --init "$ROOT/px-J" \
    --steps 5000 --batch-size 32 --pair-fraction 1.0 --augment.no-enabled \
    --checkpoint-every 1000 --keep-checkpoints 10 --seed 1 --no-progress
$RUN sd eval --checkpoint "$ROOT/px-J2" --data "$ROOT/px-test"

# 4. the 12-task detectors: sd2 and sd3 start from J2 (sd3 with a share of robot episodes),
#    sd4 continues sd3 with the boundary examples
EX="$ROOT/examples $ROOT/examples-more $ROOT/examples-big $ROOT/examples-big2"
ALL="--log $ROOT/log --budget 3000 --holdout-robot 1 --batch-size 64 --pair-fraction 1.0 \
    --augment.no-enabled --no-progress"
$RUN sd train --examples $EX $ALL --out "$ROOT/sd2" --init "$ROOT/px-J2" --steps 20000 --checkpoint-every 4000 \
    --keep-checkpoints 10 --seed 2
$RUN sd train --examples $EX $ALL --out "$ROOT/sd3" --init "$ROOT/px-J2" --steps 20000 --checkpoint-every 4000 \
    --keep-checkpoints 10 --seed 2 --episode-fraction 0.3
$RUN sd train --examples $EX "$ROOT/examples-edge" $ALL --out "$ROOT/sd4" --init "$ROOT/sd3" --steps 10000 \
    --checkpoint-every 2500 --keep-checkpoints 10 --seed 3 --episode-fraction 0.3

# 5. paper Table 3 on the held-out robot and on the test examples; ranking at any threshold
for sd in sd2 sd3 sd4; do
  $RUN sd eval --checkpoint "$ROOT/$sd" --data "$ROOT/log" --holdout-robot 1 --json "$ROOT/$sd.holdout.json"
  $RUN sd eval --checkpoint "$ROOT/$sd" --data "$ROOT/examples-test" --json "$ROOT/$sd.extest.json"
done
python benchmarks/sd_ranking.py --log "$ROOT/log" --holdout-robot 1 \
    --checkpoint "$ROOT/sd2" "$ROOT/sd3" "$ROOT/sd4"

# 6. do 128 px views help the lifts? lift examples only, 64 px (pooled) against 128 px
mkdir -p "$ROOT/lifts"
for d in examples examples-more; do
  for f in "$ROOT/$d"/examples-lift-*.npz; do ln -sf "../$d/$(basename "$f")" "$ROOT/lifts/$d-$(basename "$f")"; done
done
LIFT="sd train --examples $ROOT/lifts --batch-size 32 --network.kind image --network.channels 16 \
    --network.norm batch --pair-fraction 1.0 --augment.no-enabled --keep-checkpoints 10 --no-progress"
$RUN $LIFT --out "$ROOT/lift64" --steps 4000 --checkpoint-every 1000 --network.input-size 128
$RUN $LIFT --out "$ROOT/lift64L" --steps 12000 --checkpoint-every 4000 --network.input-size 128
$RUN $LIFT --out "$ROOT/lift128" --steps 4000 --checkpoint-every 1000 --network.image-size 128 \
    --network.conv-layers 5
python benchmarks/sd_ranking.py --log "$ROOT/log" --holdout-robot 1 \
    --checkpoint "$ROOT/lift64" "$ROOT/lift64L" "$ROOT/lift128" "$ROOT/sd4"

# 7. sd5: 10,000 more steps on sd4
$RUN sd train --examples $EX "$ROOT/examples-edge" $ALL --out "$ROOT/sd5" --init "$ROOT/sd4" \
    --steps 10000 --checkpoint-every 5000 --keep-checkpoints 10 --seed 4 --episode-fraction 0.3 \
    --torch-threads 2
$RUN sd eval --checkpoint "$ROOT/sd5" --data "$ROOT/log" --holdout-robot 1 --json "$ROOT/sd5.holdout.json"
python benchmarks/sd_ranking.py --log "$ROOT/log" --holdout-robot 1 --checkpoint "$ROOT/sd5"

# 8. (session 9) do gripper-centred crops of the 128 px views separate the lifts? a proxy
(cd benchmarks && python sd_gripper_crop.py --examples "../$ROOT/examples" "../$ROOT/examples-more" \
    --log "../$ROOT/log" --holdout-robot 1 --steps 6000)

# 9. sd6: sd4 with a gripper-crop tower added (sd4's weights kept where the shapes match)
$RUN sd train --examples $EX "$ROOT/examples-edge" $ALL --out "$ROOT/sd6" --init "$ROOT/sd4" \
    --extend-init --network.kind image --network.input-size 128 --network.channels 16 \
    --network.norm batch --network.gripper-crop 32 --steps 10000 --checkpoint-every 2500 \
    --keep-checkpoints 10 --seed 6 --episode-fraction 0.3
$RUN sd eval --checkpoint "$ROOT/sd6" --data "$ROOT/log" --holdout-robot 1 --json "$ROOT/sd6.holdout.json"
$RUN sd eval --checkpoint "$ROOT/sd6" --data "$ROOT/examples-test" --json "$ROOT/sd6.extest.json"
python benchmarks/sd_ranking.py --log "$ROOT/log" --holdout-robot 1 --checkpoint "$ROOT/sd6"

# 10. per-task thresholds on a separate calibration log (one robot, new seeds), never robot 1
POL=runs/L8/round-4/checkpoints/ckpt-000003000.pt
V="--final-views --workcell.image-size 128 --workcell.side-image-size 128 --no-progress"
$RUN collect --out "$ROOT/calib" --episodes 1000 --robots 1 --seed 7 $V
$RUN collect --out "$ROOT/calib" --episodes 2000 --robots 1 --seed 8 --policy $POL --epsilon 0.2 $V
for sd in sd4 sd6; do
  $RUN sd calibrate --checkpoint "$ROOT/$sd" --log "$ROOT/calib" --budget 2000 --out "$ROOT/${sd}c"
  $RUN sd eval --checkpoint "$ROOT/${sd}c" --data "$ROOT/log" --holdout-robot 1 --json "$ROOT/${sd}c.holdout.json"
done
