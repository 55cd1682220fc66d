/* Aligned allocation and the bump arena. */
#include "lethe/mem.h"
#include "lethe/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *lethe_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        lethe_fail(LETHE_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t bytes = n * size;
    bytes = (bytes + LETHE_ALIGN - 1) / LETHE_ALIGN * LETHE_ALIGN;
    if (bytes == 0)
        bytes = LETHE_ALIGN;
    void *p = aligned_alloc(LETHE_ALIGN, bytes);
    if (!p) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void lethe_free(void *p) { free(p); }

int lethe_arena_init(lethe_arena *a, size_t cap)
{
    a->base = lethe_calloc(1, cap);
    a->cap = a->base ? cap : 0;
    a->used = 0;
    return a->base ? 0 : -1;
}

void *lethe_arena_push(lethe_arena *a, size_t bytes)
{
    size_t start = (a->used + LETHE_ALIGN - 1) / LETHE_ALIGN * LETHE_ALIGN;
    if (start > a->cap || bytes > a->cap - start) {
        lethe_fail(LETHE_ERR_NOMEM, "arena full: %zu of %zu bytes used, %zu more asked",
                   a->used, a->cap, bytes);
        return NULL;
    }
    a->used = start + bytes;
    return memset(a->base + start, 0, bytes);
}

void lethe_arena_reset(lethe_arena *a) { a->used = 0; }

void lethe_arena_free(lethe_arena *a)
{
    lethe_free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}
