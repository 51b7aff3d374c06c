#!/usr/bin/env bash
# tools/device/make_devdeps.sh: build .devdeps/, the build dependencies a machine without Debian's -dev
# packages lacks (the GPU machine's image has CUDA, CMake, ninja and PyTorch, not these), copied from this
# machine's packages: the header-only doctest, nlohmann-json and CLI11 with their CMake package files;
# zlib, libpng and libjpeg as headers plus static libraries; and fmt, whose Debian package has only a shared
# library: its headers, CMake files and libfmt.so.9 keep Debian's layout (lib/x86_64-linux-gnu/), and the
# executables find the library through the build RPATH that CMake gives them.
# Carry .devdeps with the run (`carry: [".devdeps"]`); cuda_check.sh finds it through CMAKE_PREFIX_PATH,
# which CMake searches before the system paths. .devdeps/ is git-ignored: it is a copy, never edited.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LIBDIR=/usr/lib/x86_64-linux-gnu
FMT_LIBS=("$LIBDIR"/libfmt.so.*)
CODEC_HEADERS=(/usr/include/png.h /usr/include/pngconf.h /usr/include/pnglibconf.h /usr/include/jpeglib.h
               /usr/include/jmorecfg.h /usr/include/jerror.h /usr/include/x86_64-linux-gnu/jconfig.h
               /usr/include/zlib.h /usr/include/zconf.h)
CODEC_LIBS=("$LIBDIR/libpng16.a" "$LIBDIR/libjpeg.a" "$LIBDIR/libz.a")
for f in /usr/include/doctest/doctest.h /usr/lib/cmake/doctest/doctestTargets.cmake /usr/include/nlohmann/json.hpp \
         /usr/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake /usr/include/CLI/CLI.hpp \
         /usr/share/cmake/CLI11/CLI11Config.cmake "${CODEC_HEADERS[@]}" "${CODEC_LIBS[@]}" /usr/include/fmt/core.h \
         "$LIBDIR/cmake/fmt/fmt-targets.cmake" "${FMT_LIBS[@]}"; do
  [ -e "$f" ] || { echo "make_devdeps: $f missing (apt-get install doctest-dev nlohmann-json3-dev libcli11-dev" \
                        "zlib1g-dev libpng-dev libjpeg-dev libfmt-dev)" >&2; exit 1; }
done
rm -rf .devdeps
mkdir -p .devdeps/include .devdeps/lib/cmake .devdeps/share/cmake
cp -r /usr/include/doctest /usr/include/nlohmann /usr/include/CLI .devdeps/include/
cp -r /usr/lib/cmake/doctest .devdeps/lib/cmake/
cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 .devdeps/share/cmake/
cp "${CODEC_HEADERS[@]}" .devdeps/include/
cp "${CODEC_LIBS[@]}" .devdeps/lib/
mkdir -p .devdeps/lib/x86_64-linux-gnu/cmake
cp -r /usr/include/fmt .devdeps/include/
cp -r "$LIBDIR/cmake/fmt" .devdeps/lib/x86_64-linux-gnu/cmake/
cp -L "${FMT_LIBS[@]}" .devdeps/lib/x86_64-linux-gnu/
# doctest's exported targets hard-code the /usr prefix: make it relative to the file, wherever it is carried.
sed -i 's|^set(_IMPORT_PREFIX "/usr")|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
  .devdeps/lib/cmake/doctest/doctestTargets.cmake
grep -q 'CMAKE_CURRENT_LIST_DIR}/../../..' .devdeps/lib/cmake/doctest/doctestTargets.cmake
# The dataset the tests read (Debian's dataset-fashion-mnist, 30 MB), installed from here by cuda_check.sh.
if [ -d /usr/share/datasets/fashion-mnist ]; then
  mkdir -p .devdeps/datasets
  cp -r /usr/share/datasets/fashion-mnist .devdeps/datasets/
else
  echo "make_devdeps: no /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist): the apps" \
       "tests will be left out on the GPU machine" >&2
fi
cat > .devdeps/README.txt <<'TXT'
Made by tools/device/make_devdeps.sh from this machine's doctest-dev, nlohmann-json3-dev, libcli11-dev,
zlib1g-dev, libpng-dev, libjpeg-dev and libfmt-dev: headers, CMake package files and static libraries (fmt's
shared one), for a machine without them; and dataset-fashion-mnist's files (datasets/), which the tests read. Found through -DCMAKE_PREFIX_PATH=$PWD/.devdeps (tools/device/cuda_check.sh passes it).
TXT
echo "make_devdeps: wrote .devdeps ($(du -sh .devdeps | cut -f1))"
