/* Moves quantized blocks between GGUF order and row groups (kd_row_groups.h). */
#include <string.h>

#include "kd_row_groups.h"

/* to_groups: copy block (r, b) from GGUF order to its grouped place; else back. */
static void move_blocks(char *dst, const char *src, int64_t rows, int64_t nb, size_t block_bytes,
                        int64_t grouped, int to_groups)
{
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < nb; b++) {
            const size_t plain = (size_t)(r * nb + b) * block_bytes;
            const size_t placed = (size_t)kd_row_block_index(r, b, nb, grouped) * block_bytes;
            if (to_groups)
                memcpy(dst + placed, src + plain, block_bytes);
            else
                memcpy(dst + plain, src + placed, block_bytes);
        }
    }
}

void kd_row_groups_pack(void *dst, const void *src, int64_t rows, int64_t nb, size_t block_bytes,
                        int64_t grouped)
{
    move_blocks(dst, src, rows, nb, block_bytes, grouped, 1);
}

void kd_row_groups_unpack(void *dst, const void *src, int64_t rows, int64_t nb, size_t block_bytes,
                          int64_t grouped)
{
    move_blocks(dst, src, rows, nb, block_bytes, grouped, 0);
}
