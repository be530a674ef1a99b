#!/usr/bin/env bash
# Regenerate every table of benchmarks/RESULTS.md on this machine.
# Each command prints a markdown table (saved as benchmarks/<name>.md) and writes benchmarks/<name>.json;
# ablations also write <name>_sweep.png and <name>_ablations.png. Progress bars go to stderr.
# Usage: benchmarks/run_all.sh [name ...]   (default: all; names: shapes fmnist fmnist_necessary canvases photos photos_opencv photos_necessary photos_fast photo_composites sanity_shapes
#        ablate_shapes sweep_shapes ablate_fmnist, and the tune_* tables below)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS="101 102 103"
PHOTO_METHODS="random square sobel gradcam integrated-gradients meaningful-perturbation extremal-perturbation"

declare -A CMD=(
  [shapes]="bench shapes --n 64 --seeds $SEEDS"
  [fmnist]="bench fmnist --n 64 --seeds $SEEDS"
  [fmnist_necessary]="bench fmnist --preset fmnist-necessary --n 64 --seeds $SEEDS"
  [canvases]="bench canvases --n 8 --seeds $SEEDS"
  # photos: fixed images (a seed only changes the explainer and the random baselines); the 13 photos that load
  # everywhere; occlusion and RISE left out (about 55 s a photo together); masks saved for benchmarks/photo_grid.py
  [photos]="bench photos --seeds 101 --methods actmatch $PHOTO_METHODS --masks benchmarks/photos_masks.npz"
  # the 12 benchmark-only photos (Debian's opencv-doc): the same methods, a table of their own
  [photos_opencv]="bench photos --photos apple orange butterfly chicky squirrel smarties stuff building home leuven aero pca_test --seeds 101 --methods actmatch $PHOTO_METHODS"
  # the necessity preset on the 7 confident photos of the 25 (top-1 p >= 0.5; benchmarks/photo_suite.md)
  [photos_necessary]="bench photos --preset imagenet-necessary --seeds 101 --methods actmatch --photos coffee camera clock apple butterfly chicky home"
  # the fast preset (half the warm-up) on the 13 core photos: its price in quality
  [photos_fast]="bench photos --preset imagenet-fast --seeds 101 --methods actmatch"
  [photo_composites]="bench photo-composites --n 6 --seeds 101 --methods actmatch gradcam"   # the instance metrics on photos (extremal perturbation: ~4 min a composite)
  [sanity_shapes]="bench sanity shapes --n 16 --seeds $SEEDS"
  [ablate_shapes]="ablate shapes --no-sweep --n 16 --seeds $SEEDS"
  [sweep_shapes]="ablate shapes --sweep-only --n 16 --seeds 101"
  [ablate_fmnist]="ablate fmnist --no-sweep --n 16 --seeds $SEEDS"
)
# the explainer's own targets on unseen seeds (benchmarks/tune_*.py print a markdown table, no JSON)
declare -A TUNE=(
  [tune_shapes_2024]="tune_explainer.py shapes --seed 2024 --n 64"
  [tune_shapes_3024]="tune_explainer.py shapes --seed 3024 --n 64"
  [tune_shapes_4024]="tune_explainer.py shapes --seed 4024 --n 64"
  [tune_fmnist_1000]="tune_explainer.py fmnist --seed 1000 --n 64"
  [tune_fmnist_1200]="tune_explainer.py fmnist --seed 1200 --n 64"
  [tune_fmnist_1800]="tune_explainer.py fmnist --seed 1800 --n 64"
  [tune_photos]="tune_photos.py"
  [photo_speed]="photo_speed.py"
)
ORDER=(shapes fmnist fmnist_necessary canvases photos photos_opencv photos_necessary photos_fast photo_composites sanity_shapes ablate_shapes sweep_shapes ablate_fmnist "${!TUNE[@]}")

for name in "${@:-${ORDER[@]}}"; do
  if [[ -n "${TUNE[$name]:-}" ]]; then
    echo ">>> python benchmarks/${TUNE[$name]}" >&2
    # shellcheck disable=SC2086
    "$PY" benchmarks/${TUNE[$name]} | tee "benchmarks/$name.md"
    continue
  fi
  cmd="${CMD[$name]:?unknown name $name}"
  echo ">>> python -m actmatch_lite $cmd --json benchmarks/$name.json" >&2
  # shellcheck disable=SC2086  # word splitting of the command is intended
  MPLBACKEND=Agg "$PY" -m actmatch_lite $cmd --json "benchmarks/$name.json" | tee "benchmarks/$name.md"
done
