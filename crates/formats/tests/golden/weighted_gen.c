// Golden bytes of ggml's importance-weighted encoders (quantize_q4_0 / quantize_q5_0 /
// quantize_q4_K / quantize_q6_K with quant_weights) on Pareto's golden input; importance[j] = ((j*37) % 101) / 16.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
size_t quantize_q4_0(const float * src, void * dst, int64_t nrow, int64_t n_per_row, const float * imatrix);
size_t quantize_q6_K(const float * src, void * dst, int64_t nrow, int64_t n_per_row, const float * imatrix);
size_t quantize_q5_0(const float * src, void * dst, int64_t nrow, int64_t n_per_row, const float * imatrix);
size_t quantize_q4_K(const float * src, void * dst, int64_t nrow, int64_t n_per_row, const float * imatrix);
int main(void) {
    enum { ROWS = 16, COLS = 256 };
    static float x[ROWS * COLS];
    FILE * f = fopen("/tmp/golden_input.f32", "rb");
    if (!f || fread(x, 4, ROWS * COLS, f) != ROWS * COLS) return 1;
    fclose(f);
    float imp[COLS];
    for (int j = 0; j < COLS; ++j) imp[j] = (float)((j * 37) % 101) / 16.0f;
    static unsigned char out[ROWS * COLS * 2];
    size_t n = quantize_q4_0(x, out, ROWS, COLS, imp);
    f = fopen("/tmp/wgold/q4_0_imatrix.bin", "wb"); fwrite(out, 1, n, f); fclose(f);
    n = quantize_q6_K(x, out, ROWS, COLS, imp);
    f = fopen("/tmp/wgold/q6_k_imatrix.bin", "wb"); fwrite(out, 1, n, f); fclose(f);
    n = quantize_q5_0(x, out, ROWS, COLS, imp);
    f = fopen("/tmp/wgold/q5_0_imatrix.bin", "wb"); fwrite(out, 1, n, f); fclose(f);
    n = quantize_q4_K(x, out, ROWS, COLS, imp);
    f = fopen("/tmp/wgold/q4_k_imatrix.bin", "wb"); fwrite(out, 1, n, f); fclose(f);
    printf("ok\n");
    return 0;
}
