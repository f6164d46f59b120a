#!/usr/bin/env bash
# Builds oclgrind 21.10 (Debian 12's version) with the fixes its Uninitialized plugin
# needs before `oclgrind --uninitialized` can check our vector kernels, and installs it
# into PREFIX (default ~/.cache/kdispatch/oclgrind-21.10-fixed). The project ships no
# oclgrind code: the source is Debian's own upstream tarball, fetched from the Debian
# archive and checked against the SHA-256 in Debian's signed oclgrind_21.10-3.dsc; the
# edits below are made by exact-text replacement and fail loudly if the text differs.
#
#   scripts/oclgrind-fixed.sh [PREFIX]     prints PREFIX/bin/oclgrind on success
#
# The fixes (details and reproducers: docs/opencl-checks.md, "oclgrind's Uninitialized
# plugin"):
#   api      LLVM 14 removed CallInst::getNumArgOperands (arg_size is the same count):
#            Debian's package, built against LLVM 14, must carry an equivalent change.
#   shuffle  a shufflevector lane whose mask is undef: the plugin compares the mask value
#            with llvm::Value::UndefValueVal (a Value kind, not a mask value) instead of
#            llvm::UndefMaskElem (-1), so it copies the lane's shadow from offset -1 of
#            the source: SIGSEGV, or a shadow read from outside the value.
#   hostptr  a CL_MEM_USE_HOST_PTR buffer holds the host's bytes from its creation, but
#            the plugin finds no host store for it and poisons all of it at the first
#            kernel: every read of such a buffer (our weights on a CPU device) is reported.
#   release  a released buffer keeps its shadow, and the next buffer created in the same
#            slot inherits it: a stale "initialized" hides a real uninitialized read, a
#            stale smaller size reports reads past it.
#   freeze   the plugin has no case for LLVM's freeze instruction ("Unsupported
#            instruction: freeze", fatal), which clang emits in the GPU-shape GEMV
#            kernels: its shadow is now its operand's (conservative: a frozen
#            uninitialized value is still reported where it is used).
# And one addition, for our tests:
#   gpu      OCLGRIND_DEVICE_TYPE_GPU=1 makes the device report CL_DEVICE_TYPE_GPU alone
#            (it reports every type, CPU included), so that the backend gives it the GPU
#            shapes that NVIDIA's OpenCL runs, and uploads instead of wrapping host bytes.
# Needs cmake, a C++ compiler, llvm-14-dev, libclang-14-dev, libpolly-14-dev (setup.sh).
set -euo pipefail
prefix=${1:-${KD_OCLGRIND_PREFIX:-$HOME/.cache/kdispatch/oclgrind-21.10-fixed}}
stamp=$prefix/kd-fixes-3 # bump with any change to the fixes
url=http://deb.debian.org/debian/pool/main/o/oclgrind/oclgrind_21.10.orig.tar.gz
sha256=b40ea81fcf64e9012d63c3128640fde9785ef4f304f9f876f53496595b8e62cc

if [ -x "$prefix/bin/oclgrind" ] && [ -f "$stamp" ]; then
    echo "$prefix/bin/oclgrind"
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-oclgrind-build-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "oclgrind-fixed: fetching $url" >&2
if command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$work/src.tar.gz" "$url"
else
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
        "$url" "$work/src.tar.gz"
fi
echo "$sha256  $work/src.tar.gz" | sha256sum -c --quiet - ||
    { echo "oclgrind-fixed: $url does not have the SHA-256 of Debian's oclgrind_21.10-3.dsc" >&2; exit 1; }
tar xzf "$work/src.tar.gz" -C "$work"
src=$work/Oclgrind-21.10

python3 - "$src" <<'EOF'
import pathlib, sys
src = pathlib.Path(sys.argv[1])

def edit(path, old, new, count=1):
    p = src / path
    text = p.read_text()
    if text.count(old) != count:
        sys.exit(f"oclgrind-fixed: {path}: expected {count} of {old!r}, found {text.count(old)}")
    p.write_text(text.replace(old, new))

# api
edit("src/core/WorkItemBuiltins.cpp", "callInst->getNumArgOperands()", "callInst->arg_size()", 3)
edit("src/plugins/Uninitialized.cpp", "CI->getNumArgOperands()", "CI->arg_size()")
# shuffle
edit("src/plugins/Uninitialized.cpp", "if (index == llvm::Value::UndefValueVal)",
     "if (index == llvm::UndefMaskElem) // kdispatch fix: was Value::UndefValueVal")
# hostptr
edit("src/plugins/Uninitialized.cpp",
     """          size_t size = m_context->getGlobalMemory()->getBuffer(address)->size;
          allocAndStoreShadowMemory(AddrSpaceGlobal, address,
                                    ShadowContext::getPoisonedValue(size), NULL,
                                    NULL, true);""",
     """          // kdispatch fix: a CL_MEM_USE_HOST_PTR buffer holds the host's bytes
          const Memory::Buffer* buf = m_context->getGlobalMemory()->getBuffer(address);
          size_t size = buf->size;
          allocAndStoreShadowMemory(AddrSpaceGlobal, address,
                                    (buf->flags & CL_MEM_USE_HOST_PTR)
                                      ? ShadowContext::getCleanValue(size)
                                      : ShadowContext::getPoisonedValue(size),
                                    NULL, NULL, true);""")
# release: an empty shadow is no valid address, so the next kernel poisons the slot anew
edit("src/plugins/Uninitialized.h",
     "  virtual void workItemBegin(const WorkItem* workItem) override;",
     """  virtual void memoryDeallocated(const Memory* memory, size_t address) override;
  virtual void workItemBegin(const WorkItem* workItem) override;""")
edit("src/plugins/Uninitialized.cpp", "void Uninitialized::VectorOr(",
     """// kdispatch fix: a released buffer's shadow must not pass to its slot's next buffer
void Uninitialized::memoryDeallocated(const Memory* memory, size_t address)
{
  if (memory->getAddressSpace() == AddrSpaceGlobal)
    shadowContext.getGlobalMemory()->allocate(address, 0);
}

void Uninitialized::VectorOr(""")
# freeze
edit("src/plugins/Uninitialized.cpp",
     """  default:
    FATAL_ERROR("Unsupported instruction: %s", instruction->getOpcodeName());""",
     """  case llvm::Instruction::Freeze: // kdispatch fix: the operand's shadow
  {
    TypedValue shadow =
      shadowContext.getValue(workItem, instruction->getOperand(0));
    TypedValue newShadow = shadowContext.getMemoryPool()->clone(result);
    memcpy(newShadow.data, shadow.data, newShadow.size * newShadow.num);
    shadowValues->setValue(instruction, newShadow);
    break;
  }
  default:
    FATAL_ERROR("Unsupported instruction: %s", instruction->getOpcodeName());""")
# gpu
edit("src/runtime/runtime.cpp", "    result_data.cldevicetype = DEVICE_TYPE;",
     """    // kdispatch addition: a GPU alone, for the GPU shapes of the kernels
    result_data.cldevicetype =
      oclgrind::checkEnv("OCLGRIND_DEVICE_TYPE_GPU")
        ? (cl_device_type)(CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_DEFAULT)
        : DEVICE_TYPE;""")
EOF

echo "oclgrind-fixed: building (a few minutes on 2 cores)" >&2
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
      -DLLVM_DIR=/usr/lib/llvm-14/lib/cmake/llvm -DCLANG_ROOT=/usr/lib/llvm-14 \
      >"$work/cmake.log" 2>&1 || { tail -20 "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" -j "$jobs" \
      >"$work/build.log" 2>&1 || { grep -m 20 -E 'error|Error' "$work/build.log" >&2; exit 1; }
rm -rf "$prefix"
cmake --install "$work/build" >"$work/install.log" 2>&1 || { tail -20 "$work/install.log" >&2; exit 1; }
date -u +%FT%TZ >"$stamp"
echo "$prefix/bin/oclgrind"
