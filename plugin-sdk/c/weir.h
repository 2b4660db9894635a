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

/* A column's logical type: every Arrow type (weir:plugin@0.2.0). */
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
    WEIR_TIMESTAMP, /* `unit`s since 1970-01-01T00:00Z, as int64; `timezone` */
    WEIR_NULL,      /* no values, only a length */
    WEIR_FLOAT16,   /* IEEE half floats, as uint16 (`u16`) */
    WEIR_LARGE_UTF8,   /* `large_offsets` + `data` */
    WEIR_LARGE_BINARY, /* `large_offsets` + `data` */
    WEIR_UTF8_VIEW,    /* `values` (16-byte views) + `data_buffers`: read with weir_bytes */
    WEIR_BINARY_VIEW,  /* likewise */
    WEIR_FIXED_SIZE_BINARY, /* `size` bytes per value in `data` */
    WEIR_DATE64,    /* milliseconds since the epoch, as int64 */
    WEIR_TIME32,    /* `unit`s since midnight, as int32 (s, ms) */
    WEIR_TIME64,    /* `unit`s since midnight, as int64 (us, ns) */
    WEIR_DURATION,  /* `unit`s, as int64 */
    WEIR_INTERVAL,  /* `interval`: int32 months; int32 days + int32 ms; or
                       int32 months + int32 days + int64 ns (`values`) */
    WEIR_DECIMAL,   /* unscaled `bits`-bit integers (`values`) with `precision`
                       and `scale`: weir_decimal128, weir_decimal_text */
    WEIR_LIST,      /* `offsets` into children[0] */
    WEIR_LARGE_LIST,        /* `large_offsets` into children[0] */
    WEIR_FIXED_SIZE_LIST,   /* `size` items per list in children[0] */
    WEIR_LIST_VIEW,         /* `offsets` + `sizes` into children[0] */
    WEIR_LARGE_LIST_VIEW,   /* `large_offsets` + `large_sizes` into children[0] */
    WEIR_STRUCT,    /* one child per field, each `len` long */
    WEIR_MAP,       /* `offsets` into children[0], a struct of key and value */
    WEIR_DICTIONARY, /* keys of type `index` (in i8 … u64) into `*dictionary` */
    WEIR_UNION,     /* `type_ids` (+ `offsets` when `dense`); `type_codes[i]`
                       tags children[i] */
    WEIR_RUN_END_ENCODED, /* children[0]: run ends; children[1]: values */
    WEIR_ANY,       /* weir_column_get: whatever type the column has */
} weir_type;

/* The resolution of times, timestamps and durations. */
typedef enum weir_unit { WEIR_SECOND, WEIR_MILLISECOND, WEIR_MICROSECOND, WEIR_NANOSECOND } weir_unit;

/* What an interval counts. */
typedef enum weir_interval_unit {
    WEIR_YEAR_MONTH,
    WEIR_DAY_TIME,
    WEIR_MONTH_DAY_NANO,
} weir_interval_unit;

/* The name of a type, for messages ("float64"). */
const char *weir_type_name(weir_type type);

/* The input batch of one `weir_process` call. */
typedef struct weir_batch weir_batch;

/* The output of one `weir_process` call: the input's rows and columns,
 * minus the rows the mask drops, plus the columns the plugin adds. */
typedef struct weir_output weir_output;

/* The node's `config` table from the manifest. */
typedef struct weir_config weir_config;

/* A column — or, nested, a list's items, a struct's field, a dictionary's
 * values — as C arrays, in Arrow's layout. The same struct describes a
 * type (in `weir_describe`, with no data) and a column a plugin writes
 * (`weir_add_column`).
 *
 * Which pointers are set depends on `type`: `f64` for WEIR_FLOAT64, `i64`
 * for WEIR_INT64, WEIR_TIMESTAMP, WEIR_DATE64, WEIR_TIME64 and
 * WEIR_DURATION, `i32` for WEIR_INT32, WEIR_DATE32 and WEIR_TIME32,
 * `offsets` + `data` for WEIR_UTF8 and WEIR_BINARY (value i is
 * data[offsets[i]..offsets[i+1]]), and so on (see `weir_type`). A value
 * behind a null holds anything: test `weir_valid`. */
typedef struct weir_column {
    const char *name;
    weir_type type;
    uint32_t len;
    /* Arrow validity bitmap (bit i set: row i is valid); NULL: no nulls. */
    const uint8_t *validity;
    const bool *boolean; /* one bool per value (unpacked from Arrow's bits) */
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

    /* Whether the field may hold nulls (what a schema declares). */
    bool nullable;
    /* Any fixed-width type's values as raw bytes (decimals, intervals,
     * float16, views); the typed pointer above aliases it where one fits. */
    const void *values;
    const int64_t *large_offsets;
    const int32_t *sizes;       /* WEIR_LIST_VIEW */
    const int64_t *large_sizes; /* WEIR_LARGE_LIST_VIEW */
    const uint8_t *const *data_buffers; /* views' data buffers */
    uint32_t n_data_buffers;
    /* WEIR_FIXED_SIZE_BINARY: bytes per value; WEIR_FIXED_SIZE_LIST:
     * items per list. */
    int32_t size;
    /* WEIR_DECIMAL: total digits, digits after the point, and the width of
     * the unscaled integers (32, 64, 128 or 256). */
    uint8_t precision;
    int8_t scale;
    uint16_t bits;
    weir_unit unit;
    weir_interval_unit interval;
    const char *timezone; /* WEIR_TIMESTAMP: "UTC", "Europe/Berlin"; NULL: naive */
    weir_type index;      /* WEIR_DICTIONARY: the keys' integer type */
    bool ordered;         /* WEIR_DICTIONARY */
    bool keys_sorted;     /* WEIR_MAP */
    bool dense;           /* WEIR_UNION */
    const int8_t *type_ids;   /* WEIR_UNION: one per row */
    const int8_t *type_codes; /* WEIR_UNION: children[i]'s type id */
    uint32_t n_children;
    const struct weir_column *children;
    const struct weir_column *dictionary; /* WEIR_DICTIONARY's values */
} weir_column;

/* Whether row `row` of `column` holds a value (is not null). */
static inline bool weir_valid(const weir_column *column, uint32_t row) {
    return column->validity == NULL || (column->validity[row >> 3] >> (row & 7)) & 1;
}

/* Sets bit `i` of an Arrow bitmap (a mask or a validity bitmap). */
static inline void weir_bit_set(uint8_t *bitmap, uint32_t i) {
    bitmap[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* The bytes of row `row` of a utf8, binary (large or view) or fixed-size
 * binary column, and their count in `*len`. */
const uint8_t *weir_bytes(const weir_column *column, uint32_t row, size_t *len);

/* The items of row `row` of a list-like column (lists of every kind,
 * maps) are rows `*start` up to `*end` of `children[0]`. */
void weir_items(const weir_column *column, uint32_t row, uint64_t *start, uint64_t *end);

/* Row `row` of a WEIR_DICTIONARY column: its key into `*dictionary`. */
uint64_t weir_key(const weir_column *column, uint32_t row);

/* Row `row` of a WEIR_DECIMAL column of 128 bits or fewer, unscaled: 12.34
 * as decimal(5, 2) is 1234. */
__int128 weir_decimal128(const weir_column *column, uint32_t row);

/* Row `row` of a WEIR_DECIMAL column (any width) as exact decimal text in
 * plain digits ("-12.34", "0.05", "1200" for 12 at scale -2), written to
 * `text` (at most `size` bytes, NUL included, like snprintf). Returns the
 * text's length; 300 bytes always suffice. */
size_t weir_decimal_text(const weir_column *column, uint32_t row, char *text, size_t size);

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

/* The input schema `weir_describe` sees: its columns as `weir_column`s
 * with no data (type, name, nullability, children). */
typedef struct weir_schema weir_schema;
uint32_t weir_schema_len(const weir_schema *schema);
const weir_column *weir_schema_column(const weir_schema *schema, uint32_t index);
/* The column named `name`, or NULL. */
const weir_column *weir_schema_find(const weir_schema *schema, const char *name);

/* The output schema `weir_describe` declares: the input's, changed like
 * `weir_process` changes a batch. */
typedef struct weir_output_schema weir_output_schema;
/* Adds (or, for an existing name, replaces) a column of `column`'s name,
 * type and nullability. */
const char *weir_describe_add(weir_output_schema *output, const weir_column *column);
/* Drops column `name`. */
const char *weir_describe_drop(weir_output_schema *output, const char *name);

/* Declares, before any data flows, the output schema for the input schema
 * `input` under `config` (given before `weir_init`), so `weir check` can
 * check the nodes after this one. Optional: without it the output is known
 * once data flows and `weir check` skips the checks downstream. An error
 * fails `weir check`. */
const char *weir_describe(const weir_schema *input, const weir_config *config,
                          weir_output_schema *output);

/* ---- Ports (optional) ------------------------------------------------------ *
 * A plugin with one input and one output needs none of this: its ports are
 * "in" and "out". A plugin that routes rows (a side output such as
 * "rejected") or reads several inputs (a stream and a table) names them. */

#define WEIR_MAX_PORTS 16

typedef struct weir_port_names {
    const char *inputs[WEIR_MAX_PORTS];
    uint32_t inputs_len;
    const char *outputs[WEIR_MAX_PORTS];
    uint32_t outputs_len;
} weir_port_names;

/* Declares the node's input and output ports under `config` (called before
 * `weir_init`): fill in the names (copied once this returns). The manifest
 * wires them (`inputs = { a = "…", b = "…" }`, downstream `"node.port"`).
 * Optional; the default declares "in" and "out". */
const char *weir_ports(const weir_config *config, weir_port_names *ports);

/* The input port `input` came in by: its name, and its index in `inputs`. */
const char *weir_input_port(const weir_batch *input, uint32_t *index);

/* Whether this (empty) batch marks the end of its input port: a plugin
 * with several input ports gets one per port, when all of that port's
 * producers have ended (a join learns its table is complete). */
bool weir_port_ended(const weir_batch *input);

/* The output of port `port`, over the same input rows as `output` (the one
 * `weir_process` gets is the first output port's). A port other than the
 * first starts with no row kept: set the rows it carries in its
 * `weir_keep_mask`. A port never asked for gets no batch this call. NULL
 * for a port not declared, or out of memory. */
weir_output *weir_output_to(weir_output *output, const char *port);

/* In `weir_describe`: the output port being described. With several
 * output ports, `weir_describe` is called once per port, each time over
 * the first input port's schema. */
const char *weir_describe_port(const weir_output_schema *output);

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

/* The number of columns, and the name of column `index` (NULL past the
 * last; valid until `weir_process` returns): for plugins that treat every
 * column. */
uint32_t weir_column_count(weir_batch *input);
const char *weir_column_name(weir_batch *input, uint32_t index);

/* Fetches column `name` into `*column` (only the columns a plugin asks for
 * cross into it). Fails, with a message naming the column, when it is
 * missing or its type is not `type` (WEIR_ANY takes every type). A
 * dictionary-encoded column asked for as its values' type (a Parquet
 * file's dictionary<int32, utf8> asked for as WEIR_UTF8) is decoded. */
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

/* Adds a decimal128 column of `precision` (1 to 38) and `scale`: fill in
 * the unscaled values (12.34 with scale 2 is 1234). A value with more
 * digits than `precision` fails the batch at the boundary, never rounded.
 * NULL when out of memory or when `precision` is outside 1 to 38 (wider
 * decimals: weir_add_column with `bits` 256). */
__int128 *weir_add_decimal(weir_output *output, const char *name, uint8_t precision, int8_t scale,
                           uint8_t **validity);

/* Adds a large_utf8 column from one C string per input row (NULL is null). */
const char *weir_add_large_utf8(weir_output *output, const char *name,
                                const char *const *values);

/* Adds (or replaces) a column of any type, given as the same struct
 * columns are read in: `column->name`, its type, `len` (one per input row)
 * and its arrays, nested ones in `children` and `dictionary`. Every array
 * is copied, so the plugin's own may be freed or reused once this returns. */
const char *weir_add_column(weir_output *output, const weir_column *column);

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
