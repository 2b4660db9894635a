/*
 * weir_describe.c — `weir_describe`: the input schema as `weir_column`s, the declared
 * output as the input's field nodes, changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir_internal.h"

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
    const char *port;
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

const char *weir_describe_port(const weir_output_schema *output) { return output->port; }

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
const char *describe_one(const weir_plugin_types_schema_t *input, const weir_config *config,
                         const char *port, weir_plugin_types_schema_t *out, bool *known) {
    weir_arena arena = {NULL, 0};
    weir_schema schema = {NULL, (uint32_t)input->columns.len};
    weir_output_schema d = {port, NULL, 0, false, {NULL, 0, 0}, {NULL, 0}};
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
