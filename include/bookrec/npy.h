/*
 * bookrec/npy.h: NumPy .npy files (format version 1.0), the interchange
 * format of bookrec's kernels: embeddings, cluster labels, neighbour ids.
 * Little-endian float32 ('<f4'), float64 ('<f8') and int32 ('<i4'),
 * C order, one or two dimensions. numpy.load reads what this writes.
 */
#ifndef BOOKREC_NPY_H
#define BOOKREC_NPY_H

#include <stddef.h>

#include "bookrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum br_dtype {
    BR_DTYPE_F32 = 0,
    BR_DTYPE_F64 = 1,
    BR_DTYPE_I32 = 2,
} br_dtype;

/* An array read from a .npy file. rows x cols elements (a 1-D array has
 * cols == 1 and ndim == 1). data is br_aligned_alloc'd (BR_ALIGN). */
typedef struct br_array {
    br_dtype dtype;
    int ndim;
    size_t rows, cols;
    void *data;
    /* br_npy_map: the file's mapping (data points into it); NULL otherwise */
    void *map;
    size_t map_len;
} br_array;

/* Writes a (rows, cols) array (ndim 2) or a (rows,) vector (ndim 1, cols 1)
 * to `path`: a temporary file beside it, fsynced, then renamed. */
BR_API br_status br_npy_write(const char *path, br_dtype dtype, int ndim, size_t rows, size_t cols,
                              const void *data);

/* Reads a .npy file. With want >= 0, the data is converted to that dtype
 * (f64 -> f32 and f32 -> f64 allowed; integers only from i32, and from
 * little-endian i64 when every value fits); pass -1 to keep the file's type.
 * Fails with BR_EFORMAT and a detail on anything else (Fortran order, 3+
 * dimensions, big-endian, truncated data). Release with br_array_free. */
BR_API br_status br_npy_read(const char *path, int want, br_array *out);
/* Maps a .npy file instead of reading it: the pages come in as they are
 * touched and are shared between processes (a model version's large
 * arrays). The mapping is private: a page the caller writes is copied for
 * this process, the file never changes. The file's dtype must be `want`
 * and its data 64-byte aligned (br_npy_write and numpy align it); else it
 * is read as br_npy_read would. Release with br_array_free. */
BR_API br_status br_npy_map(const char *path, br_dtype want, br_array *out);
/* Frees or unmaps a's data; NULL-safe. */
BR_API void br_array_free(br_array *a);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_NPY_H */
