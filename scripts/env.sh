# Shared build settings of scripts/test and .ci/run: source, don't run.
# One build cache outside the clone, reused between runs on the same machine, and
# the same flags everywhere so that the cache is never invalidated.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# mold links DataFusion-sized test binaries in a fraction of ld's time.
if command -v mold >/dev/null 2>&1; then
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-fuse-ld=mold"
fi
