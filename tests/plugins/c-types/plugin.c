/*
 * Test plugin for the C helper on weir:plugin@0.2.0 (the twin of
 * tests/plugins/python-types).
 *
 * config `mode`:
 * - "copy": reads every column and writes a rebuilt copy under the same
 *   name: strings through weir_bytes, lists through weir_items, decimals
 *   through weir_decimal128, dictionaries through weir_key, into arrays of
 *   its own (an unchanged output proves both directions exact);
 * - "show": adds `<column>_c`, each value as JSON (decimals as exact text,
 *   dictionaries decoded), checked against pyarrow's `to_pylist`;
 * - "cents": adds `cents` = `amount` (a decimal) x 100 as int64, and
 *   `weir_describe` says so before any data flows;
 * - "decoded": reads `v` as WEIR_UTF8 (a dictionary is decoded on request)
 *   and adds `v_decoded` as large_utf8.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir.h"

static const char *mode = "copy";

const char *weir_init(const weir_config *config) {
    static const char *const known[] = {"mode", NULL};
    const char *error = weir_config_only(config, known);
    if (error == NULL) mode = weir_config_string(config, "mode", "copy", &error);
    return error;
}

const char *weir_describe(const weir_schema *input, const weir_config *config,
                          weir_output_schema *output) {
    const char *error = NULL;
    const char *m = weir_config_string(config, "mode", "copy", &error);
    if (error != NULL) return error;
    if (strcmp(m, "cents") == 0) {
        if (weir_schema_find(input, "amount") == NULL) return "no column named `amount`";
        weir_column cents = {.name = "cents", .type = WEIR_INT64, .nullable = true};
        return weir_describe_add(output, &cents);
    }
    if (strcmp(m, "show") == 0) {
        for (uint32_t i = 0; i < weir_schema_len(input); i++) {
            char name[256];
            snprintf(name, sizeof name, "%s_c", weir_schema_column(input, i)->name);
            weir_column shown = {.name = name, .type = WEIR_UTF8, .nullable = true};
            error = weir_describe_add(output, &shown);
            if (error != NULL) return error;
        }
    }
    if (strcmp(m, "decoded") == 0) {
        weir_column decoded = {.name = "v_decoded", .type = WEIR_LARGE_UTF8, .nullable = true};
        return weir_describe_add(output, &decoded);
    }
    return NULL; /* copy: the input schema, unchanged */
}

/* ---- copy: a rebuilt column, in arrays the plugin owns --------------------------------- */

/* Everything one `weir_process` allocates, freed when it returns (the
 * helper copies what weir_add_column is given). */
static void **owned;
static size_t owned_len;

static void *own(size_t size) {
    void **grown = realloc(owned, (owned_len + 1) * sizeof *grown);
    void *block = calloc(size + 1, 1);
    if (grown == NULL || block == NULL) abort();
    owned = grown;
    return owned[owned_len++] = block;
}

static void free_owned(void) {
    for (size_t i = 0; i < owned_len; i++) free(owned[i]);
    free(owned);
    owned = NULL;
    owned_len = 0;
}

static void *copy_of(const void *from, size_t size) {
    void *to = own(size);
    if (from != NULL && size > 0) memcpy(to, from, size);
    return to;
}

static uint64_t bitmap_bytes(uint64_t n) { return (n + 7) / 8; }

static void rebuild(const weir_column *in, weir_column *out);

/* A variable-width column rebuilt value by value through weir_bytes. */
static void rebuild_bytes(const weir_column *in, weir_column *out) {
    bool large = in->type == WEIR_LARGE_UTF8 || in->type == WEIR_LARGE_BINARY;
    size_t total = 0, len;
    for (uint32_t row = 0; row < in->len; row++) {
        weir_bytes(in, row, &len);
        total += len;
    }
    uint8_t *data = own(total);
    int32_t *offsets = large ? NULL : own(((size_t)in->len + 1) * 4);
    int64_t *large_offsets = large ? own(((size_t)in->len + 1) * 8) : NULL;
    size_t at = 0;
    for (uint32_t row = 0;; row++) {
        if (large) large_offsets[row] = (int64_t)at;
        else offsets[row] = (int32_t)at;
        if (row == in->len) break;
        const uint8_t *bytes = weir_bytes(in, row, &len);
        memcpy(data + at, bytes, len);
        at += len;
    }
    out->data = data;
    out->offsets = offsets;
    out->large_offsets = large_offsets;
}

/* A list column rebuilt through weir_items: its offsets anew, its items
 * copied. */
static void rebuild_list(const weir_column *in, weir_column *out) {
    bool large = in->type == WEIR_LARGE_LIST;
    int32_t *offsets = large ? NULL : own(((size_t)in->len + 1) * 4);
    int64_t *large_offsets = large ? own(((size_t)in->len + 1) * 8) : NULL;
    uint64_t start = 0, end = 0;
    for (uint32_t row = 0; row <= in->len; row++) {
        if (row < in->len) weir_items(in, row, &start, &end);
        else start = end; /* the last list's end */
        if (large) large_offsets[row] = (int64_t)start;
        else offsets[row] = (int32_t)start;
    }
    out->offsets = offsets;
    out->large_offsets = large_offsets;
    weir_column *item = own(sizeof *item);
    rebuild(&in->children[0], item);
    out->children = item;
}

static void rebuild(const weir_column *in, weir_column *out) {
    *out = *in; /* type, parameters, name; the arrays are replaced below */
    if (in->validity != NULL) out->validity = copy_of(in->validity, bitmap_bytes(in->len));
    switch (in->type) {
    case WEIR_UTF8: case WEIR_BINARY: case WEIR_LARGE_UTF8: case WEIR_LARGE_BINARY:
        rebuild_bytes(in, out);
        return;
    case WEIR_LIST: case WEIR_LARGE_LIST:
        rebuild_list(in, out);
        return;
    case WEIR_BOOLEAN:
        out->boolean = copy_of(in->boolean, in->len);
        return;
    case WEIR_DECIMAL:
        if (in->bits == 128) {
            __int128 *values = own((size_t)in->len * 16);
            for (uint32_t row = 0; row < in->len; row++) values[row] = weir_decimal128(in, row);
            out->values = values;
            return;
        }
        out->values = copy_of(in->values, (size_t)in->len * in->bits / 8);
        return;
    case WEIR_DICTIONARY: {
        uint64_t *keys = own((size_t)in->len * 8);
        for (uint32_t row = 0; row < in->len; row++) keys[row] = weir_key(in, row);
        /* Written back at the width they came in (little-endian). */
        size_t width = in->index == WEIR_INT8 || in->index == WEIR_UINT8     ? 1
                       : in->index == WEIR_INT16 || in->index == WEIR_UINT16 ? 2
                       : in->index == WEIR_INT32 || in->index == WEIR_UINT32 ? 4
                                                                              : 8;
        uint8_t *bytes = own((size_t)in->len * width);
        for (uint32_t row = 0; row < in->len; row++) memcpy(bytes + (size_t)row * width, &keys[row], width);
        out->i8 = NULL, out->i16 = NULL, out->i32 = NULL, out->i64 = NULL;
        out->u8 = NULL, out->u16 = NULL, out->u32 = NULL, out->u64 = NULL;
        out->values = bytes;
        weir_column *values = own(sizeof *values);
        rebuild(in->dictionary, values);
        out->dictionary = values;
        return;
    }
    case WEIR_STRUCT: case WEIR_MAP: case WEIR_FIXED_SIZE_LIST: case WEIR_RUN_END_ENCODED:
    case WEIR_UNION: case WEIR_LIST_VIEW: case WEIR_LARGE_LIST_VIEW: {
        weir_column *children = own((size_t)in->n_children * sizeof *children);
        for (uint32_t i = 0; i < in->n_children; i++) rebuild(&in->children[i], &children[i]);
        out->children = children;
        return;
    }
    default: /* fixed-width values (and views: their buffers as they are) */
        return;
    }
}

/* ---- show: values as JSON ------------------------------------------------------------------ */

typedef struct text {
    char *ptr;
    size_t len, cap;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->ptr = realloc(t->ptr, t->cap);
        if (t->ptr == NULL) abort();
    }
    memcpy(t->ptr + t->len, s, n);
    t->len += n;
    t->ptr[t->len] = '\0';
}

static void putf(text *t, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void putf(text *t, const char *format, ...) {
    char buffer[320];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(buffer, sizeof buffer, format, args);
    va_end(args);
    put(t, buffer, (size_t)n);
}

static void put_string(text *t, const uint8_t *s, size_t n) {
    put(t, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') putf(t, "\\%c", s[i]);
        else if (s[i] < 0x20) putf(t, "\\u%04x", s[i]);
        else put(t, (const char *)&s[i], 1);
    }
    put(t, "\"", 1);
}

static void show(const weir_column *c, uint32_t row, text *t) {
    if (!weir_valid(c, row)) {
        put(t, "null", 4);
        return;
    }
    uint64_t start, end;
    size_t n;
    switch (c->type) {
    case WEIR_BOOLEAN: put(t, c->boolean[row] ? "true" : "false", c->boolean[row] ? 4 : 5); return;
    case WEIR_INT8: putf(t, "%d", c->i8[row]); return;
    case WEIR_INT16: putf(t, "%d", c->i16[row]); return;
    case WEIR_INT32: putf(t, "%" PRId32, c->i32[row]); return;
    case WEIR_INT64: putf(t, "%" PRId64, c->i64[row]); return;
    case WEIR_UINT8: putf(t, "%u", c->u8[row]); return;
    case WEIR_UINT16: putf(t, "%u", c->u16[row]); return;
    case WEIR_UINT32: putf(t, "%" PRIu32, c->u32[row]); return;
    case WEIR_UINT64: putf(t, "%" PRIu64, c->u64[row]); return;
    case WEIR_FLOAT64: putf(t, "%.17g", c->f64[row]); return;
    case WEIR_UTF8: case WEIR_LARGE_UTF8: case WEIR_UTF8_VIEW: {
        const uint8_t *bytes = weir_bytes(c, row, &n);
        put_string(t, bytes, n);
        return;
    }
    case WEIR_DECIMAL: {
        char digits[300];
        n = weir_decimal_text(c, row, digits, sizeof digits);
        put_string(t, (const uint8_t *)digits, n);
        return;
    }
    case WEIR_LIST: case WEIR_LARGE_LIST: case WEIR_FIXED_SIZE_LIST: case WEIR_LIST_VIEW:
    case WEIR_LARGE_LIST_VIEW: case WEIR_MAP:
        weir_items(c, row, &start, &end);
        put(t, "[", 1);
        for (uint64_t i = start; i < end; i++) {
            if (i > start) put(t, ", ", 2);
            show(&c->children[0], (uint32_t)i, t);
        }
        put(t, "]", 1);
        return;
    case WEIR_STRUCT:
        /* A map's entries show as [key, value] pairs, as pyarrow gives them. */
        put(t, c->name != NULL && strcmp(c->name, "entries") == 0 ? "[" : "{", 1);
        for (uint32_t i = 0; i < c->n_children; i++) {
            if (i > 0) put(t, ", ", 2);
            if (strcmp(c->name, "entries") != 0) {
                put_string(t, (const uint8_t *)c->children[i].name, strlen(c->children[i].name));
                put(t, ": ", 2);
            }
            show(&c->children[i], row, t);
        }
        put(t, c->name != NULL && strcmp(c->name, "entries") == 0 ? "]" : "}", 1);
        return;
    case WEIR_DICTIONARY: show(c->dictionary, (uint32_t)weir_key(c, row), t); return;
    default: put(t, "\"?\"", 3); return;
    }
}

/* ---- process ---------------------------------------------------------------------------------- */

static const char *each_column(weir_batch *input, weir_output *output,
                               const char *(*each)(weir_batch *, weir_output *, const char *)) {
    uint32_t n = weir_column_count(input);
    for (uint32_t i = 0; i < n; i++) {
        const char *error = each(input, output, weir_column_name(input, i));
        if (error != NULL) return error;
    }
    return NULL;
}

static const char *copy_one(weir_batch *input, weir_output *output, const char *name) {
    weir_column in, out;
    const char *error = weir_column_get(input, name, WEIR_ANY, &in);
    if (error != NULL) return error;
    rebuild(&in, &out);
    error = weir_add_column(output, &out);
    free_owned();
    return error;
}

static const char *show_one(weir_batch *input, weir_output *output, const char *name) {
    weir_column in;
    const char *error = weir_column_get(input, name, WEIR_ANY, &in);
    if (error != NULL) return error;
    const char **values = calloc(in.len + 1, sizeof *values);
    text *texts = calloc(in.len + 1, sizeof *texts);
    if (values == NULL || texts == NULL) return "out of memory";
    for (uint32_t row = 0; row < in.len; row++) {
        show(&in, row, &texts[row]);
        values[row] = texts[row].ptr;
    }
    char shown[256];
    snprintf(shown, sizeof shown, "%s_c", name);
    error = weir_add_utf8(output, shown, values);
    for (uint32_t row = 0; row < in.len; row++) free(texts[row].ptr);
    free(texts);
    free(values);
    return error;
}

static const char *cents(weir_batch *input, weir_output *output) {
    weir_column amount;
    const char *error = weir_column_get(input, "amount", WEIR_DECIMAL, &amount);
    if (error != NULL) return error;
    if (amount.scale > 2 || amount.bits > 128) return "amount: at most 2 places and 128 bits";
    uint8_t *valid;
    int64_t *cents = weir_add_int64(output, "cents", &valid);
    if (cents == NULL) return "out of memory";
    for (uint32_t row = 0; row < amount.len; row++) {
        if (!weir_valid(&amount, row)) continue;
        __int128 v = weir_decimal128(&amount, row);
        for (int s = amount.scale; s < 2; s++) v *= 10;
        cents[row] = (int64_t)v;
        weir_bit_set(valid, row);
    }
    return NULL;
}

static const char *decoded(weir_batch *input, weir_output *output) {
    weir_column v;
    const char *error = weir_column_get(input, "v", WEIR_UTF8, &v);
    if (error != NULL) return error;
    char **values = calloc(v.len + 1, sizeof *values);
    if (values == NULL) return "out of memory";
    for (uint32_t row = 0; row < v.len; row++) {
        if (!weir_valid(&v, row)) continue;
        size_t n;
        const uint8_t *bytes = weir_bytes(&v, row, &n);
        values[row] = calloc(n + 1, 1);
        if (values[row] != NULL) memcpy(values[row], bytes, n);
    }
    error = weir_add_large_utf8(output, "v_decoded", (const char *const *)values);
    for (uint32_t row = 0; row < v.len; row++) free(values[row]);
    free(values);
    return error;
}

const char *weir_process(weir_batch *input, weir_output *output) {
    if (strcmp(mode, "copy") == 0) return each_column(input, output, copy_one);
    if (strcmp(mode, "show") == 0) return each_column(input, output, show_one);
    if (strcmp(mode, "cents") == 0) return cents(input, output);
    if (strcmp(mode, "decoded") == 0) return decoded(input, output);
    return weir_error("unknown mode `%s`", mode);
}
