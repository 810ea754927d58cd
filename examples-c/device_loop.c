/*
 * device_loop.c: a device that keeps working while the network is down, with the durable
 * outbox of libfleets.
 *
 * Every tick it reads its sensor, queues a shadow report and a "reading" event in the outbox
 * (on disk, synced: a reboot or power cut loses none of them), then tries to deliver what is
 * queued for up to one second. While the server is unreachable the flush stops at the first
 * failure and everything stays queued, in order; when the server is back, the next flush
 * delivers the backlog, with the queued reports merged into one per thing.
 *
 * Configuration comes from the environment (fleets_config_from_env):
 *   FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET and optionally FLEETS_CA_FILE.
 *
 * Usage: device_loop [--thing NAME] [--dir PATH] [--ticks N] [--interval-ms MS]
 *   --dir         the outbox directory (default ./outbox), created if missing
 *   --ticks       how many readings to take (default 10)
 *   --interval-ms time between readings (default 1000)
 * After the last tick it keeps flushing for up to 30 s until the queue is empty.
 *
 * Exit status: 0 when everything was delivered, 1 on a failure, 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <fleets.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLUSH_MS 1000u

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static void report_failure(const char *what, fleets_result rc)
{
    char msg[512];
    fleets_last_error_message(msg, sizeof msg);
    fprintf(stderr, "device_loop: %s failed: %s: %s\n", what, fleets_result_name(rc), msg);
}

/* One attempt to deliver the queue; prints what happened. Returns the flush result. */
static fleets_result deliver(fleets_outbox_t *outbox, const fleets_client_t *client, int tick)
{
    uint64_t delivered = 0;
    fleets_outbox_stats_t stats;
    fleets_result rc = fleets_outbox_flush(outbox, client, FLUSH_MS, &delivered);
    char why[160] = "";
    if (rc != FLEETS_OK)
        fleets_last_error_message(why, sizeof why);
    if (fleets_outbox_stats(outbox, &stats) != FLEETS_OK)
        return rc;
    if (rc == FLEETS_OK)
        printf("tick %d: online, delivered %llu, queued %llu\n", tick,
               (unsigned long long)delivered, (unsigned long long)stats.queued_records);
    else
        printf("tick %d: offline (%s: %s), queued %llu, oldest %.1f s\n", tick,
               fleets_result_name(rc), why, (unsigned long long)stats.queued_records,
               (double)stats.oldest_age_ms / 1000.0);
    if (stats.dead_lettered_records > 0)
        printf("tick %d: %llu record(s) rejected by the server: %s\n", tick,
               (unsigned long long)stats.dead_lettered_records, stats.last_error_message);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    const char *thing = "thermostat-001", *dir = "outbox";
    int ticks = 10;
    long interval_ms = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--thing") == 0 && i + 1 < argc)
            thing = argv[++i];
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--ticks") == 0 && i + 1 < argc)
            ticks = atoi(argv[++i]);
        else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc)
            interval_ms = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: device_loop [--thing NAME] [--dir PATH] [--ticks N] "
                            "[--interval-ms MS]\n");
            return 2;
        }
    }

    fleets_config_t *cfg = NULL;
    fleets_client_t *client = NULL;
    fleets_outbox_t *outbox = NULL;
    fleets_result rc = fleets_config_from_env(&cfg);
    if (rc != FLEETS_OK) {
        report_failure("fleets_config_from_env", rc);
        return 1;
    }
    /* A short connect timeout: an unreachable server should not hold a tick for long. */
    rc = fleets_config_set_timeouts(cfg, 2000, 5000);
    if (rc == FLEETS_OK)
        rc = fleets_client_new(cfg, &client);
    fleets_config_free(cfg);
    if (rc != FLEETS_OK) {
        report_failure("fleets_client_new", rc);
        return 1;
    }
    /* Defaults: every record synced before the enqueue returns, 8 MiB, oldest events dropped
     * first when full. */
    rc = fleets_outbox_open(dir, NULL, &outbox);
    if (rc != FLEETS_OK) {
        report_failure("fleets_outbox_open", rc);
        fleets_client_free(client);
        return 1;
    }

    int status = 0;
    for (int tick = 0; tick < ticks && status == 0; tick++) {
        double temperature = 21.0 + (double)(tick % 7) * 0.5; /* the "sensor" */
        char reported[96], data[96];
        snprintf(reported, sizeof reported, "{\"temperature\":%.1f,\"tick\":%d}", temperature,
                 tick);
        snprintf(data, sizeof data, "{\"temperature\":%.1f,\"tick\":%d}", temperature, tick);
        rc = fleets_outbox_enqueue_report(outbox, thing, reported, NULL, 0);
        if (rc == FLEETS_OK)
            rc = fleets_outbox_enqueue_event(outbox, thing, "reading", FLEETS_SEVERITY_INFO, 0,
                                             data, NULL);
        if (rc != FLEETS_OK) {
            /* Storage trouble (disk full, outbox full with nothing to drop): a real device
             * would raise an alarm; here we stop. */
            report_failure("enqueue", rc);
            status = 1;
            break;
        }
        deliver(outbox, client, tick);
        sleep_ms(interval_ms);
    }

    /* Drain what is left (a real device simply keeps looping). */
    for (int attempt = 0; status == 0; attempt++) {
        fleets_outbox_stats_t stats;
        rc = fleets_outbox_stats(outbox, &stats);
        if (rc != FLEETS_OK) {
            report_failure("fleets_outbox_stats", rc);
            status = 1;
        } else if (stats.queued_records == 0) {
            printf("all delivered: %llu records, %llu rejected, %llu dropped\n",
                   (unsigned long long)stats.delivered_records,
                   (unsigned long long)stats.dead_lettered_records,
                   (unsigned long long)stats.dropped_records);
            break;
        } else if (attempt == 30) {
            fprintf(stderr, "device_loop: %llu records still queued after 30 s\n",
                    (unsigned long long)stats.queued_records);
            status = 1;
        } else if (deliver(outbox, client, ticks) != FLEETS_OK) {
            sleep_ms(1000);
        }
    }

    rc = fleets_outbox_close(outbox);
    if (rc != FLEETS_OK) {
        report_failure("fleets_outbox_close", rc);
        status = 1;
    }
    fleets_client_free(client);
    return status;
}
