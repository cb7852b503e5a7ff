// mlp.cu: the MLP activations between the up/gate GEMMs and the down GEMM.
#include "hk_common.cuh"

// grid.x = row (up to 2^31 rows), grid.y strides over the columns: no
// division per element.
template <typename T>
__global__ void swiglu_kernel(T *out, int ldo, const T *gate, int ldg, const T *up, int ldu, int n) {
    pdl_entry();
    size_t r = blockIdx.x;
    for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < n; i += gridDim.y * blockDim.x) {
        float g = act<T>(silu_dev(ldf(gate + r * ldg + i)));  // the engine rounds silu(gate) before the product
        stf(out + r * ldo + i, g * ldf(up + r * ldu + i));
    }
}

template <typename T> __global__ void relu2_kernel(T *out, int ldo, const T *up, int ldu, int n) {
    pdl_entry();
    size_t r = blockIdx.x;
    for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < n; i += gridDim.y * blockDim.x) {
        float u = ldf(up + r * ldu + i);
        float v = u > 0.0f ? u : 0.0f;
        stf(out + r * ldo + i, v * v);
    }
}

static dim3 mlp_grid(int rows, int n) {
    int bx = hk_cdiv(n, 256);
    return dim3(rows, bx > 8 ? 8 : bx);
}

template <typename T>
static int swiglu_launch(void *out, int ldo, const void *gate, int ldg, const void *up, int ldu, int rows, int n,
                         cudaStream_t stream) {
    ARG_CHECK(out && gate && up && rows >= 0 && n > 0 && ldo >= n && ldg >= n && ldu >= n);
    if (rows == 0) return 0;
    CUDA_CHECK(hk_launch(swiglu_kernel<T>, mlp_grid(rows, n), 256, 0, stream, (T *)out, ldo, (const T *)gate, ldg,
                         (const T *)up, ldu, n));
    return 0;
}

template <typename T>
static int relu2_launch(void *out, int ldo, const void *up, int ldu, int rows, int n, cudaStream_t stream) {
    ARG_CHECK(out && up && rows >= 0 && n > 0 && ldo >= n && ldu >= n);
    if (rows == 0) return 0;
    CUDA_CHECK(hk_launch(relu2_kernel<T>, mlp_grid(rows, n), 256, 0, stream, (T *)out, ldo, (const T *)up, ldu, n));
    return 0;
}

extern "C" int hk_swiglu(hk_dtype dtype, void *out, int ldo, const void *gate, int ldg, const void *up, int ldu,
                         int rows, int n, cudaStream_t stream) {
    HK_DISPATCH(dtype, swiglu_launch<float>(out, ldo, gate, ldg, up, ldu, rows, n, stream),
                swiglu_launch<bf16>(out, ldo, gate, ldg, up, ldu, rows, n, stream));
}

extern "C" int hk_relu2(hk_dtype dtype, void *out, int ldo, const void *up, int ldu, int rows, int n,
                        cudaStream_t stream) {
    HK_DISPATCH(dtype, relu2_launch<float>(out, ldo, up, ldu, rows, n, stream),
                relu2_launch<bf16>(out, ldo, up, ldu, rows, n, stream));
}
