/*
 * weir_arrow.c — weir:plugin@0.2.0's flattened tables (a type is a table
 * of field nodes naming their children by index, a column a table of
 * array nodes carrying Arrow's buffers; see wit/README.md) read into
 * `weir_column` trees, and the accessors of `weir.h`. The other direction
 * is weir_arrow_write.c.
 */
#include <stdlib.h>
#include <string.h>

#include "weir_internal.h"

/* ---- Per-call allocations ------------------------------------------------------ */

void *arena_alloc(weir_arena *arena, size_t size) {
    void **grown = realloc(arena->blocks, (arena->len + 1) * sizeof *grown);
    if (grown == NULL) return NULL;
    arena->blocks = grown;
    void *block = calloc(size + 1, 1);
    if (block != NULL) arena->blocks[arena->len++] = block;
    return block;
}

const char *arena_string(weir_arena *arena, const plugin_string_t *text) {
    char *copy = arena_alloc(arena, text->len);
    if (copy != NULL && text->len > 0) memcpy(copy, text->ptr, text->len);
    return copy;
}

void arena_free(weir_arena *arena) {
    for (size_t i = 0; i < arena->len; i++) free(arena->blocks[i]);
    free(arena->blocks);
    arena->blocks = NULL;
    arena->len = 0;
}

uint32_t count_nulls(const uint8_t *validity, uint32_t len) {
    if (validity == NULL) return 0;
    uint32_t valid = 0;
    for (uint32_t i = 0; i < len / 8; i++) valid += (uint32_t)__builtin_popcount(validity[i]);
    for (uint32_t i = len / 8 * 8; i < len; i++) valid += (validity[i >> 3] >> (i & 7)) & 1;
    return len - valid;
}

/* ---- Widths ------------------------------------------------------------------------- */

static size_t index_width(weir_type index) {
    switch (index) {
    case WEIR_INT8: case WEIR_UINT8: return 1;
    case WEIR_INT16: case WEIR_UINT16: return 2;
    case WEIR_INT32: case WEIR_UINT32: return 4;
    default: return 8;
    }
}

/* Bytes per value of a fixed-width type's value buffer; 0 for the others. */
size_t value_width(const weir_column *c) {
    switch (c->type) {
    case WEIR_INT8: case WEIR_UINT8: return 1;
    case WEIR_INT16: case WEIR_UINT16: case WEIR_FLOAT16: return 2;
    case WEIR_INT32: case WEIR_UINT32: case WEIR_FLOAT32: case WEIR_DATE32: case WEIR_TIME32:
        return 4;
    case WEIR_INT64: case WEIR_UINT64: case WEIR_FLOAT64: case WEIR_DATE64: case WEIR_TIME64:
    case WEIR_TIMESTAMP: case WEIR_DURATION:
        return 8;
    case WEIR_INTERVAL:
        return c->interval == WEIR_YEAR_MONTH ? 4 : c->interval == WEIR_DAY_TIME ? 8 : 16;
    case WEIR_DECIMAL: return c->bits / 8u;
    case WEIR_UTF8_VIEW: case WEIR_BINARY_VIEW: return 16;
    case WEIR_FIXED_SIZE_BINARY: return c->size > 0 ? (size_t)c->size : 0;
    case WEIR_DICTIONARY: return index_width(c->index);
    default: return 0;
    }
}

/* Points the typed pointer that fits `c`'s values at `values`. */
void alias_values(weir_column *c, const void *values) {
    c->values = values;
    switch (c->type) {
    case WEIR_INT8: c->i8 = values; break;
    case WEIR_INT16: c->i16 = values; break;
    case WEIR_INT32: case WEIR_DATE32: case WEIR_TIME32: c->i32 = values; break;
    case WEIR_INT64: case WEIR_DATE64: case WEIR_TIME64: case WEIR_TIMESTAMP: case WEIR_DURATION:
        c->i64 = values;
        break;
    case WEIR_UINT8: c->u8 = values; break;
    case WEIR_UINT16: case WEIR_FLOAT16: c->u16 = values; break;
    case WEIR_UINT32: c->u32 = values; break;
    case WEIR_UINT64: c->u64 = values; break;
    case WEIR_FLOAT32: c->f32 = values; break;
    case WEIR_FLOAT64: c->f64 = values; break;
    case WEIR_FIXED_SIZE_BINARY: c->data = values; break;
    case WEIR_DICTIONARY:
        switch (c->index) {
        case WEIR_INT8: c->i8 = values; break;
        case WEIR_INT16: c->i16 = values; break;
        case WEIR_INT32: c->i32 = values; break;
        case WEIR_INT64: c->i64 = values; break;
        case WEIR_UINT8: c->u8 = values; break;
        case WEIR_UINT16: c->u16 = values; break;
        case WEIR_UINT32: c->u32 = values; break;
        default: c->u64 = values; break;
        }
        break;
    default: break;
    }
}

/* ---- WIT type -> weir_column ----------------------------------------------------- */

const weir_type WEIR_INDEX_TYPES[8] = {WEIR_INT8,  WEIR_INT16,  WEIR_INT32,  WEIR_INT64,
                                        WEIR_UINT8, WEIR_UINT16, WEIR_UINT32, WEIR_UINT64};

/* The children field indices of a field node's type, in the order its
 * array node lists its children (the dictionary's values excluded). */
size_t field_children(const weir_plugin_types_data_type_t *t, const uint32_t **list,
                             uint32_t *one) {
    switch (t->tag) {
    case WEIR_PLUGIN_TYPES_DATA_TYPE_LIST: *one = t->val.list; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_LIST: *one = t->val.large_list; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_LIST_VIEW: *one = t->val.list_view; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_LIST_VIEW: *one = t->val.large_list_view; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_FIXED_SIZE_LIST: *one = t->val.fixed_size_list.item; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_MAP: *one = t->val.map.entries; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_STRUCT:
        *list = t->val.struct_.ptr;
        return t->val.struct_.len;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_UNION:
        *list = t->val.union_.children.ptr;
        return t->val.union_.children.len;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_RUN_END_ENCODED:
        one[0] = t->val.run_end_encoded.run_ends;
        one[1] = t->val.run_end_encoded.values;
        *list = one;
        return 2;
    default: return 0;
    }
    *list = one;
    return 1;
}

/* The kind and parameters of a WIT type, children aside. */
static void type_from_wit(const weir_plugin_types_data_type_t *t, weir_column *c,
                          weir_arena *arena) {
    static const weir_type SIMPLE[] = {
        [WEIR_PLUGIN_TYPES_DATA_TYPE_NULL] = WEIR_NULL,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_BOOLEAN] = WEIR_BOOLEAN,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_INT8] = WEIR_INT8,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_INT16] = WEIR_INT16,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_INT32] = WEIR_INT32,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_INT64] = WEIR_INT64,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_UINT8] = WEIR_UINT8,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_UINT16] = WEIR_UINT16,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_UINT32] = WEIR_UINT32,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_UINT64] = WEIR_UINT64,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_FLOAT16] = WEIR_FLOAT16,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_FLOAT32] = WEIR_FLOAT32,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_FLOAT64] = WEIR_FLOAT64,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_UTF8] = WEIR_UTF8,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_UTF8] = WEIR_LARGE_UTF8,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_UTF8_VIEW] = WEIR_UTF8_VIEW,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_BINARY] = WEIR_BINARY,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_BINARY] = WEIR_LARGE_BINARY,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_BINARY_VIEW] = WEIR_BINARY_VIEW,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_FIXED_SIZE_BINARY] = WEIR_FIXED_SIZE_BINARY,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_DATE32] = WEIR_DATE32,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_DATE64] = WEIR_DATE64,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_TIME32] = WEIR_TIME32,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_TIME64] = WEIR_TIME64,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_TIMESTAMP] = WEIR_TIMESTAMP,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_DURATION] = WEIR_DURATION,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_INTERVAL] = WEIR_INTERVAL,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL32] = WEIR_DECIMAL,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL64] = WEIR_DECIMAL,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL128] = WEIR_DECIMAL,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL256] = WEIR_DECIMAL,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_LIST] = WEIR_LIST,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_LIST] = WEIR_LARGE_LIST,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_FIXED_SIZE_LIST] = WEIR_FIXED_SIZE_LIST,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_LIST_VIEW] = WEIR_LIST_VIEW,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_LIST_VIEW] = WEIR_LARGE_LIST_VIEW,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_STRUCT] = WEIR_STRUCT,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_MAP] = WEIR_MAP,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_DICTIONARY] = WEIR_DICTIONARY,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_UNION] = WEIR_UNION,
        [WEIR_PLUGIN_TYPES_DATA_TYPE_RUN_END_ENCODED] = WEIR_RUN_END_ENCODED,
    };
    c->type = SIMPLE[t->tag];
    const weir_plugin_types_decimal_type_t *decimal = NULL;
    switch (t->tag) {
    case WEIR_PLUGIN_TYPES_DATA_TYPE_FIXED_SIZE_BINARY: c->size = t->val.fixed_size_binary; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_TIME32: c->unit = (weir_unit)t->val.time32; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_TIME64: c->unit = (weir_unit)t->val.time64; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_DURATION: c->unit = (weir_unit)t->val.duration; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_TIMESTAMP:
        c->unit = (weir_unit)t->val.timestamp.unit;
        if (t->val.timestamp.timezone.is_some)
            c->timezone = arena_string(arena, &t->val.timestamp.timezone.val);
        break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_INTERVAL:
        c->interval = (weir_interval_unit)t->val.interval;
        break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL32: decimal = &t->val.decimal32; c->bits = 32; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL64: decimal = &t->val.decimal64; c->bits = 64; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL128: decimal = &t->val.decimal128; c->bits = 128; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL256: decimal = &t->val.decimal256; c->bits = 256; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_FIXED_SIZE_LIST: c->size = t->val.fixed_size_list.size; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_MAP: c->keys_sorted = t->val.map.keys_sorted; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_DICTIONARY:
        c->index = WEIR_INDEX_TYPES[t->val.dictionary.index];
        c->ordered = t->val.dictionary.ordered;
        break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_UNION:
        c->dense = t->val.union_.mode == WEIR_PLUGIN_TYPES_UNION_MODE_DENSE;
        c->type_codes = t->val.union_.type_ids.ptr;
        break;
    default: break;
    }
    if (decimal != NULL) {
        c->precision = decimal->precision;
        c->scale = decimal->scale;
    }
}

/* Buffer `i` of an array node, or NULL when it is empty or absent. */
static const uint8_t *buffer(const weir_plugin_types_array_node_t *node, size_t i) {
    return i < node->buffers.len && node->buffers.ptr[i].len > 0 ? node->buffers.ptr[i].ptr : NULL;
}

/* Attaches an array node's buffers to `c` (whose type is set). */
static const char *arrays_from_wit(const weir_plugin_types_array_node_t *node, weir_column *c,
                                   weir_arena *arena) {
    c->len = node->length;
    c->validity = buffer(node, 0);
    switch (c->type) {
    case WEIR_NULL: case WEIR_STRUCT: case WEIR_FIXED_SIZE_LIST: case WEIR_RUN_END_ENCODED:
        break;
    case WEIR_BOOLEAN: {
        const uint8_t *bits = buffer(node, 1);
        bool *values = arena_alloc(arena, c->len);
        if (values == NULL) return "out of memory";
        for (uint32_t i = 0; bits != NULL && i < c->len; i++) values[i] = (bits[i >> 3] >> (i & 7)) & 1;
        c->boolean = values;
        break;
    }
    case WEIR_UTF8: case WEIR_BINARY: case WEIR_LIST: case WEIR_MAP:
        c->offsets = (const int32_t *)buffer(node, 1);
        c->data = buffer(node, 2);
        break;
    case WEIR_LARGE_UTF8: case WEIR_LARGE_BINARY: case WEIR_LARGE_LIST:
        c->large_offsets = (const int64_t *)buffer(node, 1);
        c->data = buffer(node, 2);
        break;
    case WEIR_LIST_VIEW:
        c->offsets = (const int32_t *)buffer(node, 1);
        c->sizes = (const int32_t *)buffer(node, 2);
        break;
    case WEIR_LARGE_LIST_VIEW:
        c->large_offsets = (const int64_t *)buffer(node, 1);
        c->large_sizes = (const int64_t *)buffer(node, 2);
        break;
    case WEIR_UTF8_VIEW: case WEIR_BINARY_VIEW: {
        c->values = buffer(node, 1);
        c->n_data_buffers = node->buffers.len > 2 ? (uint32_t)node->buffers.len - 2 : 0;
        const uint8_t **data = arena_alloc(arena, (c->n_data_buffers + 1) * sizeof *data);
        if (data == NULL) return "out of memory";
        for (uint32_t i = 0; i < c->n_data_buffers; i++) data[i] = node->buffers.ptr[i + 2].ptr;
        c->data_buffers = data;
        break;
    }
    case WEIR_UNION:
        c->type_ids = (const int8_t *)buffer(node, 1);
        if (c->dense) c->offsets = (const int32_t *)buffer(node, 2);
        break;
    default: alias_values(c, buffer(node, 1)); break;
    }
    return NULL;
}

static const char *from_wit(const weir_plugin_types_schema_t *schema, uint32_t field,
                            const weir_plugin_types_column_data_t *data, uint32_t node,
                            weir_column *c, weir_arena *arena, int depth) {
    if (depth > MAX_DEPTH) return "a type nested too deep";
    if (field >= schema->nodes.len || (data != NULL && node >= data->nodes.len))
        return "a malformed type or column (a node index out of range)";
    const weir_plugin_types_field_node_t *f = &schema->nodes.ptr[field];
    memset(c, 0, sizeof *c);
    c->name = arena_string(arena, &f->name);
    c->nullable = f->nullable;
    type_from_wit(&f->data_type, c, arena);
    const weir_plugin_types_array_node_t *a = data != NULL ? &data->nodes.ptr[node] : NULL;
    if (a != NULL) {
        const char *error = arrays_from_wit(a, c, arena);
        if (error != NULL) return error;
    }
    const uint32_t *kids;
    uint32_t pair[2];
    size_t n = field_children(&f->data_type, &kids, pair);
    if (a != NULL && a->children.len != n) return "a malformed column (children unlike its type)";
    weir_column *children = n > 0 ? arena_alloc(arena, n * sizeof *children) : NULL;
    if (n > 0 && children == NULL) return "out of memory";
    for (size_t i = 0; i < n; i++) {
        const char *error = from_wit(schema, kids[i], data, a != NULL ? a->children.ptr[i] : 0,
                                     &children[i], arena, depth + 1);
        if (error != NULL) return error;
    }
    c->children = children;
    c->n_children = (uint32_t)n;
    if (c->type == WEIR_DICTIONARY) {
        weir_column *values = arena_alloc(arena, sizeof *values);
        if (values == NULL) return "out of memory";
        if (a != NULL && !a->dictionary.is_some) return "a dictionary column without its values";
        const char *error = from_wit(schema, f->data_type.val.dictionary.value, data,
                                     a != NULL ? a->dictionary.val : 0, values, arena, depth + 1);
        if (error != NULL) return error;
        c->dictionary = values;
    }
    return NULL;
}

const char *column_from_wit(const weir_plugin_types_schema_t *schema, uint32_t field,
                            const weir_plugin_types_column_data_t *data, uint32_t node,
                            weir_column *out, weir_arena *arena) {
    return from_wit(schema, field, data, node, out, arena, 0);
}

/* ---- Accessors ---------------------------------------------------------------------- */

const uint8_t *weir_bytes(const weir_column *c, uint32_t row, size_t *len) {
    switch (c->type) {
    case WEIR_UTF8: case WEIR_BINARY:
        *len = (size_t)(c->offsets[row + 1] - c->offsets[row]);
        return c->data + c->offsets[row];
    case WEIR_LARGE_UTF8: case WEIR_LARGE_BINARY:
        *len = (size_t)(c->large_offsets[row + 1] - c->large_offsets[row]);
        return c->data + c->large_offsets[row];
    case WEIR_FIXED_SIZE_BINARY:
        *len = (size_t)c->size;
        return c->data + (size_t)row * (size_t)c->size;
    case WEIR_UTF8_VIEW: case WEIR_BINARY_VIEW: {
        const uint8_t *v = (const uint8_t *)c->values + (size_t)row * 16;
        uint32_t n, index, offset;
        memcpy(&n, v, 4);
        *len = n;
        if (n <= 12) return v + 4;
        memcpy(&index, v + 8, 4);
        memcpy(&offset, v + 12, 4);
        return index < c->n_data_buffers ? c->data_buffers[index] + offset : NULL;
    }
    default: *len = 0; return NULL;
    }
}

void weir_items(const weir_column *c, uint32_t row, uint64_t *start, uint64_t *end) {
    switch (c->type) {
    case WEIR_LIST: case WEIR_MAP:
        *start = (uint64_t)c->offsets[row];
        *end = (uint64_t)c->offsets[row + 1];
        return;
    case WEIR_LARGE_LIST:
        *start = (uint64_t)c->large_offsets[row];
        *end = (uint64_t)c->large_offsets[row + 1];
        return;
    case WEIR_LIST_VIEW:
        *start = (uint64_t)c->offsets[row];
        *end = *start + (uint64_t)c->sizes[row];
        return;
    case WEIR_LARGE_LIST_VIEW:
        *start = (uint64_t)c->large_offsets[row];
        *end = *start + (uint64_t)c->large_sizes[row];
        return;
    case WEIR_FIXED_SIZE_LIST:
        *start = (uint64_t)row * (uint64_t)c->size;
        *end = *start + (uint64_t)c->size;
        return;
    default: *start = *end = 0; return;
    }
}

uint64_t weir_key(const weir_column *c, uint32_t row) {
    switch (c->index) {
    case WEIR_INT8: return (uint64_t)c->i8[row];
    case WEIR_INT16: return (uint64_t)c->i16[row];
    case WEIR_INT32: return (uint64_t)c->i32[row];
    case WEIR_INT64: return (uint64_t)c->i64[row];
    case WEIR_UINT8: return c->u8[row];
    case WEIR_UINT16: return c->u16[row];
    case WEIR_UINT32: return c->u32[row];
    default: return c->u64[row];
    }
}

__int128 weir_decimal128(const weir_column *c, uint32_t row) {
    const uint8_t *v = (const uint8_t *)c->values + (size_t)row * (c->bits / 8u);
    switch (c->bits) {
    case 32: { int32_t x; memcpy(&x, v, 4); return x; }
    case 64: { int64_t x; memcpy(&x, v, 8); return x; }
    default: { __int128 x; memcpy(&x, v, 16); return x; }
    }
}

size_t weir_decimal_text(const weir_column *c, uint32_t row, char *text, size_t size) {
    /* The unscaled value as 32-bit limbs, little-endian, sign-extended to
     * 256 bits; then its magnitude's digits by long division. */
    size_t width = c->bits / 8u;
    const uint8_t *v = (const uint8_t *)c->values + (size_t)row * width;
    uint32_t limbs[8];
    uint8_t bytes[32];
    bool negative = (v[width - 1] & 0x80) != 0;
    memset(bytes, negative ? 0xFF : 0, sizeof bytes);
    memcpy(bytes, v, width);
    memcpy(limbs, bytes, sizeof limbs);
    if (negative) { /* two's complement negation */
        uint64_t carry = 1;
        for (int i = 0; i < 8; i++) {
            uint64_t x = (uint64_t)(uint32_t)~limbs[i] + carry;
            limbs[i] = (uint32_t)x;
            carry = x >> 32;
        }
    }
    /* 77 digits at most, plus zeros up to a scale of 127 either way. */
    char digits[160];
    size_t n = 0;
    for (;;) {
        uint64_t rem = 0;
        bool zero = true;
        for (int i = 7; i >= 0; i--) {
            uint64_t cur = (rem << 32) | limbs[i];
            limbs[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
            zero = zero && limbs[i] == 0;
        }
        digits[n++] = (char)('0' + rem);
        if (zero) break;
    }
    /* digits[] is least significant first; pad to scale + 1 digits. */
    int scale = c->scale;
    while (scale > 0 && n < (size_t)scale + 1) digits[n++] = '0';
    char out[320];
    size_t o = 0;
    if (negative) out[o++] = '-';
    for (size_t i = n; i-- > 0;) {
        out[o++] = digits[i];
        if (scale > 0 && i == (size_t)scale) out[o++] = '.';
    }
    for (int i = scale; i < 0; i++) out[o++] = '0'; /* negative scale: powers of ten */
    if (size > 0) {
        size_t copy = o < size - 1 ? o : size - 1;
        memcpy(text, out, copy);
        text[copy] = '\0';
    }
    return o;
}
