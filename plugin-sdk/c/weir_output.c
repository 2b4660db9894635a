/*
 * weir_output.c — the output of `weir_process`: a keep mask, new and replaced
 * columns (filled in place, or any type copied from a `weir_column`), drops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir_internal.h"

/* ---- The output -------------------------------------------------------------------- */

uint8_t *weir_keep_mask(weir_output *output) {
    if (output->mask == NULL) output->mask = calloc(bitmap_bytes(output->rows) + 1, 1);
    return output->mask;
}

weir_output *weir_output_to(weir_output *output, const char *port) {
    weir_output *first = output->first;
    uint32_t index = 0;
    while (index < first->ports->outputs_len && strcmp(first->ports->outputs[index], port) != 0)
        index++;
    if (index == first->ports->outputs_len) return NULL;
    weir_output **at = &first;
    for (; *at != NULL; at = &(*at)->next)
        if ((*at)->port == index) return *at;
    weir_output *opened = calloc(1, sizeof *opened);
    if (opened == NULL) return NULL;
    *opened = (weir_output){.port = index, .ports = first->ports, .first = first, .rows = first->rows};
    if (weir_keep_mask(opened) == NULL) {
        free(opened);
        return NULL;
    }
    *at = opened;
    return opened;
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
const char *output_seal(weir_output *output) {
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

void output_free(weir_output *output) {
    free(output->mask);
    for (size_t i = 0; i < output->columns_len; i++)
        weir_plugin_types_column_free(&output->columns[i]);
    free(output->columns);
    for (size_t i = 0; i < output->drops_len; i++) plugin_string_free(&output->drops[i]);
    free(output->drops);
    free(output->booleans);
}
