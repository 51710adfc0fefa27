#!/usr/bin/env bash
# Burda, Grosse & Salakhutdinov (2016), Table 1, MNIST: one recipe for each of its four rows, as the paper trains them.
#
#   row     model                                                   objective          paper (test NLL, K = 5000)
#   vae1    mlp  784-200-200-50, tanh                               ELBO               86.76
#   iwae1   mlp  784-200-200-50, tanh                               IWAE, k = 50       84.78
#   vae2    mlp2 784-(200,200)-100-(100,100)-50, tanh (hvae.py)     ELBO               85.33
#   iwae2   mlp2                                                    IWAE, k = 50       82.90
#
# The paper's schedule (its §5 and appendix; yburda/iwae experiments.py): Adam β₁ 0.9, β₂ 0.999, ε 1e-4, batch 20,
# stage i = 0..7 lasting 3^i epochs at lr 0.001·10^(−i/7) (--lr-schedule burda): 3280 epochs. MNIST with dynamic
# binarization (x ~ Bernoulli(pixel) every batch), the test set binarized once for the K = 5000 estimate.
# Differences from the paper, all small: all 60 000 training images (the paper held out 400 for validation); our
# ELBO rows take the top KL in closed form (hvae.py; same expectation as the paper's sampled log-weights); the
# reference code's Adam has β₁ = 0.99 and rounds the rates to 1e-4·round(10^(1−i/7), 1); the paper initializes the
# output bias to the logit of the training mean, ours is PyTorch's uniform initialization.
#
#   benchmarks/burda_table.sh ROW [OUT]        ROW one of vae1 iwae1 vae2 iwae2; OUT default runs/burda-table
#   BUDGET=S     stop training after S seconds of wall-clock time (SIGINT: the run checkpoints its last step)
#   EPOCHS=N     train N epochs in all (default 3280); EVAL_N=N evaluate on the first N test images (default all)
#   MINIVAE=…    the minivae command (default minivae); PYTHON=… a python with numpy (default python)
#
# Run it again to continue (a run resumes bit for bit, mid-epoch too). Each call appends its training wall-clock
# and CPU seconds to OUT/ROW/sessions.tsv, then evaluates the checkpoint with K = 5000 into OUT/ROW/nll.json and
# prints one line: steps, epochs, training time, test NLL. docs/burda-table.md has the pace measured on the 2-core
# machine (benchmarks/burda_pace.py) and the time each row needs.
set -euo pipefail

ROW=${1:?usage: burda_table.sh vae1|iwae1|vae2|iwae2 [OUT]}
OUT=${2:-runs/burda-table}/$ROW
EPOCHS=${EPOCHS:-3280}
DATA=${MINIVAE_SHARED_DATA:-/work/shared/data}/mnist
MINIVAE=${MINIVAE:-minivae}

case $ROW in
  vae1)  MODEL=(--model mlp --hidden 200,200 --latent 50 --activation tanh) ;;
  iwae1) MODEL=(--model mlp --hidden 200,200 --latent 50 --activation tanh --objective iwae --k 50) ;;
  vae2)  MODEL=(--model mlp2) ;;
  iwae2) MODEL=(--model mlp2 --objective iwae --k 50) ;;
  *) echo "burda_table.sh: unknown row $ROW (vae1, iwae1, vae2, iwae2)" >&2; exit 2 ;;
esac

mkdir -p "$OUT"
if [[ -f "$OUT/checkpoint.npz" ]]; then
  TRAIN=("$MINIVAE" train --resume "$OUT" --epochs "$EPOCHS" --quiet)
else
  TRAIN=("$MINIVAE" train --dataset mnist --data-dir "$DATA" --binarize "${MODEL[@]}" --batch-size 20 --lr 1e-3
         --lr-schedule burda --adam-eps 1e-4 --epochs "$EPOCHS" --seed 1 --out "$OUT" --quiet)
fi
start=$(date +%s.%N)
status=0
if [[ -n "${BUDGET:-}" ]]; then
  /usr/bin/time -f "%U %S" -o "$OUT/.cpu" timeout -s INT "$BUDGET" "${TRAIN[@]}" || status=$?
else
  /usr/bin/time -f "%U %S" -o "$OUT/.cpu" "${TRAIN[@]}" || status=$?
fi
[[ $status -eq 0 || $status -eq 130 || $status -eq 124 ]] || exit "$status"   # 130/124: stopped by the budget
read -r user sys < <(tail -n 1 "$OUT/.cpu")
awk -v s="$start" -v e="$(date +%s.%N)" -v u="$user" -v y="$sys" -v d="$(date -Is)" \
  'BEGIN { printf "%s\t%.1f\t%.1f\n", d, e - s, u + y }' >> "$OUT/sessions.tsv"

"$MINIVAE" evaluate --checkpoint "$OUT" --k 5000 ${EVAL_N:+--n-test "$EVAL_N"} --json --quiet > "$OUT/nll.json"
"${PYTHON:-python}" - "$OUT" "$ROW" <<'EOF'
import json, sys
import numpy as np
out, row = sys.argv[1:]
meta = json.loads(str(np.load(f"{out}/checkpoint.npz", allow_pickle=False)["meta"]))
wall = cpu = 0.0
for line in open(f"{out}/sessions.tsv"):
    _, w, c = line.split("\t")
    wall, cpu = wall + float(w), cpu + float(c)
r = json.load(open(f"{out}/nll.json"))
print(f"{row}: {meta['step']} steps ({meta['step'] / 3000:.2f} epochs of 60 000), {wall / 3600:.2f} h wall "
      f"({cpu / 3600:.2f} h CPU) training incl. per-epoch test ELBO; test NLL (K = {r['k']}, {r['n']} images) "
      f"{r['nll']:.2f} ± {r['nll_stderr']:.2f} nats, active units {r['active_units_per_layer']}")
EOF
