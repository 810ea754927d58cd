/*
 * wake.c: a wake-send-sleep device cycle, compiled twice like bench/c/loop.c:
 *   -DBACKEND_FLEETS  one fleets_client_t, fleets_shadow_report()
 *   -DBACKEND_CURL    one libcurl easy handle (its TLS session cache is per handle)
 * Both send the same body as bench/c/loop.c, check HTTP 200, and keep nothing across runs:
 * every process start is a new TLS session (a full handshake).
 *
 *   wake REPORTS PAUSE_MS
 *     makes REPORTS reports, sleeping PAUSE_MS between them, and times each report alone
 *     (clock_gettime around the call). Against a server that closes the connection after
 *     every response (fleets-emulator --requests-per-connection 1), report 2 and later open a
 *     new connection and may resume the TLS session of report 1 within this process.
 * Configuration: FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET, FLEETS_CA_FILE.
 * Prints one JSON line: {"ms":[per report],"cpu_s":C,"connections":N,"bytes_sent":S,
 * "bytes_received":R} (the last three from fleets_client_stats; -1 for curl).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define THING "bench-001"
#define TOKEN "tok-001"
#define REPORTED "{\"temperature\":21.5,\"humidity\":58,\"firmware\":\"2.0.0\",\"uptime\":123456}"
#define BODY "{\"thingName\":\"" THING "\",\"state\":{\"reported\":" REPORTED "},\"clientToken\":\"" TOKEN "\"}"
#define MAX_REPORTS 64

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "wake: set %s\n", name);
        exit(2);
    }
    return v;
}

static long long stat_connections = -1, stat_sent = -1, stat_received = -1;

#if defined(BACKEND_FLEETS)
#include <fleets.h>

static fleets_client_t *client;

static void backend_init(void)
{
    fleets_config_t *cfg = NULL;
    fleets_result r = fleets_config_new(env("FLEETS_ENDPOINT"), env("FLEETS_API_KEY"),
                                        env("FLEETS_API_SECRET"), &cfg);
    if (r == FLEETS_OK)
        r = fleets_config_set_ca_file(cfg, env("FLEETS_CA_FILE"));
    if (r == FLEETS_OK)
        r = fleets_client_new(cfg, &client);
    fleets_config_free(cfg);
    if (r != FLEETS_OK) {
        char msg[256];
        fleets_last_error_message(msg, sizeof msg);
        fprintf(stderr, "wake: %s: %s\n", fleets_result_name(r), msg);
        exit(1);
    }
}

static int report_once(void)
{
    char out[4096];
    size_t len = 0;
    fleets_result r = fleets_shadow_report(client, THING, REPORTED, TOKEN, 0, out, sizeof out, &len);
    if (r != FLEETS_OK) {
        char msg[256];
        fleets_last_error_message(msg, sizeof msg);
        fprintf(stderr, "wake: fleets_shadow_report: %s: %s\n", fleets_result_name(r), msg);
        return -1;
    }
    return 0;
}

static void backend_free(void)
{
    fleets_client_stats_t s;
    if (fleets_client_stats(client, &s) == FLEETS_OK) {
        stat_connections = (long long)s.connections;
        stat_sent = (long long)s.bytes_sent;
        stat_received = (long long)s.bytes_received;
    }
    fleets_client_free(client);
}

#elif defined(BACKEND_CURL)
#include <curl/curl.h>

static CURL *easy;
static struct curl_slist *headers;
static char buf[4096];
static size_t buf_len;

static void b64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        *out++ = t[in[i] >> 2];
        *out++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *out++ = t[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *out++ = t[in[i + 2] & 63];
    }
    if (i < n) {
        *out++ = t[in[i] >> 2];
        if (i + 1 < n) {
            *out++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *out++ = t[(in[i + 1] & 15) << 2];
        } else {
            *out++ = t[(in[i] & 3) << 4];
            *out++ = '=';
        }
        *out++ = '=';
    }
    *out = '\0';
}

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    size_t bytes = size * n;
    (void)user;
    if (buf_len + bytes >= sizeof buf)
        return 0;
    memcpy(buf + buf_len, p, bytes);
    buf_len += bytes;
    return bytes;
}

static void backend_init(void)
{
    static char url[512], cred[256], enc[360], auth[512];
    snprintf(url, sizeof url, "%s/api/v1/thing-datas/shadow/reported", env("FLEETS_ENDPOINT"));
    snprintf(cred, sizeof cred, "%s:%s", env("FLEETS_API_KEY"), env("FLEETS_API_SECRET"));
    b64((const unsigned char *)cred, strlen(cred), enc);
    snprintf(auth, sizeof auth, "Authorization: Basic %s", enc);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "wake: curl_global_init failed\n");
        exit(1);
    }
    easy = curl_easy_init();
    headers = curl_slist_append(NULL, auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, BODY);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)(sizeof BODY - 1));
    curl_easy_setopt(easy, CURLOPT_CAINFO, env("FLEETS_CA_FILE"));
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 30L);
}

static int report_once(void)
{
    long code = 0;
    CURLcode rc;
    buf_len = 0;
    rc = curl_easy_perform(easy);
    if (rc == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code != 200) {
        fprintf(stderr, "wake: curl: %s, HTTP %ld\n", curl_easy_strerror(rc), code);
        return -1;
    }
    return 0;
}

static void backend_free(void)
{
    curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
    curl_global_cleanup();
}
#else
#error "define BACKEND_FLEETS or BACKEND_CURL"
#endif

int main(int argc, char **argv)
{
    int reports = argc > 1 ? atoi(argv[1]) : 1;
    long pause_ms = argc > 2 ? atol(argv[2]) : 0;
    double ms[MAX_REPORTS];
    struct rusage ru;
    int i;
    if (reports < 1 || reports > MAX_REPORTS || pause_ms < 0) {
        fprintf(stderr, "usage: wake REPORTS PAUSE_MS\n");
        return 2;
    }
    backend_init();
    for (i = 0; i < reports; i++) {
        double t0;
        if (i > 0 && pause_ms > 0) {
            struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        t0 = now_ms();
        if (report_once() != 0)
            return 1;
        ms[i] = now_ms() - t0;
    }
    backend_free();
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"ms\":[");
    for (i = 0; i < reports; i++)
        printf("%s%.3f", i ? "," : "", ms[i]);
    printf("],\"cpu_s\":%.6f,\"connections\":%lld,\"bytes_sent\":%lld,\"bytes_received\":%lld}\n",
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec / 1e6,
           stat_connections, stat_sent, stat_received);
    return 0;
}
