/* spin — test agent. Loops forever; only a timeout stops it. */
#include "agentflow.h"

int main(void) {
    volatile unsigned long n = 0;
    for (;;) n++;
}
