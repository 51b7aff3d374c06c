#!/usr/bin/env bash
# tests/apps/e2e_test.sh SANF: the one-class pipeline end to end through the command line, on a slice of
# Fashion-MNIST (Debian's dataset-fashion-mnist) with the demo's backbone (a seeded random vit-tiny at 28x28,
# patch 4): train, eval, an AUROC floor for an easy class, Ctrl-C during training, and bad input.
# The floor: this exact configuration measured AUROC 0.849 (class trouser, its first 300 training images,
# the first 600 test images, 3 epochs); 0.75 leaves a wide margin for other CPUs' rounding and thread counts.
set -u
sanf=$1
data=/usr/share/datasets/fashion-mnist
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "FAIL: $data missing (apt install dataset-fashion-mnist)"; exit 1; }
source "$(dirname "$0")/cli_lib.sh"
common=(--dataset fashion-mnist --data-dir "$data" --backbone random:vit-tiny --image-size 28 --patch-size 4
        --cache-dir "$tmp/cache")

expect 0 "train trouser" -- "$sanf" train "${common[@]}" --normal-class trouser --train-limit 300 --test-limit 600 \
  --epochs 3 --lr 2e-4 --out "$tmp/run"
has "$tmp/err" "RANDOMLY INITIALISED"
[ "$(wc -l <"$tmp/run/train_log.jsonl")" -eq 3 ] || { echo "FAIL: train_log.jsonl lines"; fail=1; }
expect 0 "eval" -- "$sanf" eval --run "$tmp/run"
for f in metrics.json scores.csv roc.svg hist_nll.svg hist_z2.svg report.html; do
  [ -s "$tmp/run/$f" ] || { echo "FAIL: eval wrote no $f"; fail=1; }
done
auroc=$(sed -n 's/^ *"auroc": \([0-9.e-]*\),*$/\1/p' "$tmp/run/metrics.json")
echo "AUROC (trouser, 300 train images, 3 epochs): $auroc"
awk -v a="$auroc" 'BEGIN { exit !(a >= 0.75) }' || { echo "FAIL: AUROC $auroc below the floor 0.75"; fail=1; }

# Ctrl-C during training: exit 130, the last complete epoch stays usable, --resume finishes the run.
"$sanf" train "${common[@]}" --normal-class trouser --train-limit 300 --test-limit 600 --epochs 200 --out "$tmp/int" \
  >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
for _ in $(seq 600); do [ -f "$tmp/int/flow.safetensors" ] && break; sleep 0.1; done
kill -INT $pid
wait $pid
code=$?
if [ $code -ne 130 ]; then echo "FAIL: Ctrl-C: exit $code, expected 130"; tail -3 "$tmp/int.err"; fail=1; else echo "ok: Ctrl-C (exit 130)"; fi
has "$tmp/int.err" "interrupted at epoch"
ls "$tmp/int"/*.tmp.* >/dev/null 2>&1 && { echo "FAIL: Ctrl-C left a temporary file"; fail=1; }
expect 0 "eval after Ctrl-C" -- "$sanf" eval --run "$tmp/int" --thumbnails 2
expect 0 "resume to 3 epochs" -- "$sanf" train "${common[@]}" --normal-class trouser --train-limit 300 --test-limit 600 --epochs 3 \
  --out "$tmp/int" --resume

# Bad input: exit 1 (2 for usage), one clear line, nothing written.
expect 1 "missing data dir" -- "$sanf" train "${common[@]/$data/$tmp/none}" --normal-class 1 --out "$tmp/bad1"
[ -e "$tmp/bad1" ] && { echo "FAIL: a failed train created its run directory"; fail=1; }
expect 1 "unknown class" -- "$sanf" train "${common[@]}" --normal-class cat --out "$tmp/bad2"
has "$tmp/err" "unknown class 'cat'; the classes are 0=t-shirt"
expect 2 "unknown dataset" -- "$sanf" train --dataset imagenet --data-dir "$tmp" --normal-class 1 --out "$tmp/bad3"
mkdir -p "$tmp/trunc" && cp "$data"/*.gz "$tmp/trunc/" && head -c 100000 "$data/train-images-idx3-ubyte.gz" | gzip -dc 2>/dev/null | gzip >"$tmp/trunc/train-images-idx3-ubyte.gz"
expect 1 "truncated IDX file" -- "$sanf" train "${common[@]/$data/$tmp/trunc}" --normal-class 1 --out "$tmp/bad4"
has "$tmp/err" "train-images-idx3-ubyte"
expect 1 "weights of the wrong kind" -- "$sanf" train "${common[@]/random:vit-tiny/$tmp/run/flow.safetensors}" \
  --normal-class 1 --out "$tmp/bad5"
has "$tmp/err" "flow.safetensors"
expect 1 "a run of another config" -- "$sanf" train "${common[@]}" --normal-class trouser --train-limit 300 --test-limit 600 \
  --flow-layers 2 --out "$tmp/run" --resume
has "$tmp/err" "another configuration"
expect 1 "eval of a non-run" -- "$sanf" eval --run "$tmp/cache"
for d in bad1 bad2 bad3 bad4 bad5; do [ -e "$tmp/$d" ] && { echo "FAIL: $d was created"; fail=1; }; done
exit $fail
