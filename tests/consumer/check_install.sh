#!/bin/sh
# Installs the build into a temporary prefix and builds and runs tests/consumer/main.c
# against it twice: as a CMake project (find_package(kdispatch)) and with pkg-config and
# the plain C compiler. With a static libkdispatch, pkg-config --static supplies the
# private libraries. Also checks that the command, the header and the package files are
# where the install rules say.
#   check_install.sh <build dir> <work dir> <libdir> <includedir> <bindir> [extra C flags]
set -eu
build=$1 work=$2 libdir=$3 includedir=$4 bindir=$5 cflags=${6:-}
src=$(cd "$(dirname "$0")" && pwd)
prefix=$work/prefix

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"

for f in "$includedir/kdispatch.h" "$includedir/kdispatch_version.h" \
         "$libdir/pkgconfig/kdispatch.pc" "$libdir/cmake/kdispatch/kdispatchConfig.cmake" \
         "$libdir/cmake/kdispatch/kdispatchConfigVersion.cmake" "$bindir/kdispatch"; do
    [ -e "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
"$prefix/$bindir/kdispatch" --version

echo "== find_package(kdispatch)"
cmake -S "$src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$cflags" >"$work/cmake-configure.log"
cmake --build "$work/cmake-build" >"$work/cmake-build.log"
"$work/cmake-build/kd_consumer"

echo "== pkg-config kdispatch"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
static=""
[ -e "$prefix/$libdir/libkdispatch.so" ] || static=--static
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
${CC:-cc} $cflags -o "$work/kd_consumer_pc" "$src/main.c" \
    $(pkg-config --cflags kdispatch) $(pkg-config $static --libs kdispatch) -lm \
    -Wl,-rpath,"$prefix/$libdir"
"$work/kd_consumer_pc"
echo "consumer test passed (${static:-shared} library)"
