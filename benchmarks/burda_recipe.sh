#!/usr/bin/env bash
# The recipe for Burda, Grosse & Salakhutdinov (2016), Table 1: MNIST with dynamic binarization, one stochastic
# layer, 784-200-200-50 tanh MLP encoder and decoder, Bernoulli decoder, test NLL by K = 5000 importance samples.
#   Their figures: VAE (K = 1) 86.76 nats, IWAE K = 5 85.54, IWAE K = 50 84.78, after 3280 epochs (Adam, batch 20,
#   lr 1e-3 · 10^(−i/7) for 3^i epochs, i = 0..7).
# Ours has to fit ~3 hours on 2 CPU cores, so it trains far fewer epochs with an exponential decay instead:
#   epoch e uses lr · decay^(e − 1)   (--lr-decay; 0.9985 halves the rate every ~460 epochs).
#
#   benchmarks/burda_recipe.sh [vae|iwae5] [OUT] [EPOCHS]
#
#   vae    (default) the ELBO, batch 50: ~10 s an epoch on 2 cores (≈ 1000 epochs in 3 h)
#   iwae5  the IWAE bound with K = 5 (--objective iwae --k 5), batch 100: ~3.2× the VAE's cost per epoch
#
# It trains (resumable: run it again to continue after Ctrl-C), prints the training time (sum of the epochs' seconds,
# evaluation excluded), then evaluates the last checkpoint with K = 5000 (float64, ≈ 30 KB per decoder row, 2000 rows
# per pass: ~90 MB, plus 63 MB for the test set in float64; the 10 000 test images are 5·10⁷ decoder rows, one to two
# hours on the 2 cores; add --n-test 1000 to the evaluate line for a 10× quicker figure with its standard error).
# The learning curve (test −ELBO per epoch) is OUT/curves.png and OUT/metrics.jsonl; the evaluation is OUT/nll.json.
# MNIST comes from $MINIVAE_SHARED_DATA/mnist (default /work/shared/data/mnist).
set -euo pipefail

RECIPE=${1:-vae}
OUT=${2:-runs/burda-$RECIPE}
EPOCHS=${3:-3000}
DATA=${MINIVAE_SHARED_DATA:-/work/shared/data}/mnist
MINIVAE=${MINIVAE:-minivae}

COMMON=(--dataset mnist --data-dir "$DATA" --binarize --model mlp --hidden 200,200 --latent 50 --activation tanh
        --lr 1e-3 --lr-decay 0.9985 --seed 1)
case "$RECIPE" in
  vae)   OBJECTIVE=(--batch-size 50) ;;
  iwae5) OBJECTIVE=(--batch-size 100 --objective iwae --k 5) ;;
  *)     echo "usage: $0 [vae|iwae5] [OUT] [EPOCHS]" >&2; exit 2 ;;
esac

if [[ -f "$OUT/checkpoint.npz" ]]; then
  "$MINIVAE" train --resume "$OUT" --epochs "$EPOCHS"
else
  "$MINIVAE" train "${COMMON[@]}" "${OBJECTIVE[@]}" --epochs "$EPOCHS" --out "$OUT"
fi

python - "$OUT/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
hours = sum(r["seconds"] for r in rows) / 3600
print(f"{len(rows)} epochs, {hours:.2f} h of training, last test −ELBO {rows[-1]['test_loss']:.2f} nats")
EOF

"$MINIVAE" evaluate --checkpoint "$OUT/checkpoint.npz" --k 5000 --json > "$OUT/nll.json"
python -c "import json; r = json.load(open('$OUT/nll.json')); print(f\"test NLL (K = 5000) {r['nll']:.2f} ± \
{r['nll_stderr']:.2f} nats, ELBO {r['elbo']:.2f}, KL {r['kl']:.2f}, {r['active_units']} active units, \
{r['seconds'] / 60:.0f} min\")"
