#!/usr/bin/env bash
# The A/A check of docs/measurement.md, three pairs back to back: run the selection twice, `ipcbench aa`
# (the first two pairs with --save: the machine file then keeps their pooled between-run sd), and so on.
# Usage: tools/aa_pairs.sh [OUTDIR]   (an idle machine: nothing else running; ~10 min on 2 vCPUs)
set -euo pipefail
out="${1:-aa}"
mkdir -p "$out"
SEL=(-m pipe_duplex,pipe_simplex,queue,manager_dict,manager_list,pool_apply,pool_apply_async
     --payload-sizes 8,1KiB,64KiB --workers 1,2 --start-method fork)
for pair in "1 2 --save" "3 4 --save" "5 6"; do
    set -- $pair
    for seed in "$1" "$2"; do
        echo "$(date -u +%T) run $seed"
        ipcbench run --preset quick "${SEL[@]}" --seed "$seed" -o "$out/aa$seed.json" -q --overwrite
    done
    ipcbench aa "$out/aa$1.json" "$out/aa$2.json" ${3:-} > "$out/aa$1$2.txt" 2>&1 || true
    head -5 "$out/aa$1$2.txt"
done
