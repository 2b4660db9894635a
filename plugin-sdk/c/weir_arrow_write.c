/*
 * weir_arrow_write.c — `weir_column` trees (a plugin's output columns, the
 * types `weir_describe` declares) into weir:plugin@0.2.0's flattened type
 * and array tables, and input fields copied as they are.
 */
#include <stdlib.h>
#include <string.h>

#include "weir_internal.h"

/* ---- weir_column -> WIT type ------------------------------------------------------ */

static bool grow(void **ptr, size_t *cap, size_t len, size_t size) {
    if (len < *cap) return true;
    size_t cap2 = *cap < 8 ? 8 : *cap * 2;
    void *grown = realloc(*ptr, cap2 * size);
    if (grown == NULL) return false;
    *ptr = grown;
    *cap = cap2;
    return true;
}

/* A new zeroed field node; its index in `*index`. */
static bool push_field(field_nodes *nodes, uint32_t *index) {
    if (!grow((void **)&nodes->ptr, &nodes->cap, nodes->len, sizeof *nodes->ptr)) return false;
    memset(&nodes->ptr[nodes->len], 0, sizeof *nodes->ptr);
    *index = (uint32_t)nodes->len++;
    return true;
}

static bool u32_list(plugin_list_u32_t *list, size_t len) {
    list->ptr = malloc((len + 1) * sizeof *list->ptr);
    list->len = len;
    return list->ptr != NULL;
}

static uint8_t wit_index_type(weir_type index) {
    for (uint8_t i = 0; i < 8; i++)
        if (WEIR_INDEX_TYPES[i] == index) return i;
    return 255;
}

/* The WIT type of `c`, children aside; false for a type that isn't one. */
static bool type_to_wit(const weir_column *c, weir_plugin_types_data_type_t *t) {
    static const uint8_t SIMPLE[] = {
        [WEIR_BOOLEAN] = WEIR_PLUGIN_TYPES_DATA_TYPE_BOOLEAN,
        [WEIR_INT8] = WEIR_PLUGIN_TYPES_DATA_TYPE_INT8,
        [WEIR_INT16] = WEIR_PLUGIN_TYPES_DATA_TYPE_INT16,
        [WEIR_INT32] = WEIR_PLUGIN_TYPES_DATA_TYPE_INT32,
        [WEIR_INT64] = WEIR_PLUGIN_TYPES_DATA_TYPE_INT64,
        [WEIR_UINT8] = WEIR_PLUGIN_TYPES_DATA_TYPE_UINT8,
        [WEIR_UINT16] = WEIR_PLUGIN_TYPES_DATA_TYPE_UINT16,
        [WEIR_UINT32] = WEIR_PLUGIN_TYPES_DATA_TYPE_UINT32,
        [WEIR_UINT64] = WEIR_PLUGIN_TYPES_DATA_TYPE_UINT64,
        [WEIR_FLOAT32] = WEIR_PLUGIN_TYPES_DATA_TYPE_FLOAT32,
        [WEIR_FLOAT64] = WEIR_PLUGIN_TYPES_DATA_TYPE_FLOAT64,
        [WEIR_UTF8] = WEIR_PLUGIN_TYPES_DATA_TYPE_UTF8,
        [WEIR_BINARY] = WEIR_PLUGIN_TYPES_DATA_TYPE_BINARY,
        [WEIR_DATE32] = WEIR_PLUGIN_TYPES_DATA_TYPE_DATE32,
        [WEIR_NULL] = WEIR_PLUGIN_TYPES_DATA_TYPE_NULL,
        [WEIR_FLOAT16] = WEIR_PLUGIN_TYPES_DATA_TYPE_FLOAT16,
        [WEIR_LARGE_UTF8] = WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_UTF8,
        [WEIR_LARGE_BINARY] = WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_BINARY,
        [WEIR_UTF8_VIEW] = WEIR_PLUGIN_TYPES_DATA_TYPE_UTF8_VIEW,
        [WEIR_BINARY_VIEW] = WEIR_PLUGIN_TYPES_DATA_TYPE_BINARY_VIEW,
        [WEIR_DATE64] = WEIR_PLUGIN_TYPES_DATA_TYPE_DATE64,
        [WEIR_STRUCT] = WEIR_PLUGIN_TYPES_DATA_TYPE_STRUCT,
    };
    memset(t, 0, sizeof *t);
    weir_plugin_types_decimal_type_t decimal = {c->precision, c->scale};
    switch (c->type) {
    case WEIR_FIXED_SIZE_BINARY:
        t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_FIXED_SIZE_BINARY;
        t->val.fixed_size_binary = c->size;
        return true;
    case WEIR_TIME32: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_TIME32; t->val.time32 = c->unit; return true;
    case WEIR_TIME64: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_TIME64; t->val.time64 = c->unit; return true;
    case WEIR_DURATION:
        t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_DURATION;
        t->val.duration = c->unit;
        return true;
    case WEIR_INTERVAL:
        t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_INTERVAL;
        t->val.interval = c->interval;
        return true;
    case WEIR_TIMESTAMP:
        t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_TIMESTAMP;
        t->val.timestamp.unit = c->unit;
        if (c->timezone != NULL) {
            t->val.timestamp.timezone.is_some = true;
            plugin_string_dup(&t->val.timestamp.timezone.val, c->timezone);
        }
        return true;
    case WEIR_DECIMAL:
        switch (c->bits) {
        case 32: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL32; t->val.decimal32 = decimal; break;
        case 64: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL64; t->val.decimal64 = decimal; break;
        case 0: /* unset: decimal128 */
        case 128: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL128; t->val.decimal128 = decimal; break;
        case 256: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_DECIMAL256; t->val.decimal256 = decimal; break;
        default: return false;
        }
        return true;
    case WEIR_LIST: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_LIST; return true;
    case WEIR_LARGE_LIST: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_LIST; return true;
    case WEIR_LIST_VIEW: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_LIST_VIEW; return true;
    case WEIR_LARGE_LIST_VIEW: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_LIST_VIEW; return true;
    case WEIR_FIXED_SIZE_LIST:
        t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_FIXED_SIZE_LIST;
        t->val.fixed_size_list.size = c->size;
        return true;
    case WEIR_MAP:
        t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_MAP;
        t->val.map.keys_sorted = c->keys_sorted;
        return true;
    case WEIR_DICTIONARY:
        t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_DICTIONARY;
        t->val.dictionary.index = wit_index_type(c->index);
        t->val.dictionary.ordered = c->ordered;
        return t->val.dictionary.index != 255;
    case WEIR_UNION:
        t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_UNION;
        t->val.union_.mode = c->dense ? WEIR_PLUGIN_TYPES_UNION_MODE_DENSE
                                      : WEIR_PLUGIN_TYPES_UNION_MODE_SPARSE;
        return true;
    case WEIR_RUN_END_ENCODED: t->tag = WEIR_PLUGIN_TYPES_DATA_TYPE_RUN_END_ENCODED; return true;
    default:
        if ((unsigned)c->type >= sizeof SIMPLE / sizeof SIMPLE[0] ||
            (SIMPLE[c->type] == 0 && c->type != WEIR_NULL))
            return false;
        t->tag = SIMPLE[c->type];
        return true;
    }
}

/* How many children a type must have: -1 for any number (struct, union). */
static int arity(weir_type type) {
    switch (type) {
    case WEIR_LIST: case WEIR_LARGE_LIST: case WEIR_LIST_VIEW: case WEIR_LARGE_LIST_VIEW:
    case WEIR_FIXED_SIZE_LIST: case WEIR_MAP:
        return 1;
    case WEIR_RUN_END_ENCODED: return 2;
    case WEIR_STRUCT: case WEIR_UNION: return -1;
    default: return 0;
    }
}

static const char *check_shape(const weir_column *c) {
    int n = arity(c->type);
    if (n >= 0 && c->n_children != (uint32_t)n)
        return weir_error("column `%s`: a %s has %d children, not %u", c->name ? c->name : "",
                          weir_type_name(c->type), n, c->n_children);
    if (c->n_children > 0 && c->children == NULL)
        return weir_error("column `%s`: n_children is %u but children is NULL",
                          c->name ? c->name : "", c->n_children);
    if (c->type == WEIR_DICTIONARY && c->dictionary == NULL)
        return weir_error("column `%s`: a dictionary without its values (`dictionary`)",
                          c->name ? c->name : "");
    if (c->type == WEIR_UNION && c->n_children > 0 && c->type_codes == NULL)
        return weir_error("column `%s`: a union without `type_codes`", c->name ? c->name : "");
    return NULL;
}

/* Points a WIT type at its children's node indices: `kids` (`n` of them,
 * in the order array nodes list children) and a dictionary's `values`.
 * Allocates the lists a struct or union holds (a union's type ids copied
 * from `type_ids`); false when out of memory. */
static bool place_children(weir_plugin_types_data_type_t *t, const uint32_t *kids, size_t n,
                           uint32_t values, const int8_t *type_ids) {
    switch (t->tag) {
    case WEIR_PLUGIN_TYPES_DATA_TYPE_LIST: t->val.list = kids[0]; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_LIST: t->val.large_list = kids[0]; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_LIST_VIEW: t->val.list_view = kids[0]; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_LARGE_LIST_VIEW: t->val.large_list_view = kids[0]; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_FIXED_SIZE_LIST: t->val.fixed_size_list.item = kids[0]; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_MAP: t->val.map.entries = kids[0]; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_DICTIONARY: t->val.dictionary.value = values; break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_RUN_END_ENCODED:
        t->val.run_end_encoded.run_ends = kids[0];
        t->val.run_end_encoded.values = kids[1];
        break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_STRUCT:
        if (!u32_list(&t->val.struct_, n)) return false;
        if (n > 0) memcpy(t->val.struct_.ptr, kids, n * sizeof *kids);
        break;
    case WEIR_PLUGIN_TYPES_DATA_TYPE_UNION:
        t->val.union_.type_ids = (plugin_list_s8_t){malloc(n + 1), n};
        if (!u32_list(&t->val.union_.children, n) || t->val.union_.type_ids.ptr == NULL)
            return false;
        if (n > 0) {
            memcpy(t->val.union_.children.ptr, kids, n * sizeof *kids);
            memcpy(t->val.union_.type_ids.ptr, type_ids, n);
        }
        break;
    default: break;
    }
    return true;
}

static const char *field_to(const weir_column *c, field_nodes *nodes, uint32_t *root, int depth) {
    if (depth > MAX_DEPTH) return "a type nested too deep";
    const char *error = check_shape(c);
    if (error != NULL) return error;
    uint32_t index;
    weir_plugin_types_data_type_t type;
    if (!type_to_wit(c, &type))
        return weir_error("column `%s`: not a type weir knows (%d)", c->name ? c->name : "",
                          (int)c->type);
    if (!push_field(nodes, &index)) {
        weir_plugin_types_data_type_free(&type);
        return "out of memory";
    }
    /* A WIT name can't be absent: a nested field without one is "item". */
    plugin_string_dup(&nodes->ptr[index].name, c->name != NULL ? c->name : "item");
    nodes->ptr[index].nullable = c->nullable || c->validity != NULL;
    uint32_t kids[c->n_children + 1];
    for (uint32_t i = 0; error == NULL && i < c->n_children; i++)
        error = field_to(&c->children[i], nodes, &kids[i], depth + 1);
    uint32_t values = 0;
    if (error == NULL && c->type == WEIR_DICTIONARY)
        error = field_to(c->dictionary, nodes, &values, depth + 1);
    if (error == NULL && !place_children(&type, kids, c->n_children, values, c->type_codes))
        error = "out of memory";
    if (error != NULL) {
        weir_plugin_types_data_type_free(&type);
        return error;
    }
    nodes->ptr[index].data_type = type;
    *root = index;
    return NULL;
}

const char *field_to_wit(const weir_column *column, field_nodes *nodes, uint32_t *root) {
    return field_to(column, nodes, root, 0);
}

/* ---- weir_column -> WIT arrays ----------------------------------------------------- */

/* The value buffer a plugin set on `c` (`values` or a typed pointer). */
static const void *values_of(const weir_column *c) {
    if (c->values != NULL) return c->values;
    const void *typed[] = {c->i8, c->i16, c->i32, c->i64, c->u8,  c->u16,
                           c->u32, c->u64, c->f32, c->f64, c->data};
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++)
        if (typed[i] != NULL) return typed[i];
    return NULL;
}

/* Appends a copy of `len` bytes at `bytes` (NULL: zeros) to a buffer list. */
static bool put_buffer(plugin_list_list_u8_t *buffers, const void *bytes, size_t len) {
    plugin_list_u8_t *b = &buffers->ptr[buffers->len++];
    b->ptr = malloc(len + 1);
    b->len = len;
    if (b->ptr == NULL) return false;
    if (len > 0) {
        if (bytes != NULL) memcpy(b->ptr, bytes, len);
        else memset(b->ptr, 0, len);
    }
    return true;
}

/* Bytes of the data buffers a view array refers to (each view past 12
 * bytes long names a buffer, an offset and a length). */
static size_t view_buffer_len(const weir_column *c, uint32_t buffer) {
    size_t need = 0;
    const uint8_t *views = c->values;
    for (uint32_t i = 0; views != NULL && i < c->len; i++) {
        const uint8_t *v = views + (size_t)i * 16;
        uint32_t len, index, offset;
        memcpy(&len, v, 4);
        if (len <= 12) continue;
        memcpy(&index, v + 8, 4);
        memcpy(&offset, v + 12, 4);
        if (index == buffer && (size_t)offset + len > need) need = (size_t)offset + len;
    }
    return need;
}

/* The buffers of `c` after its validity bitmap, copied. */
static bool put_buffers(const weir_column *c, plugin_list_list_u8_t *b) {
    size_t n = c->len;
    switch (c->type) {
    case WEIR_NULL: case WEIR_STRUCT: case WEIR_FIXED_SIZE_LIST: case WEIR_RUN_END_ENCODED:
        return true;
    case WEIR_BOOLEAN: {
        if (!put_buffer(b, NULL, bitmap_bytes(n))) return false;
        uint8_t *bits = b->ptr[b->len - 1].ptr;
        for (size_t i = 0; c->boolean != NULL && i < n; i++)
            if (c->boolean[i]) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
        return true;
    }
    case WEIR_UTF8: case WEIR_BINARY: case WEIR_LIST: case WEIR_MAP: {
        static const int32_t zero = 0;
        const int32_t *offsets = c->offsets != NULL ? c->offsets : &zero;
        size_t end = c->offsets != NULL ? (size_t)offsets[n] : 0;
        if (!put_buffer(b, offsets, c->offsets != NULL ? (n + 1) * 4 : 4)) return false;
        return (c->type != WEIR_UTF8 && c->type != WEIR_BINARY) || put_buffer(b, c->data, end);
    }
    case WEIR_LARGE_UTF8: case WEIR_LARGE_BINARY: case WEIR_LARGE_LIST: {
        static const int64_t zero = 0;
        const int64_t *offsets = c->large_offsets != NULL ? c->large_offsets : &zero;
        size_t end = c->large_offsets != NULL ? (size_t)offsets[n] : 0;
        if (!put_buffer(b, offsets, c->large_offsets != NULL ? (n + 1) * 8 : 8)) return false;
        return c->type == WEIR_LARGE_LIST || put_buffer(b, c->data, end);
    }
    case WEIR_LIST_VIEW:
        return put_buffer(b, c->offsets, n * 4) && put_buffer(b, c->sizes, n * 4);
    case WEIR_LARGE_LIST_VIEW:
        return put_buffer(b, c->large_offsets, n * 8) && put_buffer(b, c->large_sizes, n * 8);
    case WEIR_UTF8_VIEW: case WEIR_BINARY_VIEW:
        if (!put_buffer(b, c->values, n * 16)) return false;
        for (uint32_t i = 0; i < c->n_data_buffers; i++)
            if (!put_buffer(b, c->data_buffers[i], view_buffer_len(c, i))) return false;
        return true;
    case WEIR_UNION:
        return put_buffer(b, c->type_ids, n) && (!c->dense || put_buffer(b, c->offsets, n * 4));
    default:
        return put_buffer(b, values_of(c), n * value_width(c));
    }
}

static bool push_array(array_nodes *nodes, uint32_t *index) {
    if (!grow((void **)&nodes->ptr, &nodes->cap, nodes->len, sizeof *nodes->ptr)) return false;
    memset(&nodes->ptr[nodes->len], 0, sizeof *nodes->ptr);
    *index = (uint32_t)nodes->len++;
    return true;
}

static const char *array_to(const weir_column *c, array_nodes *nodes, uint32_t *root, int depth) {
    if (depth > MAX_DEPTH) return "a column nested too deep";
    const char *error = check_shape(c);
    if (error != NULL) return error;
    bool bitmap = c->validity != NULL && c->type != WEIR_NULL && c->type != WEIR_UNION &&
                  c->type != WEIR_RUN_END_ENCODED;
    uint32_t index;
    if (!push_array(nodes, &index)) return "out of memory";
    /* Validity, then at most two buffers, or a view array's data buffers. */
    plugin_list_list_u8_t buffers = {malloc((3 + c->n_data_buffers) * sizeof(plugin_list_u8_t)), 0};
    if (buffers.ptr == NULL) return "out of memory";
    bool ok = put_buffer(&buffers, bitmap ? c->validity : NULL, bitmap ? bitmap_bytes(c->len) : 0) &&
              put_buffers(c, &buffers);
    plugin_list_u32_t kids = {NULL, 0};
    if (ok && c->n_children > 0) ok = u32_list(&kids, c->n_children);
    if (!ok) {
        plugin_list_list_u8_free(&buffers);
        return "out of memory";
    }
    for (uint32_t i = 0; error == NULL && i < c->n_children; i++)
        error = array_to(&c->children[i], nodes, &kids.ptr[i], depth + 1);
    uint32_t values = 0;
    if (error == NULL && c->type == WEIR_DICTIONARY)
        error = array_to(c->dictionary, nodes, &values, depth + 1);
    /* `nodes` may have moved while the children were appended. */
    weir_plugin_types_array_node_t *node = &nodes->ptr[index];
    node->length = c->len;
    node->null_count = bitmap ? count_nulls(c->validity, c->len) : 0;
    node->buffers = buffers;
    node->children = kids;
    node->dictionary.is_some = c->type == WEIR_DICTIONARY;
    node->dictionary.val = values;
    *root = index;
    return error;
}

const char *array_to_wit(const weir_column *column, array_nodes *nodes, uint32_t *root) {
    return array_to(column, nodes, root, 0);
}

/* ---- Copying an input field's subtree ------------------------------------------------ */

void copy_metadata(const plugin_list_tuple2_string_string_t *from,
                   plugin_list_tuple2_string_string_t *to) {
    to->ptr = malloc((from->len + 1) * sizeof *to->ptr);
    to->len = to->ptr != NULL ? from->len : 0;
    for (size_t i = 0; i < to->len; i++) {
        plugin_string_dup_n(&to->ptr[i].f0, (const char *)from->ptr[i].f0.ptr, from->ptr[i].f0.len);
        plugin_string_dup_n(&to->ptr[i].f1, (const char *)from->ptr[i].f1.ptr, from->ptr[i].f1.len);
    }
}

static const char *copy_to(const weir_plugin_types_schema_t *s, uint32_t field, field_nodes *nodes,
                           uint32_t *root, int depth) {
    if (depth > MAX_DEPTH) return "a type nested too deep";
    if (field >= s->nodes.len) return "a malformed schema (a node index out of range)";
    const weir_plugin_types_field_node_t *f = &s->nodes.ptr[field];
    uint32_t index;
    if (!push_field(nodes, &index)) return "out of memory";
    weir_plugin_types_data_type_t t = f->data_type; /* copied, then its owned parts replaced */
    const uint32_t *kids;
    uint32_t pair[2];
    size_t n = field_children(&f->data_type, &kids, pair);
    uint32_t moved[n + 1];
    for (size_t i = 0; i < n; i++) {
        const char *error = copy_to(s, kids[i], nodes, &moved[i], depth + 1);
        if (error != NULL) return error;
    }
    uint32_t values = 0;
    if (t.tag == WEIR_PLUGIN_TYPES_DATA_TYPE_DICTIONARY) {
        const char *error = copy_to(s, t.val.dictionary.value, nodes, &values, depth + 1);
        if (error != NULL) return error;
    }
    /* `t` is a shallow copy: the lists it shares with the input are
     * replaced by copies of its own. */
    if (!place_children(&t, moved, n, values, f->data_type.val.union_.type_ids.ptr))
        return "out of memory";
    if (t.tag == WEIR_PLUGIN_TYPES_DATA_TYPE_TIMESTAMP && t.val.timestamp.timezone.is_some)
        plugin_string_dup_n(&t.val.timestamp.timezone.val,
                            (const char *)f->data_type.val.timestamp.timezone.val.ptr,
                            f->data_type.val.timestamp.timezone.val.len);
    weir_plugin_types_field_node_t *node = &nodes->ptr[index];
    plugin_string_dup_n(&node->name, (const char *)f->name.ptr, f->name.len);
    node->data_type = t;
    node->nullable = f->nullable;
    copy_metadata(&f->metadata, &node->metadata);
    *root = index;
    return NULL;
}

const char *copy_field(const weir_plugin_types_schema_t *schema, uint32_t field,
                       field_nodes *nodes, uint32_t *root) {
    return copy_to(schema, field, nodes, root, 0);
}
