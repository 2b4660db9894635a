/*
 * weir_internal.h — what the helper's files share (not for plugins):
 * per-call allocations, and the mapping between `weir_column` trees and
 * weir:plugin@0.2.0's flattened type and array tables.
 */
#ifndef WEIR_INTERNAL_H
#define WEIR_INTERNAL_H

#include "plugin.h"
#include "weir.h"

/* ---- The config (weir_config.c) ---- */

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

/* Parses the node's config JSON into `*config`: NULL or an error. */
const char *config_parse(weir_config *config, const uint8_t *text, size_t len);
void config_free(weir_config *config);

/* ---- Arrow (weir_arrow.c, weir_arrow_write.c) ---- */

/* Nesting deeper than this is refused (the host refuses it too). */
#define MAX_DEPTH 64

/* WIT's index-type enum, in order, as weir types. */
extern const weir_type WEIR_INDEX_TYPES[8];

/* The children field indices of a field node's type (`*list`, pointing
 * into the type or at `one`, room for two), in the order its array node
 * lists its children, a dictionary's values excluded. Returns how many. */
size_t field_children(const weir_plugin_types_data_type_t *type, const uint32_t **list,
                      uint32_t *one);

/* Allocations that live until the current export returns. */
typedef struct weir_arena {
    void **blocks;
    size_t len;
} weir_arena;

/* `size` zeroed bytes owned by `arena`; NULL when out of memory. */
void *arena_alloc(weir_arena *arena, size_t size);
/* A NUL-terminated copy of a WIT string, owned by `arena`. */
const char *arena_string(weir_arena *arena, const plugin_string_t *text);
void arena_free(weir_arena *arena);

/* A schema's field nodes, growing (the host frees them after the call). */
typedef struct field_nodes {
    weir_plugin_types_field_node_t *ptr;
    size_t len, cap;
} field_nodes;

/* A column's array nodes, growing. */
typedef struct array_nodes {
    weir_plugin_types_array_node_t *ptr;
    size_t len, cap;
} array_nodes;

/* Field node `field` of `schema` as a type-only `weir_column`, and, when
 * `data` is not NULL, with the arrays of `data`'s node `node`. Booleans
 * are unpacked and everything allocated lands in `arena`. NULL or an
 * error message. */
const char *column_from_wit(const weir_plugin_types_schema_t *schema, uint32_t field,
                            const weir_plugin_types_column_data_t *data, uint32_t node,
                            weir_column *out, weir_arena *arena);

/* Appends `column`'s type tree to `nodes`; its root's index in `*root`. */
const char *field_to_wit(const weir_column *column, field_nodes *nodes, uint32_t *root);

/* Appends a copy of `column`'s arrays to `nodes`; its root's index in
 * `*root`. */
const char *array_to_wit(const weir_column *column, array_nodes *nodes, uint32_t *root);

/* Appends a deep copy of field node `field` of `schema` and its subtree to
 * `nodes`, children renumbered; its index in `*root`. */
const char *copy_field(const weir_plugin_types_schema_t *schema, uint32_t field,
                       field_nodes *nodes, uint32_t *root);

/* Bytes per value of a fixed-width type's value buffer (decimals,
 * intervals, views, a dictionary's keys …); 0 for the others. */
size_t value_width(const weir_column *column);

/* Points `column->values`, and the typed pointer that fits its type, at
 * `values`. */
void alias_values(weir_column *column, const void *values);

/* A deep copy of Arrow metadata. */
void copy_metadata(const plugin_list_tuple2_string_string_t *from,
                   plugin_list_tuple2_string_string_t *to);

/* Nulls in the first `len` bits of `validity` (0 without one). */
uint32_t count_nulls(const uint8_t *validity, uint32_t len);

/* Bytes of `len` bits. */
static inline size_t bitmap_bytes(uint64_t len) { return (size_t)((len + 7) / 8); }

/* ---- Batch, output, describe (weir_batch.c, weir_output.c, weir_describe.c) ---- */

/* The declared ports' names, owned by the helper. */
typedef struct port_table {
    char *inputs[WEIR_MAX_PORTS];
    uint32_t inputs_len;
    char *outputs[WEIR_MAX_PORTS];
    uint32_t outputs_len;
} port_table;

/* `weir_ports` under `config`, checked and copied into `*table` (its old
 * names freed). NULL or an error. */
const char *ports_declare(const weir_config *config, port_table *table);

struct weir_batch {
    weir_plugin_types_borrow_batch_t handle;
    uint32_t port;
    const char *port_name;
    uint32_t rows;
    bool have_schema;
    weir_plugin_types_schema_t schema;
    weir_plugin_types_column_data_t *fetched; /* freed after `weir_process` */
    size_t fetched_len;
    weir_arena arena; /* the `weir_column` trees handed out */
};

/* Frees what `weir_process` fetched. */
void batch_release(weir_batch *input);

/* A boolean column the plugin fills as bools: packed into Arrow's bits
 * once `weir_process` returns. */
typedef struct unpacked {
    size_t column;
} unpacked;

struct weir_output {
    uint32_t port;
    const port_table *ports;
    /* The first port's output, which owns the others (chained by `next`,
     * in the order they were asked for). */
    struct weir_output *first;
    struct weir_output *next;
    uint32_t rows;
    uint8_t *mask;
    weir_plugin_types_column_t *columns;
    size_t columns_len;
    plugin_string_t *drops;
    size_t drops_len;
    unpacked *booleans;
    size_t booleans_len;
};

/* Packs the booleans the plugin filled in and counts each new column's
 * nulls: the output as weir reads it. NULL or an error. */
const char *output_seal(weir_output *output);
void output_free(weir_output *output);

/* `weir_describe` over one input schema: the declared output in `*out`,
 * or `*known` false. */
const char *describe_one(const weir_plugin_types_schema_t *input, const weir_config *config,
                         const char *port, weir_plugin_types_schema_t *out, bool *known);

#endif /* WEIR_INTERNAL_H */
