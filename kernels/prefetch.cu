// prefetch.cu: pulling a byte range into the L2 cache ahead of its reader.
// A decode step of one sequence spends most of its time in latency-bound
// kernels (attention, scan, norms) that leave the memory system idle; the
// next projections' weights can stream into L2 meanwhile (issued from a side
// stream), so that their GEMVs read them from there. A hint only: nothing
// is written, and a prefetch the hardware drops changes no result.
#include <stdint.h>

#include <algorithm>

#include "hk_common.cuh"

namespace {

constexpr size_t kChunk = 16384;  // bytes per bulk prefetch instruction

// One bulk prefetch per chunk, grid-strided; sm_90's cp.async.bulk.prefetch
// takes a 16-byte-aligned address and a size that is a multiple of 16.
__global__ void prefetch_l2_kernel(const char *p, size_t bytes) {
    const size_t stride = (size_t)gridDim.x * blockDim.x * kChunk;
    for (size_t off = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * kChunk; off < bytes; off += stride) {
        const unsigned n = (unsigned)((bytes - off < kChunk ? bytes - off : kChunk) & ~(size_t)15);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        if (n) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p + off), "r"(n) : "memory");
#else
        if (n) asm volatile("prefetch.global.L2 [%0];" ::"l"(p + off));  // older GPUs: the first line only
#endif
    }
}

}  // namespace

extern "C" int hk_prefetch_l2(const void *p, size_t bytes, cudaStream_t stream) {
    ARG_CHECK(p && ((uintptr_t)p & 15) == 0);
    if (bytes < 16) return 0;
    const size_t chunks = (bytes + kChunk - 1) / kChunk;
    const int threads = 128, blocks = (int)std::min<size_t>((chunks + threads - 1) / threads, 32);
    prefetch_l2_kernel<<<blocks, threads, 0, stream>>>((const char *)p, bytes);
    LAUNCH_CHECK();
    return 0;
}
