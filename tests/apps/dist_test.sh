#!/usr/bin/env bash
# tests/apps/dist_test.sh SANF CHECKPOINT_DIFF MPIRUN: the commands under `mpirun -np 2` against one process, on a
# slice of Fashion-MNIST with the demo's random vit-tiny (28x28, patch 4), OMP_NUM_THREADS=1 per rank:
#   - extraction by 2 ranks writes the file 1 process writes, bit for bit (sanf extract); the feature cache
#     that train fills under 2 ranks is two shards and an index, one per entry of the 1-process cache;
#   - training by 2 ranks for 50 steps (global batch 11: ranks take 6 and 5 rows, and the last batch of each
#     epoch, 1 row, leaves rank 1 none) ends with the parameters 1 process ends with, to 1e-5 relative (measured
#     here: 3e-6; the four attention key biases, whose gradient is zero in exact arithmetic, hold rounding
#     noise of ~1e-9 and are compared absolutely, to 1e-6);
#   - rank 0's checkpoint resumes under 1 process to the same parameters;
#   - eval by 2 ranks writes the scores 1 process writes, and predict the predictions and maps, bit for bit;
#   - oneclass --parallel classes over 2 classes writes the table 1 process writes;
#   - per-node caches (each rank its own cache directory, as two nodes' local disks): each directory holds only
#     its rank's shard (and the index); training, eval with maps, and a second run that finds the entry read
#     the other rank's rows through the ranks and give what the shared cache gives, bit for bit; a lost shard
#     is a miss, extracted again;
#   - a rank that fails (a bad data directory, a NaN loss) ends the job with exit 1 and a message naming it;
#     a killed rank ends the job too (mpirun's exit code, naming the rank), the last checkpoint intact.
set -u
sanf=$1 diff=$2 mpirun=$3
data=/usr/share/datasets/fashion-mnist
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "FAIL: $data missing (apt install dataset-fashion-mnist)"; exit 1; }
source "$(dirname "$0")/cli_lib.sh"
export OMP_NUM_THREADS=1
export TMPDIR=$tmp/tmpdir  # where the ranks' shard files go (checked below)
mkdir -p "$TMPDIR"
mpi=("$mpirun" --allow-run-as-root --oversubscribe -np 2)
bb=(--backbone random:vit-tiny --image-size 28 --patch-size 4)
fm=(--dataset fashion-mnist --data-dir "$data")

# Extraction: 50 images in batches of 8 (the ranks take 4 and 3 batches, the last one short).
expect 0 "extract, 1 process" -- "$sanf" extract "${bb[@]}" "${fm[@]}" --limit 50 --batch-size 8 --out "$tmp/x1.safetensors"
expect 0 "extract, 2 ranks" -- "${mpi[@]}" "$sanf" extract "${bb[@]}" "${fm[@]}" --limit 50 --batch-size 8 --out "$tmp/x2.safetensors"
has "$tmp/out" "wrote $tmp/x2.safetensors: 50 images"
cmp "$tmp/x1.safetensors" "$tmp/x2.safetensors" && echo "ok: 2-rank extraction = 1-process extraction" ||
  { echo "FAIL: the 2-rank features file differs from the 1-process one"; fail=1; }
ls "$TMPDIR"/sanf-shard-* >/dev/null 2>&1 && { echo "FAIL: a shard file was left in $TMPDIR"; fail=1; }

# Training: 100 images, global batch 11, 5 epochs = 50 steps; each run fills its own feature cache.
run=("${fm[@]}" "${bb[@]}" --normal-class trouser --train-limit 100 --test-limit 100 --flow-layers 2 --batch-size 11)
expect 0 "train, 1 process" -- "$sanf" train "${run[@]}" --cache-dir "$tmp/c1" --lr 2e-4 --epochs 5 --out "$tmp/t1"
expect 0 "train, 2 ranks" -- "${mpi[@]}" "$sanf" train "${run[@]}" --cache-dir "$tmp/c2" --lr 2e-4 --epochs 5 --out "$tmp/t2"
has "$tmp/err" "10 steps per epoch, epochs 1..5, 2 ranks"
[ "$(grep -c "^epoch 5/5" "$tmp/err")" = 1 ] || { echo "FAIL: not one 'epoch 5/5' line (rank 0 alone reports)"; fail=1; }
# The 2-rank cache: for each 1-process entry <hash>.safetensors, <hash>.index.json and a shard per rank (the
# rows themselves are checked through the scores: eval on it gives 1 process's scores bit for bit, below).
for f in "$tmp"/c1/*.safetensors; do
  h=$(basename "$f" .safetensors)
  [ -f "$tmp/c2/$h.index.json" ] && [ -f "$tmp/c2/$h.shard-0-of-2.safetensors" ] &&
    [ -f "$tmp/c2/$h.shard-1-of-2.safetensors" ] && [ ! -e "$tmp/c2/$h.safetensors" ] &&
    echo "ok: 2-rank feature cache $h: an index and 2 shards" || { echo "FAIL: the 2-rank cache of $h"; ls "$tmp/c2"; fail=1; }
done
"$diff" "$tmp/t1/flow.safetensors" "$tmp/t2/flow.safetensors" 1e-5 --skip adam. --tiny 1e-6 ||
  { echo "FAIL: 2-rank training differs from 1-process training"; fail=1; }
[ "$(wc -l <"$tmp/t2/train_log.jsonl")" = 5 ] || { echo "FAIL: train_log.jsonl lines"; fail=1; }

# Resume with another number of processes: 3 epochs on 2 ranks, then 2 more in 1 process.
expect 0 "train 3 epochs, 2 ranks" -- "${mpi[@]}" "$sanf" train "${run[@]}" --cache-dir "$tmp/c2" --lr 2e-4 --epochs 3 --out "$tmp/t3"
expect 0 "resume to 5 epochs, 1 process" -- "$sanf" train "${run[@]}" --cache-dir "$tmp/c2" --lr 2e-4 --epochs 5 --out "$tmp/t3" --resume
has "$tmp/out" "epochs 4..5"
"$diff" "$tmp/t1/flow.safetensors" "$tmp/t3/flow.safetensors" 1e-5 --skip adam. --tiny 1e-6 ||
  { echo "FAIL: 2 ranks then a 1-process resume differ from 1-process training"; fail=1; }

# Eval: the test split scored by 2 ranks, rank 0 writing; the same scores bit for bit.
cp -r "$tmp/t1" "$tmp/e2"
expect 0 "eval, 1 process" -- "$sanf" eval --run "$tmp/t1" --cache-dir "$tmp/c1" --map none --thumbnails 0
expect 0 "eval, 2 ranks" -- "${mpi[@]}" "$sanf" eval --run "$tmp/e2" --cache-dir "$tmp/c2" --map none --thumbnails 0
cmp "$tmp/t1/scores.csv" "$tmp/e2/scores.csv" && echo "ok: 2-rank eval scores = 1 process's" ||
  { echo "FAIL: 2-rank eval scores differ"; fail=1; }

# Per-node disks: each rank its own cache directory. Training (the flow and Adam's state compared exactly) and
# eval (with maps: rank 0 needs rows that only rank 1 holds) give what the shared cache gives, bit for bit.
pernode=(bash -c 'exec "$0" "$@" --cache-dir "$SANF_TEST_TMP/node$OMPI_COMM_WORLD_RANK"' "$sanf")
export SANF_TEST_TMP=$tmp
expect 0 "train, 2 ranks, per-node caches" -- "${mpi[@]}" "${pernode[@]}" train "${run[@]}" --lr 2e-4 --epochs 5 \
  --out "$tmp/t4"
for r in 0 1; do
  o=$((1 - r))
  [ "$(ls "$tmp/node$r"/*.shard-$r-of-2.safetensors 2>/dev/null | wc -l)" = 1 ] &&
    [ "$(ls "$tmp/node$r"/*.index.json | wc -l)" = 1 ] && ! ls "$tmp/node$r"/*.shard-$o-of-2.safetensors >/dev/null 2>&1 &&
    echo "ok: node $r holds its own shard of the train split and the index only" || { echo "FAIL: node $r's cache"; ls "$tmp/node$r"; fail=1; }
done
"$diff" "$tmp/t2/flow.safetensors" "$tmp/t4/flow.safetensors" 0 ||
  { echo "FAIL: training on per-node caches differs from training on the shared cache"; fail=1; }
cp -r "$tmp/t4" "$tmp/t5"
expect 0 "eval with maps, 2 ranks, per-node caches" -- "${mpi[@]}" "${pernode[@]}" eval --run "$tmp/t4" --thumbnails 3
expect 0 "eval with maps, 2 ranks, shared cache" -- "${mpi[@]}" "$sanf" eval --run "$tmp/t5" --cache-dir "$tmp/c2" \
  --thumbnails 3
cmp "$tmp/t4/scores.csv" "$tmp/t5/scores.csv" && cmp "$tmp/t4/maps.png" "$tmp/t5/maps.png" &&
  echo "ok: per-node caches give the shared cache's scores and maps" || { echo "FAIL: per-node eval differs"; fail=1; }
# A second eval finds the test split's entry, half on each node.
expect 0 "eval again, 2 ranks, per-node caches" -- "${mpi[@]}" "${pernode[@]}" eval --run "$tmp/t4" --map none \
  --thumbnails 0
has "$tmp/err" "100 test images from the cache (.*2 shards, each rank reading the ones its node holds)"
cmp "$tmp/t4/scores.csv" "$tmp/t5/scores.csv" && echo "ok: the per-node entry found again, the same scores" ||
  { echo "FAIL: scores from the found per-node entry differ"; fail=1; }
# A lost shard: the entry is incomplete, so it is extracted again; a shard of the entry that the new index
# does not list (as an extraction by 5 ranks would have left) is removed.
h=$(grep -o '[0-9a-f]\{16\}\.index\.json' "$tmp/err" | head -1)  # the test split's entry, named by the eval above
h=${h%.index.json}
lost=$h.shard-1-of-2.safetensors
rm "$tmp/node1/$lost"
cp "$tmp/node0/$h.shard-0-of-2.safetensors" "$tmp/node0/$h.shard-4-of-5.safetensors"
expect 0 "eval, 2 ranks, a shard lost" -- "${mpi[@]}" "${pernode[@]}" eval --run "$tmp/t4" --map none --thumbnails 0
has "$tmp/err" "features: extracting 100 test images"
[ -n "$h" ] && [ -f "$tmp/node1/$lost" ] && [ ! -e "$tmp/node0/$h.shard-4-of-5.safetensors" ] &&
  echo "ok: the lost shard rewritten, an unlisted one removed" ||
  { echo "FAIL: shards after re-extraction"; ls "$tmp/node0" "$tmp/node1"; fail=1; }
cmp "$tmp/t4/scores.csv" "$tmp/t5/scores.csv" && echo "ok: re-extracted after a lost shard, the same scores" ||
  { echo "FAIL: scores after re-extraction differ"; fail=1; }

# predict: 300 test images (rank 0 takes the first 256, a multiple of the backbone and flow batches) and loose
# files, with attention maps and JSON lines: the same rows, lines and map PNGs as 1 process, bit for bit.
pr=(--run "$tmp/t1" "${fm[@]}" --limit 300 --threshold 0.5 --map attention --json)
expect 0 "predict, 1 process" -- "$sanf" predict "${pr[@]}" --out "$tmp/p1"
mv "$tmp/out" "$tmp/p1.json"
expect 0 "predict, 2 ranks" -- "${mpi[@]}" "$sanf" predict "${pr[@]}" --out "$tmp/p2"
sed "s|$tmp/p2|$tmp/p1|g" "$tmp/p2/predictions.csv" | cmp - "$tmp/p1/predictions.csv" &&
  sed "s|$tmp/p2|$tmp/p1|g" "$tmp/out" | cmp - "$tmp/p1.json" && echo "ok: 2-rank predictions = 1 process's" ||
  { echo "FAIL: 2-rank predictions differ"; fail=1; }
[ "$(ls "$tmp/p1/maps" | wc -l)" = 300 ] && diff -r "$tmp/p1/maps" "$tmp/p2/maps" >/dev/null &&
  echo "ok: 2-rank maps = 1 process's" || { echo "FAIL: 2-rank maps differ"; fail=1; }

# oneclass over 2 classes, each rank training whole classes alone: the same table as 1 process.
oc=("${fm[@]}" "${bb[@]}" --classes trouser,bag --train-limit 40 --test-limit 60 --flow-layers 2 --epochs 1
    --lr 2e-4)
expect 0 "oneclass, 1 process" -- "$sanf" oneclass "${oc[@]}" --cache-dir "$tmp/c1" --out "$tmp/o1"
expect 0 "oneclass --parallel classes, 2 ranks" -- "${mpi[@]}" "$sanf" oneclass "${oc[@]}" --parallel classes \
  --cache-dir "$tmp/c2" --out "$tmp/o2"
cmp "$tmp/o1/results.csv" "$tmp/o2/results.csv" && echo "ok: 2-rank oneclass table = 1 process's" ||
  { echo "FAIL: the 2-rank oneclass table differs"; cat "$tmp/o1/results.csv" "$tmp/o2/results.csv"; fail=1; }

# sanf bench dist at tiny sizes: its three JSON lines under 2 ranks.
expect 0 "bench dist, 2 ranks" -- "${mpi[@]}" "$sanf" bench dist --limit 64 --dim 32 --tokens 4 --reps 2
for w in dist_extract dist_train_step dist_allreduce; do has "$tmp/out" "\"what\": \"$w\".*\"ranks\": 2"; done

# oneclass --parallel data: every class by both ranks together (the table's figures equal 1 process's to
# rounding, so only its shape is checked here; training equality is checked above).
expect 0 "oneclass --parallel data, 2 ranks" -- "${mpi[@]}" "$sanf" oneclass "${oc[@]}" --cache-dir "$tmp/c2" \
  --out "$tmp/o3"
[ "$(grep -c '^[18],' "$tmp/o3/results.csv" 2>/dev/null)" = 2 ] && echo "ok: 2-rank oneclass --parallel data table" ||
  { echo "FAIL: oneclass --parallel data wrote no table of 2 classes"; fail=1; }

# A failing rank ends the job: exit 1, the rank named, nothing written.
expect 1 "rank 1 with a bad data directory" -- "$mpirun" --allow-run-as-root --oversubscribe \
  -np 1 "$sanf" train "${run[@]}" --cache-dir "$tmp/c2" --out "$tmp/bad" : \
  -np 1 "$sanf" train "${run[@]/$data/$tmp/none}" --cache-dir "$tmp/c2" --out "$tmp/bad"
has "$tmp/err" "sanf: rank 1 of 2: .*$tmp/none"
[ -e "$tmp/bad/flow.safetensors" ] && { echo "FAIL: the failed job wrote a checkpoint"; fail=1; }
expect 1 "a NaN loss, 2 ranks" -- "${mpi[@]}" "$sanf" train "${run[@]}" --cache-dir "$tmp/c2" --lr 1e6 --out "$tmp/nan"
has "$tmp/err" "sanf: rank [01] of 2: training stopped at epoch 1, step 2 of 10 (global step 2): the loss is"

# A killed rank: the job ends, naming it; the last complete checkpoint stays whole and resumes.
"${mpi[@]}" "$sanf" train "${run[@]}" --cache-dir "$tmp/c2" --epochs 1000 --out "$tmp/kill" >"$tmp/k.out" 2>"$tmp/k.err" &
job=$!
for _ in $(seq 600); do [ -f "$tmp/kill/flow.safetensors" ] && break; sleep 0.1; done
for p in $(pgrep -P $job); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && kill -9 "$p"
done
wait $job
code=$?
[ $code -ne 0 ] && echo "ok: a killed rank ends the job (exit $code)" || { echo "FAIL: a killed rank: exit 0"; fail=1; }
has "$tmp/k.err" "rank 1"
expect 0 "resume after a killed rank, 1 process" -- "$sanf" train "${run[@]}" --cache-dir "$tmp/c2" --epochs 1 \
  --out "$tmp/kill" --resume
exit $fail
