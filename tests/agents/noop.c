/* noop — the smallest step: ignores its input, outputs {"ok": true}. For overhead benchmarks. */
#include <stdio.h>

int main(void) {
    puts("{\"ok\":true}");
    return 0;
}
