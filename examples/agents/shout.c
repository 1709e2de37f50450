/*
 * shout — the other side of the "diamond" example.
 *
 * Reads:   upstream.fetch.text   (string, from the fetch step)
 * Output:  {"text": "<the text upper-cased>"}   (ASCII letters only; other bytes unchanged)
 * Exits 2 if upstream.fetch.text is missing or not a string.
 */
#include "agentflow.h"

#include <ctype.h>

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return 1;

    size_t len;
    char *text = af_get_string_dup(doc, "upstream.fetch.text", &len);
    if (!text) {
        fputs("shout: upstream.fetch.text is missing or not a string\n", stderr);
        return 2;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x80) text[i] = (char)toupper((unsigned char)text[i]);

    fputs("{\"text\":", stdout);
    af_print_string(text, len);
    fputs("}\n", stdout);
    return 0;
}
