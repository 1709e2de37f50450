/*
 * gather — the join of the "fan-out" example.
 *
 * Reads:   every member of upstream, each a square output {"n": ..., "square": ...}
 * Output:  {"count": <number of upstream outputs>, "sum": <sum of their squares>}
 *          an upstream output without an integer "square" counts but adds nothing.
 */
#include "agentflow.h"

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return 1;

    long long count = 0, sum = 0;
    const char *it = af_json_get(doc, "upstream", NULL);
    if (it && *it == '{') {
        const char *value;
        size_t value_len;
        while (af_json_next(&it, NULL, NULL, &value, &value_len)) {
            long long square;
            count++;
            if (*value == '{' && af_get_int(value, "square", &square)) sum += square;
        }
    }
    printf("{\"count\":%lld,\"sum\":%lld}\n", count, sum);
    return 0;
}
