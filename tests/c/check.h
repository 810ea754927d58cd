/* Tiny assertion helpers shared by the C test programs. */
#ifndef FLEETS_TEST_CHECK_H
#define FLEETS_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include "fleets.h"

static int check_failures = 0;

static void print_last_error(void) {
    char message[512];
    fleets_last_error_message(message, sizeof message);
    fprintf(stderr, "    last error: %s (HTTP %d)\n", message, (int)fleets_last_http_status());
}

/* Checks that `got` equals `want`, printing both names when not. */
#define EXPECT_CODE(got, want, what)                                                         \
    do {                                                                                     \
        fleets_result got_ = (got);                                                          \
        if (got_ != (want)) {                                                                \
            fprintf(stderr, "FAIL %s:%d %s: got %s, want %s\n", __FILE__, __LINE__, (what),   \
                    fleets_result_name(got_), fleets_result_name(want));                      \
            print_last_error();                                                              \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

#define EXPECT_TRUE(cond, what)                                                              \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "FAIL %s:%d %s\n", __FILE__, __LINE__, (what));                   \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

#endif
