#!/usr/bin/env bash
# tests/examples/vit_checkpoint_test.sh EXAMPLE SANF: runs examples/08_vit_fashion_mnist in its short form
# (it checks its own training and that its checkpoint reloads), then feeds the backbone it saved to
# `sanf extract`, which must accept it as a backbone and write tokens of the ViT's width.
set -eu
example=$1 sanf=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$example" --short --out "$tmp/vit.safetensors"
"$sanf" extract --backbone "$tmp/vit.safetensors" --dataset fashion-mnist \
  --data-dir /usr/share/datasets/fashion-mnist --split test --limit 16 --out "$tmp/feats.safetensors" 2>"$tmp/err" ||
  { cat "$tmp/err"; echo "FAIL: sanf extract refused the example's checkpoint"; exit 1; }
[ -s "$tmp/feats.safetensors" ] || { echo "FAIL: sanf extract wrote nothing"; exit 1; }
echo "ok: sanf extract --backbone read the example's checkpoint and wrote $(wc -c <"$tmp/feats.safetensors") bytes of tokens"
