/*
 * outbox.c: the durable outbox's benchmark rows (bench/outbox_bench.py runs it).
 *
 *   outbox enqueue-always N DIR   N events enqueued with FLEETS_OUTBOX_SYNC_ALWAYS (timed)
 *   outbox enqueue-batch  N DIR   the same with FLEETS_OUTBOX_SYNC_BATCH (defaults: 1 s / 100)
 *   outbox flush          N DIR   N events enqueued (batch, untimed), then one flush (timed)
 *   outbox recover        N DIR   N events enqueued (batch) and closed, then open (timed, 3x)
 *
 * DIR must not exist (or be empty). Events look like telemetry:
 *   {"thingName":"bench-001","eventType":"reading","severity":"info","timestamp":...,
 *    "data":{"temperature":21.5,"humidity":58,"seq":N}}
 * The client comes from FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET, FLEETS_CA_FILE.
 * Prints one JSON line; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <fleets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THING "bench-001"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(fleets_result rc, const char *what)
{
    if (rc != FLEETS_OK) {
        char msg[512];
        fleets_last_error_message(msg, sizeof msg);
        fprintf(stderr, "outbox bench: %s: %s: %s\n", what, fleets_result_name(rc), msg);
        exit(1);
    }
}

static fleets_outbox_t *open_outbox(const char *dir, fleets_outbox_sync sync)
{
    fleets_outbox_options_t opts = {0};
    fleets_outbox_t *outbox = NULL;
    opts.sync = sync;
    /* Room for 100,000 events of ~150 bytes. */
    opts.max_bytes = 64u * 1024 * 1024;
    check(fleets_outbox_open(dir, &opts, &outbox), "fleets_outbox_open");
    return outbox;
}

static void enqueue(fleets_outbox_t *outbox, long n)
{
    char data[96];
    for (long i = 0; i < n; i++) {
        snprintf(data, sizeof data, "{\"temperature\":21.5,\"humidity\":58,\"seq\":%ld}", i);
        check(fleets_outbox_enqueue_event(outbox, THING, "reading", FLEETS_SEVERITY_INFO, 0, data,
                                          NULL),
              "fleets_outbox_enqueue_event");
    }
}

static fleets_outbox_stats_t stats(const fleets_outbox_t *outbox)
{
    fleets_outbox_stats_t s;
    check(fleets_outbox_stats(outbox, &s), "fleets_outbox_stats");
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: outbox enqueue-always|enqueue-batch|flush|recover N DIR\n");
        return 2;
    }
    const char *mode = argv[1], *dir = argv[3];
    long n = atol(argv[2]);

    if (strcmp(mode, "enqueue-always") == 0 || strcmp(mode, "enqueue-batch") == 0) {
        int batch = strcmp(mode, "enqueue-batch") == 0;
        fleets_outbox_t *outbox =
            open_outbox(dir, batch ? FLEETS_OUTBOX_SYNC_BATCH : FLEETS_OUTBOX_SYNC_ALWAYS);
        fleets_outbox_stats_t before = stats(outbox);
        double t0 = now_s();
        enqueue(outbox, n);
        double t = now_s() - t0;
        fleets_outbox_stats_t after = stats(outbox);
        check(fleets_outbox_close(outbox), "fleets_outbox_close");
        printf("{\"records\":%ld,\"seconds\":%.6f,\"written_bytes\":%llu,\"syncs\":%llu}\n", n, t,
               (unsigned long long)(after.written_bytes - before.written_bytes),
               (unsigned long long)(after.syncs - before.syncs));
        return 0;
    }
    if (strcmp(mode, "flush") == 0) {
        fleets_config_t *cfg = NULL;
        fleets_client_t *client = NULL;
        check(fleets_config_from_env(&cfg), "fleets_config_from_env");
        check(fleets_client_new(cfg, &client), "fleets_client_new");
        fleets_config_free(cfg);
        fleets_outbox_t *outbox = open_outbox(dir, FLEETS_OUTBOX_SYNC_BATCH);
        enqueue(outbox, n);
        uint64_t delivered = 0;
        double t0 = now_s();
        check(fleets_outbox_flush(outbox, client, 0, &delivered), "fleets_outbox_flush");
        double t = now_s() - t0;
        fleets_outbox_stats_t s = stats(outbox);
        check(fleets_outbox_close(outbox), "fleets_outbox_close");
        fleets_client_free(client);
        if ((long)delivered != n || s.queued_records != 0) {
            fprintf(stderr, "outbox bench: delivered %llu of %ld\n", (unsigned long long)delivered, n);
            return 1;
        }
        /* Everything written for these records: the records, their acknowledgements, headers. */
        printf("{\"records\":%ld,\"seconds\":%.6f,\"written_bytes\":%llu,\"syncs\":%llu}\n", n, t,
               (unsigned long long)s.written_bytes, (unsigned long long)s.syncs);
        return 0;
    }
    if (strcmp(mode, "recover") == 0) {
        fleets_outbox_t *outbox = open_outbox(dir, FLEETS_OUTBOX_SYNC_BATCH);
        enqueue(outbox, n);
        check(fleets_outbox_close(outbox), "fleets_outbox_close");
        printf("{\"records\":%ld,\"open_ms\":[", n);
        for (int i = 0; i < 3; i++) {
            double t0 = now_s();
            outbox = open_outbox(dir, FLEETS_OUTBOX_SYNC_ALWAYS);
            double t = now_s() - t0;
            fleets_outbox_stats_t s = stats(outbox);
            check(fleets_outbox_close(outbox), "fleets_outbox_close");
            if ((long)s.queued_records != n) {
                fprintf(stderr, "outbox bench: recovered %llu of %ld\n",
                        (unsigned long long)s.queued_records, n);
                return 1;
            }
            printf("%s%.3f", i ? "," : "", t * 1000);
        }
        printf("]}\n");
        return 0;
    }
    fprintf(stderr, "outbox bench: unknown mode %s\n", mode);
    return 2;
}
