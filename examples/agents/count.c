/*
 * count — one side of the "diamond" example.
 *
 * Reads:   upstream.fetch.words   (array of strings, from the fetch step)
 * Output:  {"words": <number of words>, "chars": <total characters of all words>}
 *          characters are counted as UTF-8 code points.
 * Exits 2 if upstream.fetch.words is missing or not an array.
 */
#include "agentflow.h"

static size_t utf8_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return 1;

    const char *it = af_json_get(doc, "upstream.fetch.words", NULL);
    if (!it || *it != '[') {
        fputs("count: upstream.fetch.words is missing or not an array\n", stderr);
        return 2;
    }
    const char *raw;
    size_t raw_len, words = 0, chars = 0;
    char word[1024];
    while (af_json_next(&it, NULL, NULL, &raw, &raw_len)) {
        long n = af_json_string(raw, raw_len, word, sizeof word);
        if (n < 0) continue; /* not a string: ignore */
        words++;
        if ((size_t)n < sizeof word) {
            chars += utf8_chars(word, (size_t)n);
        } else {
            char *big = malloc((size_t)n + 1);
            if (!big) return 1;
            af_json_string(raw, raw_len, big, (size_t)n + 1);
            chars += utf8_chars(big, (size_t)n);
            free(big);
        }
    }
    printf("{\"words\":%zu,\"chars\":%zu}\n", words, chars);
    return 0;
}
