#!/usr/bin/env bash
# tests/apps/cli_test.sh SANF FIXTURES: the `sanf` command line's exit codes and outputs.
# 0 success, 2 usage errors, 1 runtime errors; a failed command leaves no output file.
set -u
sanf=$1 fixtures=$2
source "$(dirname "$0")/cli_lib.sh"
expect 2 "no subcommand" -- "$sanf"
expect 2 "unknown option" -- "$sanf" extract --bogus
expect 2 "unknown dataset" -- "$sanf" extract --backbone random:vit-tiny --dataset imagenet --data-dir "$tmp" --out "$tmp/x"
expect 2 "bad --mean" -- "$sanf" convert --from torchvision --heads 4 --mean 1,2 "$fixtures/vit_convert/torchvision.safetensors" "$tmp/m.safetensors"
expect 0 "convert torchvision" -- "$sanf" convert --from torchvision --heads 4 "$fixtures/vit_convert/torchvision.safetensors" "$tmp/c.safetensors"
[ -s "$tmp/c.safetensors" ] || { echo "FAIL: convert wrote no file"; fail=1; }
has "$tmp/out" "^normalisation: mean 0.485,0.456,0.406 std 0.229,0.224,0.225 (default for torchvision: ImageNet's"
grep -q '"norm_source":"default for torchvision' "$tmp/c.safetensors" || { echo "FAIL: no norm_source metadata"; fail=1; }
# Where the normalisation came from: the flags, or a timm Hub config.json beside the checkpoint.
expect 0 "convert --mean/--std" -- "$sanf" convert --from torchvision --heads 4 --mean 0.1,0.2,0.3 --std 0.5,0.5,0.5 \
  "$fixtures/vit_convert/torchvision.safetensors" "$tmp/m.safetensors"
has "$tmp/out" "^normalisation: mean 0.1,0.2,0.3 std 0.5,0.5,0.5 (from --mean/--std)$"
mkdir -p "$tmp/hub" && cp "$fixtures/vit_convert/timm.safetensors" "$tmp/hub/"
echo '{"pretrained_cfg": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}' >"$tmp/hub/config.json"
expect 0 "convert timm with config.json" -- "$sanf" convert --from timm --heads 4 "$tmp/hub/timm.safetensors" "$tmp/t.safetensors"
has "$tmp/out" "^normalisation: mean 0.485,0.456,0.406 std 0.229,0.224,0.225 (from $tmp/hub/config.json pretrained_cfg)$"
expect 1 "convert with the wrong source" -- "$sanf" convert --from hf --heads 4 "$fixtures/vit_convert/torchvision.safetensors" "$tmp/bad.safetensors"
grep -q "wrong source" "$tmp/err" || { echo "FAIL: no 'wrong source' hint"; fail=1; }
ls "$tmp"/bad.safetensors* >/dev/null 2>&1 && { echo "FAIL: a failed convert left a file"; fail=1; }
expect 1 "missing data dir" -- "$sanf" extract --backbone random:vit-tiny --dataset mnist --data-dir "$tmp/none" --out "$tmp/f.safetensors"
grep -q "does not exist" "$tmp/err" || { echo "FAIL: missing-dir message"; fail=1; }
[ -e "$tmp/f.safetensors" ] && { echo "FAIL: a failed extract left a file"; fail=1; }
# --precision: tf32 is a GPU mode, a usage error with --device cpu (checked before the dataset is read).
expect 2 "extract --precision tf32 on the CPU" -- "$sanf" extract --backbone random:vit-tiny --dataset mnist --data-dir "$tmp/none" --out "$tmp/f.safetensors" --precision tf32
has "$tmp/err" "tf32 needs --device cuda"
expect 2 "extract --precision fp8" -- "$sanf" extract --backbone random:vit-tiny --dataset mnist --data-dir "$tmp/none" --out "$tmp/f.safetensors" --precision fp8
expect 2 "bench vit --precision tf32 on the CPU" -- "$sanf" bench vit --arch vit-tiny --precision tf32
has "$tmp/err" "tf32 needs --device cuda"
expect 0 "bench vit --precision bf16" -- "$sanf" bench vit --arch vit-tiny --batch 1 --image-size 32 --reps 1 --precision bf16
has "$tmp/out" '"precision": "bf16"'
# The other benchmarks, at tiny sizes: JSON lines with their figure, and clear errors.
expect 0 "bench fma" -- "$sanf" bench fma
has "$tmp/out" '"what": "fma_peak", "isa": "avx'
expect 0 "bench gemm" -- "$sanf" bench gemm --rows 8 --quick --all-layouts
has "$tmp/out" '"role": "fc2", "M": 8, "K": 3072, "N": 768, "layout": "at.T @ b"'
has "$tmp/out" '"gflops": '
expect 0 "bench gemm --tile 12x32" -- "$sanf" bench gemm --rows 8 --quick --tile 12x32
has "$tmp/out" '"tile": "12x32"'
# --device cuda:N: a usage error unless N is a number; without a GPU (or CUDA), a clear runtime error.
expect 2 "bench gemm --device cuda:x" -- "$sanf" bench gemm --rows 8 --quick --device cuda:x
has "$tmp/err" "is not a device (cpu, cuda, or cuda:N)"
if ! nvidia-smi >/dev/null 2>&1; then
  expect 1 "bench gemm --device cuda:1 without a GPU" -- "$sanf" bench gemm --rows 8 --quick --device cuda:1
  has "$tmp/err" "no CUDA support"
fi
expect 2 "bench gemm --tile 4x4" -- "$sanf" bench gemm --rows 8 --quick --tile 4x4
expect 1 "bench flow --dim 12" -- "$sanf" bench flow --dim 12
has "$tmp/err" "multiple of 8"
expect 1 "bench extract without the dataset" -- "$sanf" bench extract --limit 4 --data-dir "$tmp/none"
has "$tmp/err" "$tmp/none"
if [ -d /usr/share/datasets/fashion-mnist ]; then
  expect 0 "bench predict" -- "$sanf" bench predict --limit 6 --batch-size 4
  has "$tmp/out" '"what": "predict", "arch": "vit-tiny", "image_size": 32, "images": 6'
fi
if [ -d /usr/share/datasets/fashion-mnist ]; then
  expect 0 "extract with a converted checkpoint" -- "$sanf" extract --backbone "$tmp/c.safetensors" --dataset fashion-mnist \
    --data-dir /usr/share/datasets/fashion-mnist --out "$tmp/f.safetensors" --limit 6 --batch-size 4
  grep -q "6 images, cls (6, 32), patches (6, 16, 32)" "$tmp/out" || { echo "FAIL: extract output"; cat "$tmp/out"; fail=1; }
  expect 0 "extract --precision bf16" -- "$sanf" extract --backbone "$tmp/c.safetensors" --dataset fashion-mnist \
    --data-dir /usr/share/datasets/fashion-mnist --out "$tmp/f16.safetensors" --limit 6 --batch-size 4 --precision bf16
  has "$tmp/out" "6 images, cls (6, 32), patches (6, 16, 32)"
  # train -> eval -> predict -> export -> predict --model, and predict's errors.
  fm=(--dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist)
  expect 0 "train with --val-fraction" -- "$sanf" train "${fm[@]}" --normal-class trouser --backbone "$tmp/c.safetensors" \
    --train-limit 80 --test-limit 100 --epochs 1 --flow-layers 2 --val-fraction 0.25 --cache-dir "$tmp/cache" --out "$tmp/run"
  has "$tmp/err" "calibration: threshold"
  expect 0 "eval" -- "$sanf" eval --run "$tmp/run"
  has "$tmp/out" "threshold fpr: score >= "
  expect 0 "predict --json" -- "$sanf" predict --run "$tmp/run" "${fm[@]}" --limit 5 --json --out "$tmp/pred"
  [ "$(grep -c '"verdict":' "$tmp/out")" = 5 ] || { echo "FAIL: predict --json printed no 5 verdicts"; cat "$tmp/out"; fail=1; }
  [ "$(wc -l <"$tmp/pred/predictions.csv")" = 6 ] || { echo "FAIL: predictions.csv rows"; fail=1; }
  expect 0 "export" -- "$sanf" export --run "$tmp/run" --out "$tmp/model.safetensors"
  has "$tmp/out" "thresholds: fpr, f1"
  expect 0 "predict --model" -- "$sanf" predict --model "$tmp/model.safetensors" "${fm[@]}" --limit 5 --out "$tmp/pred2"
  cmp -s "$tmp/pred/predictions.csv" "$tmp/pred2/predictions.csv" || { echo "FAIL: the model's predictions differ from the run's"; fail=1; }
  expect 2 "predict without input" -- "$sanf" predict --run "$tmp/run"
  expect 2 "predict with --run and --model" -- "$sanf" predict --run "$tmp/run" --model "$tmp/model.safetensors" "${fm[@]}"
  expect 2 "predict --threshold bogus" -- "$sanf" predict --run "$tmp/run" "${fm[@]}" --threshold best --out "$tmp/pred3"
  expect 1 "predict --model of a non-model" -- "$sanf" predict --model "$tmp/c.safetensors" "${fm[@]}" --out "$tmp/pred3"
  has "$tmp/err" "not a sanf model"
  [ -e "$tmp/pred3" ] && { echo "FAIL: a failed predict left output"; fail=1; }
  printf 'not an image' >"$tmp/bad.png"
  expect 1 "predict a corrupt image" -- "$sanf" predict --run "$tmp/run" "$tmp/bad.png" --out "$tmp/pred3"
  has "$tmp/err" "bad.png"
  expect 0 "predict --skip-corrupt" -- "$sanf" predict --run "$tmp/run" "$tmp/bad.png" --skip-corrupt --out "$tmp/pred4"
  has "$tmp/pred4/predictions.csv" ",error,"
fi
exit $fail
