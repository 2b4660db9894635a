/*
 * positive-amounts, in C: keeps the rows whose `column` (default `amount`,
 * a float64) is above zero, adds `{column}_cents` as int64 (rounded half
 * away from zero; null when the amount is null or out of range), and counts
 * the rows it saw, logging the count at the end. The count is the state a
 * new version takes over on hot reload (decimal text, as the other
 * languages' versions write it).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir.h"

static const char *column = "amount";
static char cents_name[256];
static uint64_t rows_seen;

const char *weir_init(const weir_config *config) {
    static const char *const known[] = {"column", NULL};
    const char *error = weir_config_only(config, known);
    if (error != NULL) return error;
    column = weir_config_string(config, "column", "amount", &error);
    if (error != NULL) return error;
    snprintf(cents_name, sizeof cents_name, "%s_cents", column);
    return NULL;
}

/* The output schema before any data: the input's columns plus the cents
 * column, so `weir check` checks the nodes downstream. */
const char *weir_describe(const weir_schema *input, const weir_config *config,
                          weir_output_schema *output) {
    const char *error = NULL;
    const char *name = weir_config_string(config, "column", "amount", &error);
    if (error != NULL) return error;
    char cents[256];
    snprintf(cents, sizeof cents, "%s_cents", name);
    weir_column added = {.name = cents, .type = WEIR_INT64, .nullable = true};
    return weir_describe_add(output, &added);
}

const char *weir_process(weir_batch *input, weir_output *output) {
    weir_column amounts;
    const char *error = weir_column_get(input, column, WEIR_FLOAT64, &amounts);
    if (error != NULL) return error;
    rows_seen += amounts.len;

    uint8_t *keep = weir_keep_mask(output);
    uint8_t *valid;
    int64_t *cents = weir_add_int64(output, cents_name, &valid);
    if (keep == NULL || cents == NULL) return "out of memory";
    for (uint32_t row = 0; row < amounts.len; row++) {
        if (!weir_valid(&amounts, row)) continue;
        double amount = amounts.f64[row];
        if (amount > 0) weir_bit_set(keep, row);
        /* round() is half away from zero; 2^63 and beyond don't fit. */
        double rounded = round(amount * 100.0);
        if (fabs(rounded) < 9223372036854775808.0) {
            cents[row] = (int64_t)rounded;
            weir_bit_set(valid, row);
        }
    }
    return NULL;
}

const char *weir_finish(void) {
    weir_info("saw %llu rows", (unsigned long long)rows_seen);
    return NULL;
}

const char *weir_snapshot(uint8_t **state, size_t *len) {
    char text[24];
    *len = (size_t)snprintf(text, sizeof text, "%llu", (unsigned long long)rows_seen);
    *state = malloc(*len);
    if (*state == NULL) return "out of memory";
    memcpy(*state, text, *len);
    return NULL;
}

const char *weir_restore(const uint8_t *state, size_t len) {
    char text[24];
    if (len == 0 || len >= sizeof text) return "state: expected a row count";
    memcpy(text, state, len);
    text[len] = '\0';
    char *end;
    rows_seen = strtoull(text, &end, 10);
    return *end == '\0' ? NULL : "state: expected a row count";
}
