/*
 * weir.h — write weir transform plugins in C.
 *
 * A plugin defines `weir_init` and `weir_process` (and, if it needs them,
 * `weir_finish`, `weir_snapshot`, `weir_restore`); this helper implements
 * the `weir:plugin/transform` exports over the wit-bindgen bindings that
 * `weir plugin build` generates from weir's WIT. Columns arrive as plain C
 * arrays; a plugin answers with a row mask and new columns. No Arrow
 * library is needed. See plugin-sdk/c/README.md for the guide.
 *
 * Ownership: everything weir hands a plugin (columns, the config) is valid
 * until the call returns; everything the helper allocates for an output
 * (masks, new columns) belongs to weir once `weir_process` returns.
 */
#ifndef WEIR_H
#define WEIR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types -------------------------------------------------------------- */

/* A column's logical type (the Arrow types weir exchanges with plugins). */
typedef enum weir_type {
    WEIR_BOOLEAN,
    WEIR_INT8,
    WEIR_INT16,
    WEIR_INT32,
    WEIR_INT64,
    WEIR_UINT8,
    WEIR_UINT16,
    WEIR_UINT32,
    WEIR_UINT64,
    WEIR_FLOAT32,
    WEIR_FLOAT64,
    WEIR_UTF8,
    WEIR_BINARY,
    WEIR_DATE32,    /* days since 1970-01-01, as int32 */
    WEIR_TIMESTAMP, /* ticks since 1970-01-01T00:00Z, as int64 */
} weir_type;

/* The name of a type, for messages ("float64"). */
const char *weir_type_name(weir_type type);

/* The input batch of one `weir_process` call. */
typedef struct weir_batch weir_batch;

/* The output of one `weir_process` call: the input's rows and columns,
 * minus the rows the mask drops, plus the columns the plugin adds. */
typedef struct weir_output weir_output;

/* The node's `config` table from the manifest. */
typedef struct weir_config weir_config;

/* One input column, as C arrays. Exactly one of the value pointers is set,
 * by type: `f64` for WEIR_FLOAT64, `i64` for WEIR_INT64 and
 * WEIR_TIMESTAMP, `i32` for WEIR_INT32 and WEIR_DATE32, `offsets` + `data`
 * for WEIR_UTF8 and WEIR_BINARY (value i is data[offsets[i]..offsets[i+1]]),
 * and so on. A value behind a null holds anything: test `weir_valid`. */
typedef struct weir_column {
    const char *name;
    weir_type type;
    uint32_t len;
    /* Arrow validity bitmap (bit i set: row i is valid); NULL: no nulls. */
    const uint8_t *validity;
    const bool *boolean;
    const int8_t *i8;
    const int16_t *i16;
    const int32_t *i32;
    const int64_t *i64;
    const uint8_t *u8;
    const uint16_t *u16;
    const uint32_t *u32;
    const uint64_t *u64;
    const float *f32;
    const double *f64;
    const int32_t *offsets;
    const uint8_t *data;
} weir_column;

/* Whether row `row` of `column` holds a value (is not null). */
static inline bool weir_valid(const weir_column *column, uint32_t row) {
    return column->validity == NULL || (column->validity[row >> 3] >> (row & 7)) & 1;
}

/* Sets bit `i` of an Arrow bitmap (a mask or a validity bitmap). */
static inline void weir_bit_set(uint8_t *bitmap, uint32_t i) {
    bitmap[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* ---- What a plugin implements -------------------------------------------- *
 * Every function returns NULL on success or an error message (a string
 * literal, or `weir_error(...)`). An error from `weir_init` rejects the
 * node; from `weir_process` it fails the batch under the node's policy. */

/* Called once, before any batch, with the node's config. Required. */
const char *weir_init(const weir_config *config);

/* Called for every input batch, in order. Required. */
const char *weir_process(weir_batch *input, weir_output *output);

/* Called once at end of input. Optional. */
const char *weir_finish(void);

/* State for a successor version (hot reload): set `*state` to malloc'ed
 * bytes (weir frees them) and `*len`, or leave `*state` NULL for none.
 * Optional; the default has no state. */
const char *weir_snapshot(uint8_t **state, size_t *len);

/* Takes over what a predecessor's `weir_snapshot` returned, after
 * `weir_init`. Optional; the default refuses, so a new version starts
 * fresh. */
const char *weir_restore(const uint8_t *state, size_t len);

/* ---- Config --------------------------------------------------------------- *
 * The config is a JSON object; these read its top-level keys. A key of the
 * wrong type is an error, reported through `error` (set to NULL when all is
 * well, never overwritten once set), so a plugin can read every key and
 * check once. */

/* The string at `key`, or `fallback` when the key is absent. */
const char *weir_config_string(const weir_config *config, const char *key,
                               const char *fallback, const char **error);
/* The number at `key`, or `fallback` when the key is absent. */
double weir_config_number(const weir_config *config, const char *key, double fallback,
                          const char **error);
/* The boolean at `key`, or `fallback` when the key is absent. */
bool weir_config_bool(const weir_config *config, const char *key, bool fallback,
                      const char **error);
/* An error naming the first key not in the NULL-terminated `known`. */
const char *weir_config_only(const weir_config *config, const char *const *known);
/* The config as JSON text, for plugins that parse it themselves. */
const char *weir_config_json(const weir_config *config);

/* ---- The input batch ------------------------------------------------------ */

/* Number of rows. */
uint32_t weir_num_rows(const weir_batch *input);

/* Fetches column `name` into `*column` (only the columns a plugin asks for
 * cross into it). Fails, with a message naming the column, when it is
 * missing or its type is not `type`. */
const char *weir_column_get(weir_batch *input, const char *name, weir_type type,
                            weir_column *column);

/* The event-time watermark of this batch (microseconds since the epoch);
 * false when the pipeline has none. */
bool weir_watermark(const weir_batch *input, int64_t *watermark);

/* ---- The output ----------------------------------------------------------- */

/* A zeroed bitmap of one bit per input row: rows whose bit the plugin sets
 * are kept, the others dropped. Without a call, every row is kept. */
uint8_t *weir_keep_mask(weir_output *output);

/* Adds (or, for an existing name, replaces) a column with one value per
 * input row, returning its values for the plugin to fill. When `validity`
 * is not NULL it receives a zeroed validity bitmap: set bit i
 * (`weir_bit_set`) for every row that has a value; the others are null.
 * Returns NULL when out of memory. */
int64_t *weir_add_int64(weir_output *output, const char *name, uint8_t **validity);
int32_t *weir_add_int32(weir_output *output, const char *name, uint8_t **validity);
double *weir_add_float64(weir_output *output, const char *name, uint8_t **validity);
bool *weir_add_boolean(weir_output *output, const char *name, uint8_t **validity);

/* Adds a utf8 column from one C string per input row (NULL is null); the
 * strings are copied. */
const char *weir_add_utf8(weir_output *output, const char *name, const char *const *values);

/* Drops column `name` from the output. */
const char *weir_drop(weir_output *output, const char *name);

/* ---- Logging and errors ----------------------------------------------------- */

typedef enum weir_level {
    WEIR_TRACE,
    WEIR_DEBUG,
    WEIR_INFO,
    WEIR_WARN,
    WEIR_ERROR,
} weir_level;

/* Logs a printf-style message through the host, under the node's name. */
void weir_log(weir_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));
#define weir_info(...) weir_log(WEIR_INFO, __VA_ARGS__)
#define weir_warn(...) weir_log(WEIR_WARN, __VA_ARGS__)
#define weir_debug(...) weir_log(WEIR_DEBUG, __VA_ARGS__)

/* A printf-style error message to return (kept until the next call). */
const char *weir_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif

#endif /* WEIR_H */
