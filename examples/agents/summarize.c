/*
 * summarize — the join of the "diamond" example.
 *
 * Reads:   upstream.count.words, upstream.count.chars   (integers, from count)
 *          upstream.shout.text                          (string, from shout)
 * Output:  {"summary": "<words> words, <chars> chars: <SHOUTED TEXT>"}
 * Exits 2 if any of them is missing.
 */
#include "agentflow.h"

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return 1;

    long long words, chars;
    size_t len;
    char *text = af_get_string_dup(doc, "upstream.shout.text", &len);
    if (!af_get_int(doc, "upstream.count.words", &words) || !af_get_int(doc, "upstream.count.chars", &chars) ||
        !text) {
        fputs("summarize: needs upstream.count.{words,chars} and upstream.shout.text\n", stderr);
        return 2;
    }

    char head[64];
    int head_len = snprintf(head, sizeof head, "%lld words, %lld chars: ", words, chars);
    size_t total = (size_t)head_len + len;
    char *summary = malloc(total + 1);
    if (!summary) return 1;
    memcpy(summary, head, (size_t)head_len);
    memcpy(summary + head_len, text, len);

    fputs("{\"summary\":", stdout);
    af_print_string(summary, total);
    fputs("}\n", stdout);
    return 0;
}
