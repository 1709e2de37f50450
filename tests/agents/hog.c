/*
 * hog — test agent for memory limits.
 *
 * Allocates memory in 1 MiB chunks, writing to every page, until malloc fails; then
 * reports how much it got on stderr and exits with code 4.
 */
#include "agentflow.h"

struct chunk {
    struct chunk *next;
};

int main(void) {
    struct chunk *head = NULL;
    size_t mib = 0;
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p) break;
        for (size_t off = 0; off < (1 << 20); off += 4096) ((volatile char *)p)[off] = (char)off;
        /* keep every chunk reachable so nothing can be optimized away */
        struct chunk *c = (struct chunk *)p;
        c->next = head;
        head = c;
        mib++;
    }
    fprintf(stderr, "hog: malloc failed after %zu MiB\n", mib);
    return head ? 4 : 5;
}
