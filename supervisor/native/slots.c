/* The plane's arrays of sessions, outputs and inputs: slots reused, handles checked. */
#include "plane.h"

#include <stdlib.h>
#include <string.h>

/* A free slot in an array of `size`-byte items that start with `int used`; -1 on no memory. */
int plane_free_slot(void **array, int *count, size_t size) {
    for (int k = 0; k < *count; k++)
        if (!*(int *)((char *)*array + (size_t)k * size)) return k;
    int grown = *count ? *count * 2 : 16;
    void *more = realloc(*array, size * (size_t)grown);
    if (more == NULL) return -1;
    memset((char *)more + size * (size_t)*count, 0, size * (size_t)(grown - *count));
    *array = more;
    int slot = *count;
    *count = grown;
    return slot;
}

int plane_find(uint64_t handle, int type, int count, void *array, size_t size) {
    int slot = TAG_SLOT(handle);
    if (TAG_TYPE(handle) != type || slot < 0 || slot >= count) return -1;
    char *item = (char *)array + (size_t)slot * size;
    uint32_t gen = *(uint32_t *)(item + sizeof(int));
    if (!*(int *)item || gen != TAG_GEN(handle)) return -1;
    return slot;
}
