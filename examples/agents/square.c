/*
 * square — a leaf of the "fan-out" example (many squares -> gather).
 *
 * Input:   {"n": <integer>}
 * Output:  {"n": <n>, "square": <n * n>}
 * Exits 2 if input.n is missing or not an integer.
 */
#include "agentflow.h"

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return 1;

    long long n;
    if (!af_get_int(doc, "input.n", &n)) {
        fputs("square: input.n is missing or not an integer\n", stderr);
        return 2;
    }
    printf("{\"n\":%lld,\"square\":%lld}\n", n, n * n);
    return 0;
}
