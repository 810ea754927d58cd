/*
 * thermostat.c: a thermostat that talks to EMQX Fleets over HTTPS with libfleets.
 *
 *   1. report its state (temperature, humidity, target temperature) to the shadow;
 *   2. read the shadow back;
 *   3. apply the delta (a desired targetTemperature / mode it has not reported yet), read
 *      with the JSON helpers;
 *   4. report the new state, with the shadow version for optimistic locking;
 *   5. publish a "highTemperature" event when the temperature is at or above the threshold.
 *
 * Configuration comes from the environment (fleets_config_from_env):
 *   FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET and optionally FLEETS_CA_FILE.
 *
 * Usage: thermostat [--thing NAME] [--temperature C] [--humidity PCT] [--threshold C]
 *
 * Exit status: 0 on success, 1 on a failed call, 2 on bad usage.
 */
#include <fleets.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSE_CAP 4096

struct thermostat {
    const char *thing;
    double temperature;
    double humidity;
    double target;
    char mode[32];
    double threshold;
};

/* Prints why a libfleets call failed: result name, HTTP status, message, response body. */
static void report_failure(const char *what, fleets_result rc, const char *body)
{
    char msg[512];
    size_t len = fleets_last_error_message(msg, sizeof msg);
    int32_t status = fleets_last_http_status();

    fprintf(stderr, "thermostat: %s failed: %s (%u)", what, fleets_result_name(rc), (unsigned)rc);
    if (status != 0)
        fprintf(stderr, ", HTTP %d", (int)status);
    if (len > 0)
        fprintf(stderr, ": %s%s", msg, len >= sizeof msg ? "..." : "");
    fputc('\n', stderr);
    if (body != NULL && body[0] != '\0')
        fprintf(stderr, "thermostat:   response: %s\n", body);
}

static bool parse_double(const char *s, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Reports the whole state; version 0 lets the server auto-increment. */
static fleets_result report_state(fleets_client_t *client, const struct thermostat *t,
                                  const char *client_token, uint64_t version)
{
    char state[256];
    char out[RESPONSE_CAP];
    size_t out_len = 0;
    fleets_result rc;
    int n = snprintf(state, sizeof state,
                     "{\"temperature\":%.1f,\"humidity\":%.0f,\"targetTemperature\":%.1f,"
                     "\"mode\":\"%s\"}",
                     t->temperature, t->humidity, t->target, t->mode);
    if (n < 0 || (size_t)n >= sizeof state) {
        fprintf(stderr, "thermostat: state does not fit in %zu bytes\n", sizeof state);
        return FLEETS_ERR_INTERNAL;
    }
    rc = fleets_shadow_report(client, t->thing, state, client_token, version, out, sizeof out,
                              &out_len);
    if (rc != FLEETS_OK) {
        report_failure("shadow report", rc, out);
        return rc;
    }
    printf("  sent     %s\n  response %s\n", state, out);
    return FLEETS_OK;
}

/*
 * Reads the shadow into a malloc'ed string (*shadow, freed by the caller). Starts with a
 * small buffer on purpose: when the body does not fit, the call says how much it needs and
 * fleets_last_response() hands over the body without a second request.
 */
static fleets_result read_shadow(fleets_client_t *client, const char *thing, char **shadow)
{
    size_t cap = 128;
    size_t len = 0;
    char *buf = malloc(cap);
    fleets_result rc;

    if (buf == NULL)
        return FLEETS_ERR_INTERNAL;
    rc = fleets_shadow_get(client, thing, buf, cap, &len);
    if (rc == FLEETS_ERR_BUFFER_TOO_SMALL) {
        char *bigger = realloc(buf, len + 1);
        if (bigger == NULL) {
            free(buf);
            return FLEETS_ERR_INTERNAL;
        }
        buf = bigger;
        printf("  (%zu-byte shadow did not fit in %zu bytes: taken from fleets_last_response)\n",
               len, cap);
        cap = len + 1;
        rc = fleets_last_response(buf, cap, &len);
    }
    if (rc != FLEETS_OK) {
        report_failure("shadow get", rc, buf);
        free(buf);
        return rc;
    }
    *shadow = buf;
    return FLEETS_OK;
}

/* Applies the delta: returns true when something changed. */
static bool apply_delta(const char *shadow, struct thermostat *t)
{
    bool changed = false;
    double target = 0.0;
    char mode[sizeof t->mode];
    size_t mode_len = 0;
    fleets_result rc;

    rc = fleets_json_get_f64(shadow, "/delta/targetTemperature", &target);
    if (rc == FLEETS_OK) {
        printf("  delta: targetTemperature %.1f -> %.1f\n", t->target, target);
        t->target = target;
        changed = true;
    } else if (rc != FLEETS_ERR_JSON_NO_VALUE) {
        report_failure("reading /delta/targetTemperature", rc, NULL);
    }

    rc = fleets_json_get_string(shadow, "/delta/mode", mode, sizeof mode, &mode_len);
    if (rc == FLEETS_OK && mode_len == strlen(mode)) {
        printf("  delta: mode %s -> %s\n", t->mode, mode);
        memcpy(t->mode, mode, mode_len + 1);
        changed = true;
    } else if (rc != FLEETS_OK && rc != FLEETS_ERR_JSON_NO_VALUE) {
        report_failure("reading /delta/mode", rc, NULL);
    }

    if (!changed)
        printf("  delta: nothing to apply\n");
    return changed;
}

static fleets_result publish_high_temperature(fleets_client_t *client, const struct thermostat *t)
{
    char data[128];
    char out[RESPONSE_CAP];
    size_t out_len = 0;
    fleets_result rc;

    snprintf(data, sizeof data, "{\"currentTemp\":%.1f,\"threshold\":%.1f}", t->temperature,
             t->threshold);
    rc = fleets_event_publish(client, t->thing, "highTemperature", FLEETS_SEVERITY_WARN,
                              0 /* now */, data, NULL, out, sizeof out, &out_len);
    if (rc != FLEETS_OK) {
        report_failure("event publish", rc, out);
        return rc;
    }
    printf("  sent     highTemperature (warn) %s\n  response %s\n", data, out);
    return FLEETS_OK;
}

static int usage(void)
{
    fprintf(stderr, "usage: thermostat [--thing NAME] [--temperature C] [--humidity PCT] "
                    "[--threshold C]\n"
                    "environment: FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET, "
                    "[FLEETS_CA_FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct thermostat t = {"thermostat-001", 21.5, 58.0, 21.0, "heat", 40.0};
    fleets_config_t *config = NULL;
    fleets_client_t *client = NULL;
    char *shadow = NULL;
    int64_t version = 0;
    fleets_result rc;
    int exit_code = 1;
    int i;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok;
        if (val == NULL)
            return usage();
        if (strcmp(arg, "--thing") == 0) {
            t.thing = val;
            ok = true;
        } else if (strcmp(arg, "--temperature") == 0) {
            ok = parse_double(val, &t.temperature);
        } else if (strcmp(arg, "--humidity") == 0) {
            ok = parse_double(val, &t.humidity);
        } else if (strcmp(arg, "--threshold") == 0) {
            ok = parse_double(val, &t.threshold);
        } else {
            ok = false;
        }
        if (!ok)
            return usage();
        i++;
    }

    printf("thermostat: libfleets %s, thing %s\n", fleets_version(), t.thing);

    rc = fleets_config_from_env(&config);
    if (rc != FLEETS_OK) {
        report_failure("configuration from the environment", rc, NULL);
        goto done;
    }
    rc = fleets_config_set_timeouts(config, 5000, 15000);
    if (rc != FLEETS_OK) {
        report_failure("setting timeouts", rc, NULL);
        goto done;
    }
    rc = fleets_client_new(config, &client);
    /* The client keeps what it needs: the configuration can go now. */
    fleets_config_free(config);
    config = NULL;
    if (rc != FLEETS_OK) {
        report_failure("client creation", rc, NULL);
        goto done;
    }

    printf("[1/5] report state\n");
    if (report_state(client, &t, "thermostat-boot", 0) != FLEETS_OK)
        goto done;

    printf("[2/5] read shadow\n");
    if (read_shadow(client, t.thing, &shadow) != FLEETS_OK)
        goto done;
    printf("  shadow   %s\n", shadow);
    rc = fleets_json_get_i64(shadow, "/version", &version);
    if (rc != FLEETS_OK || version < 0) {
        report_failure("reading /version of the shadow", rc, NULL);
        goto done;
    }

    printf("[3/5] apply delta\n");
    if (apply_delta(shadow, &t)) {
        printf("[4/5] report applied state (expected shadow version %lld)\n", (long long)version);
        rc = report_state(client, &t, "thermostat-applied", (uint64_t)version);
        if (rc == FLEETS_ERR_CONFLICT) {
            /* Someone changed the shadow in between: report unconditionally instead. */
            printf("  version conflict: reporting again without a version\n");
            rc = report_state(client, &t, "thermostat-applied", 0);
        }
        if (rc != FLEETS_OK)
            goto done;
    } else {
        printf("[4/5] nothing changed, no second report\n");
    }

    if (t.temperature >= t.threshold) {
        printf("[5/5] %.1f C >= %.1f C: publish highTemperature\n", t.temperature, t.threshold);
        if (publish_high_temperature(client, &t) != FLEETS_OK)
            goto done;
    } else {
        printf("[5/5] %.1f C below %.1f C: no event\n", t.temperature, t.threshold);
    }

    printf("thermostat: done\n");
    exit_code = 0;

done:
    free(shadow);
    fleets_client_free(client);
    fleets_config_free(config);
    return exit_code;
}
