#!/usr/bin/env bash
# tests/examples/vit_checkpoint_test.sh EXAMPLE SANF: runs examples/08_vit_fashion_mnist in its short form
# (it checks its own training and that its checkpoint reloads), then feeds the backbone it saved to
# `sanf extract`, which must accept it as a backbone and write the tokens of its architecture: a class
# token of width 96 and 49 patch tokens (28x28 images, patch 4).
set -eu
example=$1 sanf=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$example" --short --out "$tmp/vit.safetensors"
"$sanf" extract --backbone "$tmp/vit.safetensors" --dataset fashion-mnist \
  --data-dir /usr/share/datasets/fashion-mnist --split test --limit 16 --out "$tmp/feats.safetensors" \
  >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; echo "FAIL: sanf extract refused the example's checkpoint"; exit 1; }
cat "$tmp/out"
grep -q "16 images, cls (16, 96), patches (16, 49, 96)" "$tmp/out" ||
  { echo "FAIL: sanf extract did not write the tokens of the example's ViT"; exit 1; }
echo "ok: sanf extract --backbone accepted the example's checkpoint"
