/*
 * fetch — the root of the "diamond" example (fetch -> count & shout -> summarize).
 *
 * Input:   {"text": "<string>"}   (read from input.text; a built-in sentence if missing)
 * Output:  {"text": "<the same text>", "words": ["<word>", ...]}
 *          words are the whitespace-separated words of text, in order.
 * Logs one line through the "log" host call.
 */
#include "agentflow.h"

#include <ctype.h>

static const char DEFAULT_TEXT[] = "the quick brown fox jumps over the lazy dog";

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return 1;

    size_t len;
    char *text = af_get_string_dup(doc, "input.text", &len);
    if (!text) {
        text = strdup(DEFAULT_TEXT);
        len = strlen(text);
    }

    fputs("{\"text\":", stdout);
    af_print_string(text, len);
    fputs(",\"words\":[", stdout);
    size_t words = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && isspace((unsigned char)text[i])) i++;
        size_t start = i;
        while (i < len && !isspace((unsigned char)text[i])) i++;
        if (i > start) {
            if (words++) putchar(',');
            af_print_string(text + start, i - start);
        }
    }
    fputs("]}\n", stdout);

    char line[96];
    snprintf(line, sizeof line, "fetched %zu words", words);
    af_log("info", line);
    return 0;
}
