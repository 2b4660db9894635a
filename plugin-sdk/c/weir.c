/*
 * weir.c — the C helper's implementation: the `weir:plugin/transform`
 * exports over the wit-bindgen bindings (`plugin.h`, generated from weir's
 * WIT by `weir plugin build`), calling the plugin's `weir_*` functions.
 */
#include "weir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir_internal.h"

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
        "boolean",       "int8",          "int16",         "int32",
        "int64",         "uint8",         "uint16",        "uint32",
        "uint64",        "float32",       "float64",       "utf8",
        "binary",        "date32",        "timestamp",     "null",
        "float16",       "large_utf8",    "large_binary",  "utf8_view",
        "binary_view",   "fixed_size_binary", "date64",    "time32",
        "time64",        "duration",      "interval",      "decimal",
        "list",          "large_list",    "fixed_size_list", "list_view",
        "large_list_view", "struct",      "map",           "dictionary",
        "union",         "run_end_encoded", "any",
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

/* ---- The input batch ------------------------------------------------------------ */

struct weir_batch {
    weir_plugin_types_borrow_batch_t handle;
    uint32_t rows;
    bool have_schema;
    weir_plugin_types_schema_t schema;
    weir_plugin_types_column_data_t *fetched; /* freed after `weir_process` */
    size_t fetched_len;
    weir_arena arena; /* the `weir_column` trees handed out */
};

uint32_t weir_num_rows(const weir_batch *input) { return input->rows; }

bool weir_watermark(const weir_batch *input, int64_t *watermark) {
    return weir_plugin_types_method_batch_watermark(input->handle, watermark);
}

/* A dictionary column decoded to a plain column of its values' type
 * (values of a fixed width, or strings and binaries). */
static const char *decode_dictionary(const weir_column *dict, weir_column *out, weir_arena *arena) {
    const weir_column *values = dict->dictionary;
    bool large = values->type == WEIR_LARGE_UTF8 || values->type == WEIR_LARGE_BINARY;
    bool var = large || values->type == WEIR_UTF8 || values->type == WEIR_BINARY;
    size_t width = var || values->type == WEIR_DICTIONARY ? 0 : value_width(values);
    if (!var && width == 0)
        return weir_error("column `%s`: a dictionary of %s can't be decoded; ask for "
                          "WEIR_DICTIONARY and read its `dictionary`",
                          dict->name, weir_type_name(values->type));
    /* Same type as the values (views keep their data buffers), but one
     * row per key and a validity of its own. */
    *out = *values;
    out->name = dict->name;
    out->len = dict->len;
    out->nullable = dict->nullable || values->nullable;
    uint8_t *validity = arena_alloc(arena, bitmap_bytes(dict->len));
    if (validity == NULL) return "out of memory";
    size_t total = 0;
    for (uint32_t row = 0; row < dict->len; row++) {
        uint64_t key = weir_key(dict, row);
        if (!weir_valid(dict, row) || key >= values->len || !weir_valid(values, (uint32_t)key))
            continue;
        weir_bit_set(validity, row);
        size_t n = 0;
        if (var) weir_bytes(values, (uint32_t)key, &n);
        total += n;
    }
    out->validity = validity;
    if (!var) {
        uint8_t *fixed = arena_alloc(arena, (size_t)dict->len * width);
        if (fixed == NULL) return "out of memory";
        for (uint32_t row = 0; row < dict->len; row++)
            if (weir_valid(out, row))
                memcpy(fixed + (size_t)row * width,
                       (const uint8_t *)values->values + weir_key(dict, row) * width, width);
        alias_values(out, fixed);
        return NULL;
    }
    if (!large && total > INT32_MAX)
        return weir_error("column `%s`: over 2 GiB once decoded", dict->name);
    int32_t *offsets = large ? NULL : arena_alloc(arena, ((size_t)dict->len + 1) * 4);
    int64_t *large_offsets = large ? arena_alloc(arena, ((size_t)dict->len + 1) * 8) : NULL;
    uint8_t *data = arena_alloc(arena, total);
    if ((offsets == NULL && large_offsets == NULL) || data == NULL) return "out of memory";
    size_t at = 0;
    for (uint32_t row = 0;; row++) {
        if (large) large_offsets[row] = (int64_t)at;
        else offsets[row] = (int32_t)at;
        if (row == dict->len) break;
        if (!weir_valid(out, row)) continue;
        size_t n;
        const uint8_t *bytes = weir_bytes(values, (uint32_t)weir_key(dict, row), &n);
        memcpy(data + at, bytes, n);
        at += n;
    }
    out->offsets = offsets;
    out->large_offsets = large_offsets;
    out->data = data;
    return NULL;
}

/* The index of column `name` in `schema`, or `schema->columns.len`. */
static size_t find_column(const weir_plugin_types_schema_t *schema, const char *name) {
    size_t len = strlen(name);
    for (size_t i = 0; i < schema->columns.len; i++) {
        uint32_t field = schema->columns.ptr[i];
        if (field >= schema->nodes.len) continue;
        const plugin_string_t *n = &schema->nodes.ptr[field].name;
        if (n->len == len && memcmp(n->ptr, name, len) == 0) return i;
    }
    return schema->columns.len;
}

/* The batch's schema, fetched on first use. */
static const weir_plugin_types_schema_t *batch_schema(weir_batch *input) {
    if (!input->have_schema) {
        weir_plugin_types_method_batch_schema(input->handle, &input->schema);
        input->have_schema = true;
    }
    return &input->schema;
}

uint32_t weir_column_count(weir_batch *input) {
    return (uint32_t)batch_schema(input)->columns.len;
}

const char *weir_column_name(weir_batch *input, uint32_t index) {
    const weir_plugin_types_schema_t *schema = batch_schema(input);
    if (index >= schema->columns.len || schema->columns.ptr[index] >= schema->nodes.len) return NULL;
    return arena_string(&input->arena, &schema->nodes.ptr[schema->columns.ptr[index]].name);
}

const char *weir_column_get(weir_batch *input, const char *name, weir_type type,
                            weir_column *column) {
    batch_schema(input);
    size_t index = find_column(&input->schema, name);
    if (index == input->schema.columns.len) return weir_error("no column named `%s`", name);
    weir_plugin_types_column_data_t *grown =
        realloc(input->fetched, (input->fetched_len + 1) * sizeof *grown);
    if (grown == NULL) return "out of memory";
    input->fetched = grown;
    weir_plugin_types_column_data_t *data = &input->fetched[input->fetched_len];
    plugin_string_t err;
    if (!weir_plugin_types_method_batch_column(input->handle, (uint32_t)index, data, &err)) {
        const char *message = weir_error("column `%s`: %.*s", name, (int)err.len, err.ptr);
        plugin_string_free(&err);
        return message;
    }
    input->fetched_len++;
    weir_column read;
    const char *error = column_from_wit(&input->schema, input->schema.columns.ptr[index], data,
                                        data->root, &read, &input->arena);
    if (error != NULL) return weir_error("column `%s`: %s", name, error);
    read.name = name;
    if (type == WEIR_ANY || read.type == type) {
        *column = read;
        return NULL;
    }
    if (read.type == WEIR_DICTIONARY && read.dictionary->type == type)
        return decode_dictionary(&read, column, &input->arena);
    return weir_error("column `%s` is %s, expected %s", name, weir_type_name(read.type),
                      weir_type_name(type));
}

static void batch_release(weir_batch *input) {
    for (size_t i = 0; i < input->fetched_len; i++)
        weir_plugin_types_column_data_free(&input->fetched[i]);
    free(input->fetched);
    if (input->have_schema) weir_plugin_types_schema_free(&input->schema);
    arena_free(&input->arena);
}

/* ---- The output -------------------------------------------------------------------- */

/* A boolean column the plugin fills as bools: packed into Arrow's bits
 * once `weir_process` returns. */
typedef struct unpacked {
    size_t column;
} unpacked;

struct weir_output {
    uint32_t rows;
    uint8_t *mask;
    weir_plugin_types_column_t *columns;
    size_t columns_len;
    plugin_string_t *drops;
    size_t drops_len;
    unpacked *booleans;
    size_t booleans_len;
};

uint8_t *weir_keep_mask(weir_output *output) {
    if (output->mask == NULL) output->mask = calloc(bitmap_bytes(output->rows) + 1, 1);
    return output->mask;
}

/* A new, zeroed output column, or NULL. */
static weir_plugin_types_column_t *push_column(weir_output *output) {
    weir_plugin_types_column_t *grown =
        realloc(output->columns, (output->columns_len + 1) * sizeof *grown);
    if (grown == NULL) return NULL;
    output->columns = grown;
    weir_plugin_types_column_t *c = &output->columns[output->columns_len];
    memset(c, 0, sizeof *c);
    return c;
}

/* `c`'s field: a one-column schema of `column`'s type. */
static const char *set_field(weir_plugin_types_column_t *c, const weir_column *column) {
    field_nodes nodes = {NULL, 0, 0};
    uint32_t root;
    const char *error = field_to_wit(column, &nodes, &root);
    c->field.nodes.ptr = nodes.ptr;
    c->field.nodes.len = nodes.len;
    if (error == NULL && (c->field.columns.ptr = malloc(sizeof(uint32_t))) == NULL)
        error = "out of memory";
    if (error == NULL) {
        c->field.columns.ptr[0] = root;
        c->field.columns.len = 1;
    }
    return error;
}

/* Appends a column of `type` whose values (`width` bytes each, one per
 * input row) and validity the plugin fills in: the buffers handed out are
 * the ones weir receives. Returns its values. */
static void *add_fixed(weir_output *output, const char *name, weir_column type, size_t width,
                       uint8_t **validity) {
    weir_plugin_types_column_t *c = push_column(output);
    if (c == NULL) return NULL;
    type.name = name;
    type.nullable = true;
    weir_plugin_types_array_node_t *node = calloc(1, sizeof *node);
    plugin_list_u8_t *buffers = calloc(2, sizeof *buffers);
    /* calloc(0) may return NULL: allocate at least one byte. */
    void *values = calloc((size_t)output->rows + 1, width);
    uint8_t *bitmap = validity != NULL ? calloc(bitmap_bytes(output->rows) + 1, 1) : NULL;
    if (node == NULL || buffers == NULL || values == NULL || (validity != NULL && bitmap == NULL) ||
        set_field(c, &type) != NULL) {
        free(node), free(buffers), free(values), free(bitmap);
        weir_plugin_types_schema_free(&c->field);
        return NULL;
    }
    output->columns_len++;
    node->length = output->rows;
    buffers[0] = (plugin_list_u8_t){bitmap, bitmap != NULL ? bitmap_bytes(output->rows) : 0};
    buffers[1] = (plugin_list_u8_t){values, (size_t)output->rows * width};
    node->buffers = (plugin_list_list_u8_t){buffers, 2};
    c->data.nodes = (weir_plugin_types_list_array_node_t){node, 1};
    if (validity != NULL) *validity = bitmap;
    return values;
}

int64_t *weir_add_int64(weir_output *output, const char *name, uint8_t **validity) {
    return add_fixed(output, name, (weir_column){.type = WEIR_INT64}, 8, validity);
}

int32_t *weir_add_int32(weir_output *output, const char *name, uint8_t **validity) {
    return add_fixed(output, name, (weir_column){.type = WEIR_INT32}, 4, validity);
}

double *weir_add_float64(weir_output *output, const char *name, uint8_t **validity) {
    return add_fixed(output, name, (weir_column){.type = WEIR_FLOAT64}, 8, validity);
}

__int128 *weir_add_decimal(weir_output *output, const char *name, uint8_t precision, int8_t scale,
                           uint8_t **validity) {
    if (precision < 1 || precision > 38) return NULL;
    weir_column type = {.type = WEIR_DECIMAL, .precision = precision, .scale = scale, .bits = 128};
    return add_fixed(output, name, type, 16, validity);
}

bool *weir_add_boolean(weir_output *output, const char *name, uint8_t **validity) {
    unpacked *grown = realloc(output->booleans, (output->booleans_len + 1) * sizeof *grown);
    if (grown == NULL) return NULL;
    output->booleans = grown;
    /* One byte per row for the plugin; packed into bits by output_seal. */
    bool *values = add_fixed(output, name, (weir_column){.type = WEIR_BOOLEAN}, 1, validity);
    if (values != NULL) output->booleans[output->booleans_len++] = (unpacked){output->columns_len - 1};
    return values;
}

/* Adds a string column from C strings (NULL is null), offsets of `large`
 * (8 bytes) or regular (4 bytes) width. */
static const char *add_strings(weir_output *output, const char *name, const char *const *values,
                               bool large) {
    size_t total = 0;
    for (uint32_t i = 0; i < output->rows; i++)
        if (values[i] != NULL) total += strlen(values[i]);
    if (!large && total > INT32_MAX) return "utf8 column too large (over 2 GiB): use large_utf8";
    uint8_t *validity;
    weir_column type = {.type = large ? WEIR_LARGE_UTF8 : WEIR_UTF8};
    void *offsets = add_fixed(output, name, type, large ? 8 : 4, &validity);
    uint8_t *data = offsets != NULL ? malloc(total + 1) : NULL;
    if (data == NULL) return "out of memory";
    weir_plugin_types_array_node_t *node = &output->columns[output->columns_len - 1].data.nodes.ptr[0];
    /* add_fixed made room for two buffers: validity and the offsets; a
     * string column has a third, its bytes. */
    plugin_list_u8_t *buffers = realloc(node->buffers.ptr, 3 * sizeof *buffers);
    if (buffers == NULL) {
        free(data);
        return "out of memory";
    }
    void *grown = realloc(offsets, ((size_t)output->rows + 1) * (large ? 8 : 4));
    if (grown == NULL) {
        free(data);
        return "out of memory";
    }
    offsets = grown;
    buffers[1] = (plugin_list_u8_t){offsets, ((size_t)output->rows + 1) * (large ? 8 : 4)};
    buffers[2] = (plugin_list_u8_t){data, total};
    node->buffers = (plugin_list_list_u8_t){buffers, 3};
    size_t at = 0;
    for (uint32_t i = 0;; i++) {
        if (large) ((int64_t *)offsets)[i] = (int64_t)at;
        else ((int32_t *)offsets)[i] = (int32_t)at;
        if (i == output->rows) break;
        if (values[i] == NULL) continue;
        size_t n = strlen(values[i]);
        memcpy(data + at, values[i], n);
        at += n;
        weir_bit_set(validity, i);
    }
    return NULL;
}

const char *weir_add_utf8(weir_output *output, const char *name, const char *const *values) {
    return add_strings(output, name, values, false);
}

const char *weir_add_large_utf8(weir_output *output, const char *name, const char *const *values) {
    return add_strings(output, name, values, true);
}

const char *weir_add_column(weir_output *output, const weir_column *column) {
    if (column->name == NULL) return "weir_add_column: the column has no name";
    if (column->len != output->rows)
        return weir_error("column `%s`: %u rows, but the batch has %u", column->name, column->len,
                          output->rows);
    weir_plugin_types_column_t *c = push_column(output);
    if (c == NULL) return "out of memory";
    array_nodes nodes = {NULL, 0, 0};
    uint32_t root = 0;
    const char *error = set_field(c, column);
    if (error == NULL) error = array_to_wit(column, &nodes, &root);
    c->data.nodes.ptr = nodes.ptr;
    c->data.nodes.len = nodes.len;
    c->data.root = root;
    if (error != NULL) {
        weir_plugin_types_column_free(c);
        return error;
    }
    output->columns_len++;
    return NULL;
}

const char *weir_drop(weir_output *output, const char *name) {
    plugin_string_t *grown = realloc(output->drops, (output->drops_len + 1) * sizeof *grown);
    if (grown == NULL) return "out of memory";
    output->drops = grown;
    plugin_string_dup(&output->drops[output->drops_len++], name);
    return NULL;
}

/* What the plugin filled in, as weir reads it: booleans packed into bits,
 * and each new root array's null count. */
static const char *output_seal(weir_output *output) {
    for (size_t i = 0; i < output->booleans_len; i++) {
        plugin_list_u8_t *values =
            &output->columns[output->booleans[i].column].data.nodes.ptr[0].buffers.ptr[1];
        uint8_t *bits = calloc(bitmap_bytes(output->rows) + 1, 1);
        if (bits == NULL) return "out of memory";
        for (uint32_t row = 0; row < output->rows; row++)
            if (values->ptr[row]) weir_bit_set(bits, row);
        free(values->ptr);
        *values = (plugin_list_u8_t){bits, bitmap_bytes(output->rows)};
    }
    for (size_t i = 0; i < output->columns_len; i++) {
        weir_plugin_types_column_data_t *data = &output->columns[i].data;
        weir_plugin_types_array_node_t *root = &data->nodes.ptr[data->root];
        const plugin_list_u8_t *validity = &root->buffers.ptr[0];
        root->null_count = count_nulls(validity->len > 0 ? validity->ptr : NULL, root->length);
    }
    return NULL;
}

static void output_free(weir_output *output) {
    free(output->mask);
    for (size_t i = 0; i < output->columns_len; i++)
        weir_plugin_types_column_free(&output->columns[i]);
    free(output->columns);
    for (size_t i = 0; i < output->drops_len; i++) plugin_string_free(&output->drops[i]);
    free(output->drops);
    free(output->booleans);
}

/* ---- describe ---------------------------------------------------------------------------- */

struct weir_schema {
    weir_column *columns;
    uint32_t len;
};

uint32_t weir_schema_len(const weir_schema *schema) { return schema->len; }

const weir_column *weir_schema_column(const weir_schema *schema, uint32_t index) {
    return index < schema->len ? &schema->columns[index] : NULL;
}

const weir_column *weir_schema_find(const weir_schema *schema, const char *name) {
    for (uint32_t i = 0; i < schema->len; i++)
        if (strcmp(schema->columns[i].name, name) == 0) return &schema->columns[i];
    return NULL;
}

/* One column of the declared output: an input column (its field node
 * copied as is: item names, metadata) or one the plugin added. */
typedef struct described {
    const char *name;
    uint32_t field; /* its field node: in the input, or in `added` */
    bool is_added;
    bool dropped;
} described;

struct weir_output_schema {
    described *columns;
    size_t len;
    bool unknown;
    /* The added columns' types, turned into field nodes as they are added
     * (a plugin's children arrays may not outlive its call). */
    field_nodes added;
    weir_arena arena;
};

static described *describe_find(weir_output_schema *output, const char *name) {
    for (size_t i = 0; i < output->len; i++)
        if (!output->columns[i].dropped && strcmp(output->columns[i].name, name) == 0)
            return &output->columns[i];
    return NULL;
}

const char *weir_describe_add(weir_output_schema *output, const weir_column *column) {
    if (column->name == NULL) return "weir_describe_add: the column has no name";
    plugin_string_t name = {(uint8_t *)column->name, strlen(column->name)};
    const char *copy = arena_string(&output->arena, &name);
    uint32_t root;
    const char *error = copy == NULL ? "out of memory" : field_to_wit(column, &output->added, &root);
    if (error != NULL) return error;
    described *slot = describe_find(output, column->name);
    if (slot == NULL) {
        described *grown = realloc(output->columns, (output->len + 1) * sizeof *grown);
        if (grown == NULL) return "out of memory";
        output->columns = grown;
        slot = &output->columns[output->len++];
    }
    *slot = (described){copy, root, true, false};
    return NULL;
}

const char *weir_describe_drop(weir_output_schema *output, const char *name) {
    described *slot = describe_find(output, name);
    if (slot != NULL) slot->dropped = true;
    return NULL;
}

/* The declared output schema as WIT field nodes, into `*out`. */
static const char *describe_seal(const weir_plugin_types_schema_t *input, weir_output_schema *d,
                                 weir_plugin_types_schema_t *out) {
    weir_plugin_types_schema_t added = {{d->added.ptr, d->added.len}, {NULL, 0}, {NULL, 0}};
    field_nodes nodes = {NULL, 0, 0};
    plugin_list_u32_t roots = {malloc((d->len + 1) * sizeof(uint32_t)), 0};
    const char *error = roots.ptr == NULL ? "out of memory" : NULL;
    for (size_t i = 0; error == NULL && i < d->len; i++) {
        const described *c = &d->columns[i];
        if (c->dropped) continue;
        uint32_t root;
        error = copy_field(c->is_added ? &added : input, c->field, &nodes, &root);
        if (error == NULL) roots.ptr[roots.len++] = root;
    }
    out->nodes.ptr = nodes.ptr;
    out->nodes.len = nodes.len;
    out->columns = roots;
    copy_metadata(&input->metadata, &out->metadata);
    return error;
}

/* Not declared: the output is known once data flows. */
__attribute__((weak)) const char *weir_describe(const weir_schema *input, const weir_config *config,
                                                weir_output_schema *output) {
    (void)input;
    (void)config;
    output->unknown = true;
    return NULL;
}

/* `weir_describe` over one input schema: the declared output in `*out`,
 * or `*known` false. */
static const char *describe_one(const weir_plugin_types_schema_t *input, const weir_config *config,
                                weir_plugin_types_schema_t *out, bool *known) {
    weir_arena arena = {NULL, 0};
    weir_schema schema = {NULL, (uint32_t)input->columns.len};
    weir_output_schema d = {NULL, 0, false, {NULL, 0, 0}, {NULL, 0}};
    schema.columns = arena_alloc(&arena, (schema.len + 1) * sizeof *schema.columns);
    d.columns = malloc((schema.len + 1) * sizeof *d.columns);
    const char *error = schema.columns == NULL || d.columns == NULL ? "out of memory" : NULL;
    for (uint32_t i = 0; error == NULL && i < schema.len; i++) {
        error = column_from_wit(input, input->columns.ptr[i], NULL, 0, &schema.columns[i], &arena);
        if (error == NULL)
            d.columns[d.len++] = (described){schema.columns[i].name, input->columns.ptr[i], false, false};
    }
    if (error == NULL) error = weir_describe(&schema, config, &d);
    *known = error == NULL && !d.unknown;
    if (*known) error = describe_seal(input, &d, out);
    free(d.columns);
    weir_plugin_types_list_field_node_t added = {d.added.ptr, d.added.len};
    if (added.len > 0) weir_plugin_types_list_field_node_free(&added);
    else free(added.ptr);
    arena_free(&d.arena);
    arena_free(&arena);
    return error;
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

/* One input port, "in"; one output port, "out". */
bool exports_weir_plugin_transform_ports(plugin_string_t *config,
                                         exports_weir_plugin_transform_port_names_t *ret,
                                         plugin_string_t *err) {
    plugin_string_free(config);
    ret->inputs.ptr = malloc(sizeof(plugin_string_t));
    ret->outputs.ptr = malloc(sizeof(plugin_string_t));
    if (ret->inputs.ptr == NULL || ret->outputs.ptr == NULL) {
        free(ret->inputs.ptr);
        free(ret->outputs.ptr);
        return fail(err, "out of memory");
    }
    plugin_string_dup(&ret->inputs.ptr[0], "in");
    plugin_string_dup(&ret->outputs.ptr[0], "out");
    ret->inputs.len = ret->outputs.len = 1;
    return true;
}

bool exports_weir_plugin_transform_init(plugin_string_t *config, plugin_string_t *err) {
    config_free(&the_config);
    const char *error = config_parse(&the_config, config->ptr, config->len);
    plugin_string_free(config);
    if (error == NULL) error = weir_init(&the_config);
    return error == NULL || fail(err, error);
}

bool exports_weir_plugin_transform_describe(exports_weir_plugin_transform_list_port_schema_t *inputs,
                                            plugin_string_t *config,
                                            exports_weir_plugin_transform_list_port_schema_t *ret,
                                            plugin_string_t *err) {
    weir_config parsed = {0};
    const char *error = config_parse(&parsed, config->ptr, config->len);
    plugin_string_free(config);
    exports_weir_plugin_transform_port_schema_t *out = calloc(1, sizeof *out);
    if (error == NULL && out == NULL) error = "out of memory";
    if (error == NULL) {
        plugin_string_dup(&out->name, "out");
        bool known = false;
        if (inputs->len == 1 && inputs->ptr[0].schema.is_some)
            error = describe_one(&inputs->ptr[0].schema.val, &parsed, &out->schema.val, &known);
        out->schema.is_some = known;
    }
    config_free(&parsed);
    exports_weir_plugin_transform_list_port_schema_free(inputs);
    if (error != NULL) {
        if (out != NULL) exports_weir_plugin_transform_port_schema_free(out);
        free(out);
        return fail(err, error);
    }
    ret->ptr = out;
    ret->len = 1;
    return true;
}

bool exports_weir_plugin_transform_process(exports_weir_plugin_transform_port_t port,
                                           exports_weir_plugin_transform_borrow_batch_t input,
                                           exports_weir_plugin_transform_list_output_t *ret,
                                           plugin_string_t *err) {
    (void)port;
    weir_batch batch = {input, weir_plugin_types_method_batch_num_rows(input), false, {0}, NULL, 0,
                        {NULL, 0}};
    weir_output output = {batch.rows, NULL, NULL, 0, NULL, 0, NULL, 0};
    const char *error = weir_process(&batch, &output);
    batch_release(&batch);
    if (error == NULL) error = output_seal(&output);
    weir_plugin_types_output_t *out = error == NULL ? calloc(1, sizeof *out) : NULL;
    if (out == NULL) {
        output_free(&output);
        return fail(err, error != NULL ? error : "out of memory");
    }
    out->port = 0;
    out->data.tag = WEIR_PLUGIN_TYPES_OUTPUT_DATA_DERIVED;
    weir_plugin_types_derived_t *derived = &out->data.val.derived;
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
    free(output.booleans);
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
