/*
 * bench_requests.c: client-side cost of libfleets calls, to compare library builds (e.g.
 * opt-level 3 vs "s"). Not part of ctest; run it against an emulator:
 *
 *   FLEETS_ENDPOINT=... FLEETS_API_KEY=... FLEETS_API_SECRET=... FLEETS_CA_FILE=... \
 *     bench_requests [THING] [N]
 *
 * Prints the wall time and this process's CPU time (user+sys) per request for N shadow
 * reports on one keep-alive client, and for N/10 new clients (a TLS handshake each).
 */
#define _POSIX_C_SOURCE 200809L
#include <fleets.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int run(const fleets_config_t *cfg, const char *thing, int n, int new_client_each)
{
    fleets_client_t *client = NULL;
    double t0 = now_s(), c0 = cpu_s();
    int i;
    for (i = 0; i < n; i++) {
        fleets_result rc;
        char body[128];
        if (client == NULL && fleets_client_new(cfg, &client) != FLEETS_OK)
            return 1;
        snprintf(body, sizeof body, "{\"counter\":%d,\"temperature\":21.5}", i);
        rc = fleets_shadow_report(client, thing, body, NULL, 0, NULL, 0, NULL);
        if (rc != FLEETS_OK) {
            char msg[256];
            fleets_last_error_message(msg, sizeof msg);
            fprintf(stderr, "bench: %s: %s\n", fleets_result_name(rc), msg);
            fleets_client_free(client);
            return 1;
        }
        if (new_client_each) {
            fleets_client_free(client);
            client = NULL;
        }
    }
    fleets_client_free(client);
    printf("%-22s n=%-5d wall %7.3f ms/req  cpu %7.3f ms/req\n",
           new_client_each ? "new client (TLS hs)" : "keep-alive", n,
           (now_s() - t0) * 1e3 / n, (cpu_s() - c0) * 1e3 / n);
    return 0;
}

int main(int argc, char **argv)
{
    const char *thing = argc > 1 ? argv[1] : "bench-001";
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    fleets_config_t *cfg = NULL;
    int rc;
    if (fleets_config_from_env(&cfg) != FLEETS_OK) {
        fprintf(stderr, "bench: set FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET\n");
        return 2;
    }
    rc = run(cfg, thing, n, 0) || run(cfg, thing, n / 10 > 0 ? n / 10 : 1, 1);
    fleets_config_free(cfg);
    return rc;
}
