/*
 * download.c: one fleets_download of a file from the emulator, for bench/download_bench.py.
 *
 *   download URL SHA256 DEST
 *
 * Creates a client (FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET, FLEETS_CA_FILE), makes
 * one small call so that a connection is open (the state of an agent between jobs), reads
 * its resident set (VmRSS: "idle"), resets the peak (VmHWM, through /proc/self/clear_refs),
 * downloads URL into DEST (removed first, with its .part files) and prints one JSON line:
 *   {"bytes":B,"seconds":S,"idle_rss_kb":I,"peak_rss_kb":P}
 * S covers fleets_download only: requests, TLS, SHA-256, writes, fsync and rename.
 * Exit 1 on a failed call.
 */
#define _GNU_SOURCE
#include <fleets.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A "VmXXX:" line of /proc/self/status, in kB. */
static long status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

static void fail(const char *what, fleets_result rc)
{
    char msg[512];
    fleets_last_error_message(msg, sizeof msg);
    fprintf(stderr, "download: %s: %s: %s\n", what, fleets_result_name(rc), msg);
    exit(1);
}

int main(int argc, char **argv)
{
    fleets_config_t *config = NULL;
    fleets_client_t *client = NULL;
    char path[4096];
    struct stat st;
    long idle, peak;
    double t0, dt;
    fleets_result rc;
    FILE *f;

    if (argc != 4) {
        fprintf(stderr, "usage: download URL SHA256 DEST\n");
        return 2;
    }
    unlink(argv[3]);
    snprintf(path, sizeof path, "%s.part", argv[3]);
    unlink(path);
    snprintf(path, sizeof path, "%s.part.meta", argv[3]);
    unlink(path);

    if ((rc = fleets_config_from_env(&config)) != FLEETS_OK)
        fail("config", rc);
    rc = fleets_client_new(config, &client);
    fleets_config_free(config);
    if (rc != FLEETS_OK)
        fail("client", rc);
    if ((rc = fleets_shadow_get(client, "bench-001", NULL, 0, NULL)) != FLEETS_OK)
        fail("warm-up call", rc);

    idle = status_kb("VmRSS");
    f = fopen("/proc/self/clear_refs", "w"); /* "5": reset the peak RSS to the current RSS */
    if (f != NULL) {
        fputs("5", f);
        fclose(f);
    }
    t0 = now_s();
    if ((rc = fleets_download(client, argv[1], argv[2], argv[3], 0, NULL, NULL)) != FLEETS_OK)
        fail("fleets_download", rc);
    dt = now_s() - t0;
    peak = status_kb("VmHWM");
    if (stat(argv[3], &st) != 0) {
        perror("download: stat");
        return 1;
    }
    printf("{\"bytes\":%lld,\"seconds\":%.6f,\"idle_rss_kb\":%ld,\"peak_rss_kb\":%ld}\n",
           (long long)st.st_size, dt, idle, peak);
    fleets_client_free(client);
    return 0;
}
