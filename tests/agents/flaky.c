/*
 * flaky — test agent for retries.
 *
 * Input:   {"succeedOn": <attempt number>}   (default 2)
 * Reads:   step.attempt
 * Fails with exit code 1 while step.attempt < input.succeedOn, else outputs
 * {"attempt": <step.attempt>}.
 */
#include "agentflow.h"

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return 1;

    long long attempt = 0, succeed_on = 2;
    af_get_int(doc, "step.attempt", &attempt);
    af_get_int(doc, "input.succeedOn", &succeed_on);
    if (attempt < succeed_on) {
        fprintf(stderr, "flaky: attempt %lld fails (succeeds on %lld)\n", attempt, succeed_on);
        return 1;
    }
    printf("{\"attempt\":%lld}\n", attempt);
    return 0;
}
