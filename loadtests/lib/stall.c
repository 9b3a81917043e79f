/* stall: take the CPU away from everything else on it, on a fixed schedule.
 *
 *   stall STALL_US PERIOD_US TOTAL_MS [MIB]
 *
 * Spins for STALL_US at the start of every PERIOD_US for TOTAL_MS, sleeping in between on
 * an absolute schedule (clock_nanosleep TIMER_ABSTIME, so late wake-ups do not drift the
 * period). With MIB > 0 it walks that many MiB of memory while it spins, so whoever gets
 * the CPU back finds its caches and TLB cold. Run it pinned and real-time:
 *
 *   chrt -f 50 taskset -c 0 stall 3000 50000 5000
 *
 * Scenario (d) of loadtests/run.sh: a stand-in for a hypervisor taking a vCPU away, a noisy
 * neighbour, or a CFS quota running out. A C program because the spin must be exact and
 * start at once (an interpreter's start-up would be the first stall).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    long long stall = atoll(argv[1]) * 1000, period = atoll(argv[2]) * 1000;
    long long total = atoll(argv[3]) * 1000000LL;
    size_t size = argc > 4 ? (size_t)atoll(argv[4]) << 20 : 0;
    if (stall <= 0 || period <= stall || total <= 0) return 2;
    volatile unsigned char *mem = NULL;
    if (size) {
        mem = malloc(size);
        if (!mem) return 1;
        memset((void *)mem, 1, size);
    }
    long long start = now_ns(), next = start;
    size_t at = 0;
    while (next - start < total) {
        long long until = next + stall;
        while (now_ns() < until) {
            /* a stride of one page plus one line touches a new line and a new page each step */
            for (int k = 0; mem && k < 256; k++) {
                mem[at]++;
                at = (at + 4160) % size;
            }
        }
        next += period;
        struct timespec ts = {.tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    return 0;
}
