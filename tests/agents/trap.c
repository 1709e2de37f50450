/* trap — test agent. Executes a wasm `unreachable` instruction (a trap). */
#include "agentflow.h"

int main(void) {
    fputs("about to trap\n", stderr);
    __builtin_trap();
}
