#!/usr/bin/env bash
# tools/device/make_devdeps.sh: build .devdeps/, the header-only build dependencies (doctest,
# nlohmann-json) with their CMake package files, copied from this machine's Debian packages, for a machine
# that lacks them (the GPU machine: carry .devdeps with the run; cuda_check.sh finds it through
# CMAKE_PREFIX_PATH). .devdeps/ is git-ignored: it is a copy, never edited.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
for f in /usr/include/doctest/doctest.h /usr/lib/cmake/doctest/doctestTargets.cmake /usr/include/nlohmann/json.hpp \
         /usr/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake; do
  [ -e "$f" ] || { echo "make_devdeps: $f missing (apt-get install doctest-dev nlohmann-json3-dev)" >&2; exit 1; }
done
rm -rf .devdeps
mkdir -p .devdeps/include .devdeps/lib/cmake .devdeps/share/cmake
cp -r /usr/include/doctest /usr/include/nlohmann .devdeps/include/
cp -r /usr/lib/cmake/doctest .devdeps/lib/cmake/
cp -r /usr/share/cmake/nlohmann_json .devdeps/share/cmake/
# doctest's exported targets hard-code the /usr prefix: make it relative to the file, wherever it is carried.
sed -i 's|^set(_IMPORT_PREFIX "/usr")|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
  .devdeps/lib/cmake/doctest/doctestTargets.cmake
grep -q 'CMAKE_CURRENT_LIST_DIR}/../../..' .devdeps/lib/cmake/doctest/doctestTargets.cmake
cat > .devdeps/README.txt <<'TXT'
Made by tools/device/make_devdeps.sh from this machine's doctest-dev and nlohmann-json3-dev: header-only
build dependencies with their CMake package files, for a machine without them. Found through
-DCMAKE_PREFIX_PATH=$PWD/.devdeps (tools/device/cuda_check.sh passes it).
TXT
echo "make_devdeps: wrote .devdeps ($(du -sh .devdeps | cut -f1))"
