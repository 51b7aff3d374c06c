#!/usr/bin/env bash
# tests/check_self_contained.sh ROOT: fail when a file of the repository points outside it.
#
# A reader who cloned the project has only the repository: docs, comments and scripts must not send them to
# files beside it (a sibling folder, design notes or a specification kept elsewhere) or to a path of the
# machine the code was written on. Scans the files git tracks (every file under ROOT, build trees and
# .git excluded, when git is not there), binary files skipped, this script left out (it holds the pattern).
set -euo pipefail
root=${1:?usage: check_self_contained.sh ROOT}
cd "$root"

# What counts as pointing outside: a path that climbs out of the repository into a sibling folder, the
# names of documents that live outside it, and absolute paths of the development machines' work areas.
pattern='(\.\./)+shared/|\bSPEC\.md\b|\bARCHITECTURE\.md\b|paper-sanf-ad|SPEC (§|section)|/work/(main|shared|wt-)|\.library/'

self=tests/check_self_contained.sh
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  hits=$(git grep -InE "$pattern" -- . ":(exclude)$self" || true)
else
  hits=$(grep -rInE "$pattern" --exclude-dir=.git --exclude-dir='build*' . | grep -v "^\./$self:" || true)
fi
if [ -n "$hits" ]; then
  echo "files that point outside the repository (write what the reader needs into the project's docs):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "no file points outside the repository"
