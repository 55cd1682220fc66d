/* Aligned allocation and a bump arena. */
#ifndef LETHE_MEM_H
#define LETHE_MEM_H

#include <stddef.h>

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_ALIGN 64

/* Zeroed memory aligned to LETHE_ALIGN, or NULL (detail set) on failure or
 * overflow of n * size. Free with lethe_free. */
void *lethe_calloc(size_t n, size_t size);
void lethe_free(void *p); /* NULL is a no-op */

/* A bump arena: one aligned block, handed out in LETHE_ALIGN-aligned pieces.
 * Pieces are never freed one by one; reset or free the arena. */
typedef struct lethe_arena {
    char *base;
    size_t cap;
    size_t used;
} lethe_arena;

/* Returns 0 on success, -1 (detail set) when the block cannot be allocated. */
int lethe_arena_init(lethe_arena *a, size_t cap);
/* A zeroed piece of `bytes`, or NULL (detail set) when the arena is full. */
void *lethe_arena_push(lethe_arena *a, size_t bytes);
void lethe_arena_reset(lethe_arena *a);
void lethe_arena_free(lethe_arena *a); /* safe on a zeroed or freed arena */

LETHE_API_END
#endif
