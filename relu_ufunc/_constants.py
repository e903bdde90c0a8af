"""The runtime rules that both the C loops and Python (the Numba backend)
follow, written once.  setup.py writes them into the C header
build/src/relu_ufunc/_constants.h (RELU_ + the name) for the C side."""

# A contiguous call gets one thread per THREAD_BYTES of output (so a team
# starts from 2 * THREAD_BYTES).
THREAD_BYTES = 128 << 10

# NumPy advises huge pages (madvise MADV_HUGEPAGE) for its own allocations
# of this size or more (numpy/_core/src/multiarray/alloc.c); relu_ufunc's
# own buffers (the store plan's, the Numba backend's new outputs) follow it.
HUGEPAGE_FROM = 4 << 20
