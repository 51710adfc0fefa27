#!/bin/bash
# Data-parallel minivae training on a Slurm cluster (docs/mpi.md): one MPI rank per node, each using its node's cores.
# Submit with `sbatch docs/slurm-train.sh`; resubmit the same script to continue after a time limit (--resume).
#SBATCH --job-name=minivae
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=32
#SBATCH --time=04:00:00
#SBATCH --signal=TERM@120   # SIGTERM 2 minutes before the limit: all ranks stop at one step, rank 0 checkpoints
#SBATCH --output=%x-%j.out
set -euo pipefail

RUN=runs/mnist-iwae                 # on a file system every node sees (rank 0 writes it, all ranks read it to resume)
DATA=$HOME/data/mnist

# Threads per rank = the cores Slurm gave the task, so ranks never oversubscribe a node.
export NUMBA_NUM_THREADS=$SLURM_CPUS_PER_TASK OPENBLAS_NUM_THREADS=$SLURM_CPUS_PER_TASK

# With the mpich wheel from `pip install 'minivae[mpi]'` use its mpiexec (Hydra starts the ranks through Slurm);
# with the cluster's own MPI build mpi4py against it and use `srun --mpi=pmi2` (or pmix) instead of mpiexec.
LAUNCH=(mpiexec -n "$SLURM_NTASKS" -ppn 1)

if [ -f "$RUN/checkpoint.npz" ]; then
    "${LAUNCH[@]}" minivae train --resume "$RUN" --quiet
else
    "${LAUNCH[@]}" minivae train --dataset mnist --data-dir "$DATA" --binarize --objective iwae --k 5 \
        --hidden 200,200 --latent 50 --activation tanh --batch-size 512 --epochs 300 --out "$RUN" --quiet
fi
# The K = 5000 test log-likelihood, the test images split between the ranks:
"${LAUNCH[@]}" minivae evaluate --checkpoint "$RUN" --k 5000 --json > "$RUN/evaluate.json"
