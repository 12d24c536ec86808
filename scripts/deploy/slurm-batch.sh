#!/bin/bash
# One shard of a gradpath batch run per Slurm array task; resubmitting the same array (or a
# requeue after preemption) continues each shard where it stopped (--resume).
#
#   mkdir -p out logs
#   jid=$(sbatch --parsable scripts/deploy/slurm-batch.sh)
#   sbatch --dependency=afterok:$jid --wrap \
#       "gradpath merge out/part-*.jsonl --input data/polarity/test.jsonl --output out/all.jsonl"
#
# The shard is SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT, read by
# gradpath itself: the array must be contiguous (0-N or 1-N, no step).
#SBATCH --job-name=gradpath-ig
#SBATCH --array=0-15
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=logs/%x-%A_%a.out
set -euo pipefail
MODEL=${MODEL:-models/all-MiniLM-L6-v2}
INPUT=${INPUT:-data/polarity/test.jsonl}
srun gradpath batch --method ig --model "$MODEL" --input "$INPUT" \
    --similar-to "This is a positive review." \
    --output 'out/part-{shard}.jsonl' --resume --skip-bad \
    --threads "${SLURM_CPUS_PER_TASK:-1}" --quiet
