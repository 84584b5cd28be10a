/*
 * safetensors.h (internal): a read-only, memory-mapped view of a Hugging Face
 * .safetensors file (https://huggingface.co/docs/safetensors).
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}), then the tensor bytes, offsets relative to the end
 * of the header. Opening checks everything a reader relies on: the header
 * parses, every tensor's byte range lies inside the file, has exactly
 * prod(shape) * sizeof(dtype) bytes, and no two tensors overlap.
 */
#ifndef BR_TEXT_SAFETENSORS_H
#define BR_TEXT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"

#define ST_MAX_DIMS 8

typedef enum st_dtype {
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_F64,
    ST_I64,
    ST_I32,
    ST_OTHER /* any other dtype: listed, but cannot be converted */
} st_dtype;

typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t count;   /* prod(shape) */
    const void *data; /* inside the mapping; any alignment */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

/* Maps and validates a file. Fails with BR_ENOTFOUND (missing), BR_EIO or
 * BR_EFORMAT (with the reason in the detail). */
br_status br__st_open(const char *path, st_file **out);
void br__st_close(st_file *f);

size_t br__st_count(const st_file *f);
const st_tensor *br__st_tensor_at(const st_file *f, size_t i);
/* The tensor called `name`, or NULL. */
const st_tensor *br__st_find(const st_file *f, const char *name);
/* Total bytes of the mapping. */
size_t br__st_file_bytes(const st_file *f);

/* Bytes per element of a dtype (0 for ST_OTHER). */
size_t br__st_dtype_size(st_dtype t);
const char *br__st_dtype_name(st_dtype t);

/* The tensor as float32, when it already is float32 and 4-byte aligned in
 * the mapping (zero copy); NULL otherwise. */
const float *br__st_f32_view(const st_tensor *t);
/* Converts every element to float32 into dst (t->count floats): F32 copies,
 * F16 and BF16 widen exactly, F64 rounds to nearest. BR_EUNSUPPORTED for
 * integer and other dtypes. */
br_status br__st_to_f32(const st_tensor *t, float *dst);

/* IEEE half / bfloat16 -> float (exact). */
float br__st_half_to_float(uint16_t h);
float br__st_bf16_to_float(uint16_t h);

#endif
