/*
 * sleep — test agent for slow steps.
 *
 * Input:   {"ms": <milliseconds>}   (default 100)
 * Busy-waits (reading the WASI monotonic clock) until that much wall time has passed, so
 * that epoch deadlines can still interrupt it, then outputs {"slept": <ms>}.
 */
#include "agentflow.h"

#include <time.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return 1;

    long long ms = 100;
    af_get_int(doc, "input.ms", &ms);
    long long deadline = now_ms() + ms;
    while (now_ms() < deadline) {
    }
    printf("{\"slept\":%lld}\n", ms);
    return 0;
}
