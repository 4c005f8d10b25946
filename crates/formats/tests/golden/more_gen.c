// Golden bytes of ggml's Q4_1 / Q5_1 / Q3_K / Q5_K encoders on Pareto's golden input: plain
// (quantize_<type> with no quant weights, i.e. quantize_row_<type>_ref, what llama-quantize runs
// without --imatrix) and importance-weighted (importance[j] = ((j*37) % 101) / 16).
// Built against ggml-quants.c itself, portably (README.md in this folder has the command); the
// four functions below are the only symbols ggml-quants.c needs from the rest of ggml here.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
enum { T_Q4_1 = 3, T_Q5_1 = 7, T_Q3_K = 11, T_Q5_K = 13 };
void ggml_abort(const char * file, int line, const char * fmt, ...) { fprintf(stderr, "abort %s:%d %s\n", file, line, fmt); exit(2); }
static size_t bytes_per_block(int t) { return t == T_Q4_1 ? 20 : t == T_Q5_1 ? 24 : t == T_Q3_K ? 110 : 176; }
static int64_t block_weights(int t) { return t == T_Q4_1 || t == T_Q5_1 ? 32 : 256; }
size_t ggml_row_size(int t, int64_t ne) { return bytes_per_block(t) * (size_t)(ne / block_weights(t)); }
size_t ggml_type_size(int t) { return bytes_per_block(t); }
const char * ggml_type_name(int t) { (void)t; return "?"; }
size_t quantize_q4_1(const float * src, void * dst, int64_t nrow, int64_t n_per_row, const float * imatrix);
size_t quantize_q5_1(const float * src, void * dst, int64_t nrow, int64_t n_per_row, const float * imatrix);
size_t quantize_q3_K(const float * src, void * dst, int64_t nrow, int64_t n_per_row, const float * imatrix);
size_t quantize_q5_K(const float * src, void * dst, int64_t nrow, int64_t n_per_row, const float * imatrix);
typedef size_t (*quantize_fn)(const float *, void *, int64_t, int64_t, const float *);
int main(int argc, char ** argv) {
    enum { ROWS = 16, COLS = 256 };
    if (argc != 3) { fprintf(stderr, "usage: %s golden_input.f32 out_dir\n", argv[0]); return 2; }
    static float x[ROWS * COLS];
    FILE * f = fopen(argv[1], "rb");
    if (!f || fread(x, 4, ROWS * COLS, f) != ROWS * COLS) return 1;
    fclose(f);
    float imp[COLS];
    for (int j = 0; j < COLS; ++j) imp[j] = (float)((j * 37) % 101) / 16.0f;
    const struct { const char * name; quantize_fn q; } types[] = {
        {"q4_1", quantize_q4_1}, {"q5_1", quantize_q5_1}, {"q3_k", quantize_q3_K}, {"q5_k", quantize_q5_K},
    };
    static unsigned char out[ROWS * COLS * 2];
    char path[4096];
    for (int t = 0; t < 4; ++t) {
        for (int weighted = 0; weighted < 2; ++weighted) {
            size_t n = types[t].q(x, out, ROWS, COLS, weighted ? imp : NULL);
            snprintf(path, sizeof path, "%s/%s%s.bin", argv[2], types[t].name, weighted ? "_imatrix" : "");
            f = fopen(path, "wb");
            if (!f || fwrite(out, 1, n, f) != n) return 1;
            fclose(f);
        }
    }
    printf("ok\n");
    return 0;
}
