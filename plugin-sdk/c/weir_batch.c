/*
 * weir_batch.c — the input batch: columns fetched on request as `weir_column` trees,
 * dictionaries decoded when asked for as their values' type.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir_internal.h"

/* ---- The input batch ------------------------------------------------------------ */

uint32_t weir_num_rows(const weir_batch *input) { return input->rows; }

const char *weir_input_port(const weir_batch *input, uint32_t *index) {
    if (index != NULL) *index = input->port;
    return input->port_name;
}

bool weir_port_ended(const weir_batch *input) {
    return weir_plugin_types_method_batch_port_ended(input->handle);
}

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
        if (!weir_valid(dict, row)) continue; /* a null slot's key means nothing */
        /* Never a silent null: a valid slot's key must name a value. */
        if (key >= values->len)
            return weir_error("column `%s`: row %u's dictionary key %llu is past its %u values",
                              dict->name, row, (unsigned long long)key, values->len);
        if (!weir_valid(values, (uint32_t)key)) continue;
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

void batch_release(weir_batch *input) {
    for (size_t i = 0; i < input->fetched_len; i++)
        weir_plugin_types_column_data_free(&input->fetched[i]);
    free(input->fetched);
    if (input->have_schema) weir_plugin_types_schema_free(&input->schema);
    arena_free(&input->arena);
}
