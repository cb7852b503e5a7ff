// embed.cu: embedding gather with the meta-token rows prepended per
// sequence, and a row gather (rows wanted before the LM head).
#include "hk_common.cuh"

// One block per output row. The sequence of row r is found by binary search
// over the packed starts cu_text[b] + b*M (the largest start <= r, so empty
// sequences are skipped correctly).
template <typename T>
__global__ void embed_kernel(T *out, int ldo, const int *ids, const int *cu_text, int B, const T *table, int V,
                             const T *meta, int M, int H) {
    pdl_entry();
    int r = blockIdx.x;
    int lo = 0, hi = B - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (cu_text[mid] + mid * M <= r) lo = mid;
        else hi = mid - 1;
    }
    int j = r - (cu_text[lo] + lo * M);
    T *dst = out + (size_t)r * ldo;
    const T *src;
    if (j < M) {
        src = meta + (size_t)j * H;
    } else {
        int id = ids[cu_text[lo] + j - M];
        if (id < 0 || id >= V) {  // visible failure rather than a stray read
            for (int i = threadIdx.x; i < H; i += blockDim.x) stf(dst + i, __int_as_float(0x7fc00000));
            return;
        }
        src = table + (size_t)id * H;
    }
    for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = src[i];
}

template <typename T>
__global__ void gather_kernel(T *out, int ldo, const T *in, int ldi, const int *rows, int width) {
    pdl_entry();
    const T *src = in + (size_t)rows[blockIdx.x] * ldi;
    T *dst = out + (size_t)blockIdx.x * ldo;
    for (int i = threadIdx.x; i < width; i += blockDim.x) dst[i] = src[i];
}

template <typename T>
static int embed_launch(void *out, int ldo, const int *ids, const int *cu_text, int B, int total_text,
                        const void *table, int V, const void *meta, int M, int H, cudaStream_t stream) {
    ARG_CHECK(out && cu_text && B > 0 && total_text >= 0 && H > 0 && ldo >= H && M >= 0 && (M == 0 || meta));
    ARG_CHECK(total_text == 0 || (ids && table && V > 0));
    int rows = total_text + B * M;
    if (rows == 0) return 0;
    CUDA_CHECK(hk_launch(embed_kernel<T>, rows, 128, 0, stream, (T *)out, ldo, ids, cu_text, B, (const T *)table, V,
                         (const T *)meta, M, H));
    return 0;
}

template <typename T>
static int gather_launch(void *out, int ldo, const void *in, int ldi, const int *rows, int n, int width,
                         cudaStream_t stream) {
    ARG_CHECK(out && in && rows && n >= 0 && width > 0 && ldo >= width && ldi >= width);
    if (n == 0) return 0;
    CUDA_CHECK(hk_launch(gather_kernel<T>, n, 128, 0, stream, (T *)out, ldo, (const T *)in, ldi, rows, width));
    return 0;
}

extern "C" int hk_embed(hk_dtype dtype, void *out, int ldo, const int *ids, const int *cu_text, int B,
                        int total_text, const void *table, int V, const void *meta, int M, int H,
                        cudaStream_t stream) {
    HK_DISPATCH(dtype, embed_launch<float>(out, ldo, ids, cu_text, B, total_text, table, V, meta, M, H, stream),
                embed_launch<bf16>(out, ldo, ids, cu_text, B, total_text, table, V, meta, M, H, stream));
}

extern "C" int hk_gather_rows(hk_dtype dtype, void *out, int ldo, const void *in, int ldi, const int *rows, int n,
                              int width, cudaStream_t stream) {
    HK_DISPATCH(dtype, gather_launch<float>(out, ldo, in, ldi, rows, n, width, stream),
                gather_launch<bf16>(out, ldo, in, ldi, rows, n, width, stream));
}
