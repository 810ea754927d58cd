/*
 * loop.c: one shadow report loop, compiled twice so that both sides run the same harness:
 *   -DBACKEND_FLEETS  fleets_shadow_report() on one fleets_client_t shared by all threads
 *   -DBACKEND_CURL    libcurl, one reused easy handle per thread (CAINFO = the emulator's CA,
 *                     precomputed "Authorization: Basic ..." and JSON Content-Type headers)
 * Both send the same bytes as body:
 *   {"thingName":"bench-001","state":{"reported":{...}},"clientToken":"tok-001"}
 * (libfleets builds it from the reported object and the client token; curl gets it ready-made)
 * and both read the whole response into a 4 KiB buffer and check for HTTP 200.
 *
 *   loop N THREADS [SECONDS]
 *     SECONDS > 0: every thread loops until SECONDS have passed (N ignored);
 *     otherwise:   exactly N reports in total, split over THREADS.
 * Configuration: FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET, FLEETS_CA_FILE.
 * Prints one JSON line: {"requests":R,"seconds":S,"cpu_s":C,"loop_cpu_s":L,"vmhwm_kb":K} (C = user+sys
 * of the whole process, start-up included; L = user+sys from the start of the loop to its end, the
 * first connection's handshake included; "loop_user_s": the user part of L). Exit 1 on any failed
 * report.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THING "bench-001"
#define TOKEN "tok-001"
#define REPORTED "{\"temperature\":21.5,\"humidity\":58,\"firmware\":\"2.0.0\",\"uptime\":123456}"
#define BODY "{\"thingName\":\"" THING "\",\"state\":{\"reported\":" REPORTED "},\"clientToken\":\"" TOKEN "\"}"
#define MAX_THREADS 64

static atomic_int stop_flag;
static atomic_long total_requests;
static int failed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static __attribute__((unused)) const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "loop: set %s\n", name);
        exit(2);
    }
    return v;
}

#if defined(BACKEND_FLEETS)
#include <fleets.h>

static fleets_client_t *client;

static void backend_init(void)
{
    fleets_config_t *cfg = NULL;
    fleets_result r = fleets_config_from_env(&cfg);
    if (r == FLEETS_OK)
        r = fleets_client_new(cfg, &client);
    fleets_config_free(cfg);
    if (r != FLEETS_OK) {
        char msg[256];
        fleets_last_error_message(msg, sizeof msg);
        fprintf(stderr, "loop: %s: %s\n", fleets_result_name(r), msg);
        exit(1);
    }
}

typedef struct { int unused; } handle_t;
static void handle_init(handle_t *h) { (void)h; }
static void handle_free(handle_t *h) { (void)h; }

static int report_once(handle_t *h)
{
    char out[4096];
    size_t len = 0;
    (void)h;
    fleets_result r = fleets_shadow_report(client, THING, REPORTED, TOKEN, 0, out, sizeof out, &len);
    if (r != FLEETS_OK) {
        char msg[256];
        fleets_last_error_message(msg, sizeof msg);
        fprintf(stderr, "loop: fleets_shadow_report: %s: %s\n", fleets_result_name(r), msg);
        return -1;
    }
    return 0;
}

static void backend_free(void) { fleets_client_free(client); }

#elif defined(BACKEND_CURL)
#include <curl/curl.h>

static char url[512];
static char auth_header[512];

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

static void backend_init(void)
{
    char cred[256], enc[360];
    snprintf(url, sizeof url, "%s/api/v1/thing-datas/shadow/reported", env("FLEETS_ENDPOINT"));
    snprintf(cred, sizeof cred, "%s:%s", env("FLEETS_API_KEY"), env("FLEETS_API_SECRET"));
    b64((const unsigned char *)cred, strlen(cred), enc);
    snprintf(auth_header, sizeof auth_header, "Authorization: Basic %s", enc);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "loop: curl_global_init failed\n");
        exit(1);
    }
}

typedef struct {
    CURL *easy;
    struct curl_slist *headers;
    char buf[4096];
    size_t len;
} handle_t;

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    handle_t *h = user;
    size_t bytes = size * n;
    if (h->len + bytes >= sizeof h->buf)
        return 0; /* larger than the buffer: fail like libfleets' BUFFER_TOO_SMALL */
    memcpy(h->buf + h->len, p, bytes);
    h->len += bytes;
    return bytes;
}

static void handle_init(handle_t *h)
{
    h->easy = curl_easy_init();
    h->headers = curl_slist_append(NULL, auth_header);
    h->headers = curl_slist_append(h->headers, "Content-Type: application/json");
    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, BODY);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE, (long)(sizeof BODY - 1));
    curl_easy_setopt(h->easy, CURLOPT_CAINFO, env("FLEETS_CA_FILE"));
    curl_easy_setopt(h->easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h->easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT, 30L);
}

static void handle_free(handle_t *h)
{
    curl_easy_cleanup(h->easy);
    curl_slist_free_all(h->headers);
}

static int report_once(handle_t *h)
{
    long code = 0;
    CURLcode rc;
    h->len = 0;
    rc = curl_easy_perform(h->easy);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code != 200) {
        fprintf(stderr, "loop: curl: %s, HTTP %ld\n", curl_easy_strerror(rc), code);
        return -1;
    }
    h->buf[h->len] = '\0';
    return 0;
}

static void backend_free(void) { curl_global_cleanup(); }
#else
#error "define BACKEND_FLEETS or BACKEND_CURL"
#endif

struct worker {
    pthread_t tid;
    long n; /* reports to do; < 0: until stop_flag */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    handle_t h;
    long done = 0;
    handle_init(&h);
    while (w->n < 0 ? !atomic_load_explicit(&stop_flag, memory_order_relaxed) : done < w->n) {
        if (report_once(&h) != 0) {
            failed = 1;
            atomic_store(&stop_flag, 1);
            break;
        }
        done++;
    }
    handle_free(&h);
    atomic_fetch_add(&total_requests, done);
    return NULL;
}

static double user_now_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
}

static double cpu_now_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static long vmhwm_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    double seconds = argc > 3 ? atof(argv[3]) : 0;
    struct worker w[MAX_THREADS];
    double t0, dt, cpu0, user0, loop_cpu, loop_user;
    int i;
    if (threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "usage: loop N THREADS [SECONDS]\n");
        return 2;
    }
    backend_init();
    user0 = user_now_s();
    cpu0 = cpu_now_s();
    t0 = now_s();
    for (i = 0; i < threads; i++) {
        w[i].n = seconds > 0 ? -1 : n / threads + (i < n % threads);
        if (threads == 1) {
            if (seconds > 0) {
                /* single thread, timed: check the clock every 8 reports */
                handle_t h;
                long done = 0;
                handle_init(&h);
                while (now_s() - t0 < seconds || done % 8 != 0) {
                    if (report_once(&h) != 0) {
                        failed = 1;
                        break;
                    }
                    done++;
                }
                handle_free(&h);
                total_requests = done;
            } else {
                work(&w[0]);
            }
            break;
        }
        pthread_create(&w[i].tid, NULL, work, &w[i]);
    }
    if (threads > 1) {
        if (seconds > 0) {
            while (!atomic_load(&stop_flag) && now_s() - t0 < seconds)
                usleep(2000);
            atomic_store(&stop_flag, 1);
        }
        for (i = 0; i < threads; i++)
            pthread_join(w[i].tid, NULL);
    }
    dt = now_s() - t0;
    loop_cpu = cpu_now_s() - cpu0;
    loop_user = user_now_s() - user0;
    backend_free();
    printf("{\"requests\":%ld,\"seconds\":%.6f,\"cpu_s\":%.6f,\"loop_cpu_s\":%.6f,\"loop_user_s\":%.6f,"
           "\"vmhwm_kb\":%ld}\n",
           (long)total_requests, dt, cpu_now_s(), loop_cpu, loop_user, vmhwm_kb());
    return failed ? 1 : 0;
}
