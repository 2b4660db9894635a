/*
 * weir.c — the C helper's implementation: the `weir:plugin/transform`
 * exports over the wit-bindgen bindings (`plugin.h`, generated from weir's
 * WIT by `weir plugin build`), calling the plugin's `weir_*` functions.
 */
#include "weir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

/* ---- Errors ----------------------------------------------------------------- */

static char error_buffer[1024];

const char *weir_error(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error_buffer, sizeof error_buffer, format, args);
    va_end(args);
    return error_buffer;
}

/* Hands `message` to the host as an export's error (the host frees it). */
static bool fail(plugin_string_t *err, const char *message) {
    plugin_string_dup(err, message);
    return false;
}

const char *weir_type_name(weir_type type) {
    static const char *const names[] = {
        "boolean", "int8",    "int16",   "int32",  "int64",  "uint8",  "uint16",    "uint32",
        "uint64",  "float32", "float64", "utf8",   "binary", "date32", "timestamp",
    };
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

/* ---- Logging ------------------------------------------------------------------ */

void weir_log(weir_level level, const char *format, ...) {
    char text[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    plugin_string_t message;
    plugin_string_set(&message, text);
    plugin_list_tuple2_string_string_t fields = {NULL, 0};
    weir_plugin_log_log((weir_plugin_log_level_t)level, &message, &fields);
}

/* ---- Config: a small JSON reader for the top-level keys -------------------------- */

typedef enum { JSON_STRING, JSON_NUMBER, JSON_BOOL, JSON_NULL, JSON_OTHER } json_kind;

typedef struct {
    char *key;
    json_kind kind;
    char *string; /* JSON_STRING, decoded */
    double number;
    bool boolean;
} config_entry;

struct weir_config {
    char *json;
    config_entry *entries;
    size_t len;
};

typedef struct {
    const char *p;
    const char *end;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static void put_utf8(char **out, unsigned cp) {
    char *o = *out;
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    *out = o;
}

static bool hex4(cursor *c, unsigned *value) {
    if (c->end - c->p < 4) return false;
    *value = 0;
    for (int i = 0; i < 4; i++) {
        char h = *c->p++;
        *value <<= 4;
        if (h >= '0' && h <= '9') *value |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f') *value |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') *value |= (unsigned)(h - 'A' + 10);
        else return false;
    }
    return true;
}

/* Parses a JSON string at c->p (on the opening quote) into a malloc'ed,
 * NUL-terminated UTF-8 string; NULL on malformed input. */
static char *parse_string(cursor *c) {
    if (c->p >= c->end || *c->p != '"') return NULL;
    c->p++;
    /* Decoded text is never longer than the escaped text. */
    char *out = malloc((size_t)(c->end - c->p) + 1), *o = out;
    if (out == NULL) return NULL;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch != '\\') {
            *o++ = ch;
            continue;
        }
        if (c->p >= c->end) break;
        char esc = *c->p++;
        unsigned cp;
        switch (esc) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (!hex4(c, &cp)) goto bad;
            if (cp >= 0xD800 && cp < 0xDC00 && c->end - c->p >= 6 && c->p[0] == '\\' &&
                c->p[1] == 'u') {
                unsigned low;
                c->p += 2;
                if (!hex4(c, &low) || low < 0xDC00 || low > 0xDFFF) goto bad;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            put_utf8(&o, cp);
            break;
        default: goto bad;
        }
    }
    if (c->p >= c->end) goto bad;
    c->p++; /* closing quote */
    *o = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* Skips any JSON value (nested arrays and objects included). */
static bool skip_value(cursor *c) {
    skip_space(c);
    if (c->p >= c->end) return false;
    if (*c->p == '"') {
        char *s = parse_string(c);
        free(s);
        return s != NULL;
    }
    if (*c->p == '[' || *c->p == '{') {
        int depth = 0;
        while (c->p < c->end) {
            if (*c->p == '"') {
                char *s = parse_string(c);
                if (s == NULL) return false;
                free(s);
                continue;
            }
            if (*c->p == '[' || *c->p == '{') depth++;
            if (*c->p == ']' || *c->p == '}') depth--;
            c->p++;
            if (depth == 0) return true;
        }
        return false;
    }
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']') c->p++;
    return true;
}

static void config_free(weir_config *config) {
    for (size_t i = 0; i < config->len; i++) {
        free(config->entries[i].key);
        free(config->entries[i].string);
    }
    free(config->entries);
    free(config->json);
    memset(config, 0, sizeof *config);
}

static const char *config_parse(weir_config *config, const uint8_t *text, size_t len) {
    config->json = malloc(len + 1);
    if (config->json == NULL) return "out of memory";
    memcpy(config->json, text, len);
    config->json[len] = '\0';
    cursor c = {config->json, config->json + len};
    skip_space(&c);
    if (c.p >= c.end || *c.p != '{') return "config: expected a JSON object";
    c.p++;
    for (;;) {
        skip_space(&c);
        if (c.p < c.end && *c.p == '}') return NULL;
        char *key = parse_string(&c);
        if (key == NULL) return "config: malformed JSON (expected a key)";
        skip_space(&c);
        if (c.p >= c.end || *c.p != ':') {
            free(key);
            return "config: malformed JSON (expected ':')";
        }
        c.p++;
        skip_space(&c);
        config_entry entry = {key, JSON_OTHER, NULL, 0, false};
        const char *start = c.p;
        if (c.p < c.end && *c.p == '"') {
            entry.kind = JSON_STRING;
            entry.string = parse_string(&c);
            if (entry.string == NULL) {
                free(key);
                return "config: malformed JSON string";
            }
        } else if (!skip_value(&c)) {
            free(key);
            return "config: malformed JSON value";
        } else if (c.p - start == 4 && memcmp(start, "true", 4) == 0) {
            entry.kind = JSON_BOOL;
            entry.boolean = true;
        } else if (c.p - start == 5 && memcmp(start, "false", 5) == 0) {
            entry.kind = JSON_BOOL;
        } else if (c.p - start == 4 && memcmp(start, "null", 4) == 0) {
            entry.kind = JSON_NULL;
        } else if (*start == '-' || (*start >= '0' && *start <= '9')) {
            entry.kind = JSON_NUMBER;
            entry.number = strtod(start, NULL);
        }
        config_entry *grown = realloc(config->entries, (config->len + 1) * sizeof *grown);
        if (grown == NULL) {
            free(key);
            free(entry.string);
            return "out of memory";
        }
        config->entries = grown;
        config->entries[config->len++] = entry;
        skip_space(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}') return NULL;
        return "config: malformed JSON (expected ',' or '}')";
    }
}

static const config_entry *config_find(const weir_config *config, const char *key) {
    for (size_t i = 0; i < config->len; i++)
        if (strcmp(config->entries[i].key, key) == 0) return &config->entries[i];
    return NULL;
}

static void set_error(const char **error, const char *key, const char *want) {
    if (error != NULL && *error == NULL)
        *error = weir_error("config key `%s`: expected %s", key, want);
}

const char *weir_config_string(const weir_config *config, const char *key, const char *fallback,
                               const char **error) {
    const config_entry *e = config_find(config, key);
    if (e == NULL) return fallback;
    if (e->kind != JSON_STRING) {
        set_error(error, key, "a string");
        return fallback;
    }
    return e->string;
}

double weir_config_number(const weir_config *config, const char *key, double fallback,
                          const char **error) {
    const config_entry *e = config_find(config, key);
    if (e == NULL) return fallback;
    if (e->kind != JSON_NUMBER) {
        set_error(error, key, "a number");
        return fallback;
    }
    return e->number;
}

bool weir_config_bool(const weir_config *config, const char *key, bool fallback,
                      const char **error) {
    const config_entry *e = config_find(config, key);
    if (e == NULL) return fallback;
    if (e->kind != JSON_BOOL) {
        set_error(error, key, "true or false");
        return fallback;
    }
    return e->boolean;
}

const char *weir_config_only(const weir_config *config, const char *const *known) {
    for (size_t i = 0; i < config->len; i++) {
        bool found = false;
        for (const char *const *k = known; *k != NULL && !found; k++)
            found = strcmp(*k, config->entries[i].key) == 0;
        if (!found) return weir_error("unknown config key `%s`", config->entries[i].key);
    }
    return NULL;
}

const char *weir_config_json(const weir_config *config) { return config->json; }

/* ---- The input batch ------------------------------------------------------------ */

struct weir_batch {
    weir_plugin_types_borrow_batch_t handle;
    uint32_t rows;
    bool have_schema;
    weir_plugin_types_schema_t schema;
    weir_plugin_types_column_t *fetched; /* freed after `weir_process` */
    size_t fetched_len;
};

uint32_t weir_num_rows(const weir_batch *input) { return input->rows; }

bool weir_watermark(const weir_batch *input, int64_t *watermark) {
    return weir_plugin_types_method_batch_watermark(input->handle, watermark);
}

const char *weir_column_get(weir_batch *input, const char *name, weir_type type,
                            weir_column *column) {
    if (!input->have_schema) {
        weir_plugin_types_method_batch_schema(input->handle, &input->schema);
        input->have_schema = true;
    }
    size_t len = strlen(name);
    size_t index = input->schema.len;
    for (size_t i = 0; i < input->schema.len; i++) {
        plugin_string_t *n = &input->schema.ptr[i].name;
        if (n->len == len && memcmp(n->ptr, name, len) == 0) {
            index = i;
            break;
        }
    }
    if (index == input->schema.len) return weir_error("no column named `%s`", name);
    weir_type actual = (weir_type)input->schema.ptr[index].data_type.tag;
    if (actual != type)
        return weir_error("column `%s` is %s, expected %s", name, weir_type_name(actual),
                          weir_type_name(type));
    weir_plugin_types_column_t *grown =
        realloc(input->fetched, (input->fetched_len + 1) * sizeof *grown);
    if (grown == NULL) return "out of memory";
    input->fetched = grown;
    weir_plugin_types_column_t *c = &input->fetched[input->fetched_len];
    plugin_string_t err;
    if (!weir_plugin_types_method_batch_column(input->handle, (uint32_t)index, c, &err)) {
        const char *message = weir_error("column `%s`: %.*s", name, (int)err.len, err.ptr);
        plugin_string_free(&err);
        return message;
    }
    input->fetched_len++;
    memset(column, 0, sizeof *column);
    column->name = name;
    column->type = type;
    column->len = input->rows;
    column->validity = c->validity.is_some ? c->validity.val.ptr : NULL;
    switch (c->values.tag) {
    case WEIR_PLUGIN_TYPES_VALUES_BOOL: column->boolean = c->values.val.bool_.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_S8: column->i8 = c->values.val.s8.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_S16: column->i16 = c->values.val.s16.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_S32: column->i32 = c->values.val.s32.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_S64: column->i64 = c->values.val.s64.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_U8: column->u8 = c->values.val.u8.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_U16: column->u16 = c->values.val.u16.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_U32: column->u32 = c->values.val.u32.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_U64: column->u64 = c->values.val.u64.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_F32: column->f32 = c->values.val.f32.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_F64: column->f64 = c->values.val.f64.ptr; break;
    case WEIR_PLUGIN_TYPES_VALUES_VAR:
        column->offsets = c->values.val.var.offsets.ptr;
        column->data = c->values.val.var.data.ptr;
        break;
    }
    return NULL;
}

static void batch_release(weir_batch *input) {
    for (size_t i = 0; i < input->fetched_len; i++) weir_plugin_types_column_free(&input->fetched[i]);
    free(input->fetched);
    if (input->have_schema) weir_plugin_types_schema_free(&input->schema);
}

/* ---- The output -------------------------------------------------------------------- */

struct weir_output {
    uint32_t rows;
    uint8_t *mask;
    weir_plugin_types_named_column_t *columns;
    size_t columns_len;
    plugin_string_t *drops;
    size_t drops_len;
};

static size_t bitmap_bytes(uint32_t rows) { return ((size_t)rows + 7) / 8; }

uint8_t *weir_keep_mask(weir_output *output) {
    if (output->mask == NULL) output->mask = calloc(bitmap_bytes(output->rows) + 1, 1);
    return output->mask;
}

/* Appends a column of `rows` values of `width` bytes; returns its values. */
static void *add_column(weir_output *output, const char *name, uint8_t type, uint8_t values_tag,
                        size_t width, uint8_t **validity) {
    weir_plugin_types_named_column_t *grown =
        realloc(output->columns, (output->columns_len + 1) * sizeof *grown);
    if (grown == NULL) return NULL;
    output->columns = grown;
    /* calloc(0) may return NULL: allocate at least one byte. */
    void *values = calloc((size_t)output->rows + 1, width);
    uint8_t *bitmap = validity != NULL ? calloc(bitmap_bytes(output->rows) + 1, 1) : NULL;
    if (values == NULL || (validity != NULL && bitmap == NULL)) {
        free(values);
        free(bitmap);
        return NULL;
    }
    weir_plugin_types_named_column_t *c = &output->columns[output->columns_len++];
    memset(c, 0, sizeof *c);
    plugin_string_dup(&c->name, name);
    c->column.data_type.tag = type;
    c->column.values.tag = values_tag;
    /* Every list variant has the same {ptr, len} layout. */
    c->column.values.val.s64.ptr = values;
    c->column.values.val.s64.len = output->rows;
    if (bitmap != NULL) {
        c->column.validity.is_some = true;
        c->column.validity.val.ptr = bitmap;
        c->column.validity.val.len = bitmap_bytes(output->rows);
        *validity = bitmap;
    }
    return values;
}

int64_t *weir_add_int64(weir_output *output, const char *name, uint8_t **validity) {
    return add_column(output, name, WEIR_PLUGIN_TYPES_DATA_TYPE_INT64,
                      WEIR_PLUGIN_TYPES_VALUES_S64, sizeof(int64_t), validity);
}

int32_t *weir_add_int32(weir_output *output, const char *name, uint8_t **validity) {
    return add_column(output, name, WEIR_PLUGIN_TYPES_DATA_TYPE_INT32,
                      WEIR_PLUGIN_TYPES_VALUES_S32, sizeof(int32_t), validity);
}

double *weir_add_float64(weir_output *output, const char *name, uint8_t **validity) {
    return add_column(output, name, WEIR_PLUGIN_TYPES_DATA_TYPE_FLOAT64,
                      WEIR_PLUGIN_TYPES_VALUES_F64, sizeof(double), validity);
}

bool *weir_add_boolean(weir_output *output, const char *name, uint8_t **validity) {
    return add_column(output, name, WEIR_PLUGIN_TYPES_DATA_TYPE_BOOLEAN,
                      WEIR_PLUGIN_TYPES_VALUES_BOOL, sizeof(bool), validity);
}

const char *weir_add_utf8(weir_output *output, const char *name, const char *const *values) {
    size_t total = 0;
    for (uint32_t i = 0; i < output->rows; i++)
        if (values[i] != NULL) total += strlen(values[i]);
    if (total > INT32_MAX) return "utf8 column too large (over 2 GiB)";
    uint8_t *validity;
    int32_t *offsets = add_column(output, name, WEIR_PLUGIN_TYPES_DATA_TYPE_UTF8,
                                  WEIR_PLUGIN_TYPES_VALUES_VAR, sizeof(int32_t), &validity);
    uint8_t *data = offsets != NULL ? malloc(total + 1) : NULL;
    if (data == NULL) return "out of memory";
    weir_plugin_types_var_data_t *var = &output->columns[output->columns_len - 1].column.values.val.var;
    var->offsets.ptr = offsets;
    var->offsets.len = (size_t)output->rows + 1;
    var->data.ptr = data;
    var->data.len = total;
    size_t at = 0;
    for (uint32_t i = 0; i < output->rows; i++) {
        offsets[i] = (int32_t)at;
        if (values[i] == NULL) continue;
        size_t n = strlen(values[i]);
        memcpy(data + at, values[i], n);
        at += n;
        weir_bit_set(validity, i);
    }
    offsets[output->rows] = (int32_t)at;
    return NULL;
}

const char *weir_drop(weir_output *output, const char *name) {
    plugin_string_t *grown = realloc(output->drops, (output->drops_len + 1) * sizeof *grown);
    if (grown == NULL) return "out of memory";
    output->drops = grown;
    plugin_string_dup(&output->drops[output->drops_len++], name);
    return NULL;
}

static void output_free(weir_output *output) {
    free(output->mask);
    for (size_t i = 0; i < output->columns_len; i++)
        weir_plugin_types_named_column_free(&output->columns[i]);
    free(output->columns);
    for (size_t i = 0; i < output->drops_len; i++) plugin_string_free(&output->drops[i]);
    free(output->drops);
}

/* ---- Defaults for the optional functions ------------------------------------------------ */

__attribute__((weak)) const char *weir_finish(void) { return NULL; }

__attribute__((weak)) const char *weir_snapshot(uint8_t **state, size_t *len) {
    *state = NULL;
    *len = 0;
    return NULL;
}

__attribute__((weak)) const char *weir_restore(const uint8_t *state, size_t len) {
    (void)state;
    (void)len;
    return "this transform does not restore state";
}

/* ---- The exports ------------------------------------------------------------------------------ */

static weir_config the_config;

bool exports_weir_plugin_transform_init(plugin_string_t *config, plugin_string_t *err) {
    config_free(&the_config);
    const char *error = config_parse(&the_config, config->ptr, config->len);
    plugin_string_free(config);
    if (error == NULL) error = weir_init(&the_config);
    return error == NULL || fail(err, error);
}

bool exports_weir_plugin_transform_describe(exports_weir_plugin_transform_schema_t *input,
                                            plugin_string_t *config,
                                            exports_weir_plugin_transform_option_schema_t *ret,
                                            plugin_string_t *err) {
    (void)err;
    /* Not known before data: weir skips the schema checks downstream. */
    weir_plugin_types_schema_free(input);
    plugin_string_free(config);
    ret->is_some = false;
    return true;
}

bool exports_weir_plugin_transform_process(exports_weir_plugin_transform_borrow_batch_t input,
                                           exports_weir_plugin_transform_list_output_t *ret,
                                           plugin_string_t *err) {
    weir_batch batch = {input, weir_plugin_types_method_batch_num_rows(input), false, {0}, NULL, 0};
    weir_output output = {batch.rows, NULL, NULL, 0, NULL, 0};
    const char *error = weir_process(&batch, &output);
    batch_release(&batch);
    weir_plugin_types_output_t *out = error == NULL ? calloc(1, sizeof *out) : NULL;
    if (out == NULL) {
        output_free(&output);
        return fail(err, error != NULL ? error : "out of memory");
    }
    out->tag = WEIR_PLUGIN_TYPES_OUTPUT_DERIVED;
    weir_plugin_types_derived_t *derived = &out->val.derived;
    if (output.mask != NULL) {
        derived->selection.is_some = true;
        derived->selection.val.tag = WEIR_PLUGIN_TYPES_SELECTION_MASK;
        derived->selection.val.val.mask.ptr = output.mask;
        derived->selection.val.val.mask.len = bitmap_bytes(output.rows);
    }
    derived->columns.ptr = output.columns;
    derived->columns.len = output.columns_len;
    derived->drop.ptr = output.drops;
    derived->drop.len = output.drops_len;
    /* The host frees all of it after the call returns. */
    ret->ptr = out;
    ret->len = 1;
    return true;
}

bool exports_weir_plugin_transform_finish(exports_weir_plugin_transform_list_output_t *ret,
                                          plugin_string_t *err) {
    ret->ptr = NULL;
    ret->len = 0;
    const char *error = weir_finish();
    return error == NULL || fail(err, error);
}

bool exports_weir_plugin_transform_snapshot(plugin_option_list_u8_t *ret, plugin_string_t *err) {
    uint8_t *state = NULL;
    size_t len = 0;
    const char *error = weir_snapshot(&state, &len);
    if (error != NULL) {
        free(state);
        return fail(err, error);
    }
    ret->is_some = state != NULL;
    ret->val.ptr = state;
    ret->val.len = len;
    return true;
}

bool exports_weir_plugin_transform_restore(plugin_list_u8_t *state, plugin_string_t *err) {
    const char *error = weir_restore(state->ptr, state->len);
    plugin_list_u8_free(state);
    return error == NULL || fail(err, error);
}
