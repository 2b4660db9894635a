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
static port_table the_ports;

/* One input port, "in"; one output port, "out". */
__attribute__((weak)) const char *weir_ports(const weir_config *config, weir_port_names *ports) {
    (void)config;
    ports->inputs[0] = "in";
    ports->outputs[0] = "out";
    ports->inputs_len = ports->outputs_len = 1;
    return NULL;
}

static void ports_free(port_table *table) {
    for (uint32_t i = 0; i < table->inputs_len; i++) free(table->inputs[i]);
    for (uint32_t i = 0; i < table->outputs_len; i++) free(table->outputs[i]);
    table->inputs_len = table->outputs_len = 0;
}

/* Copies `n` names (the host checks that they are identifiers and unique). */
static const char *copy_names(const char *const *names, uint32_t n, char **into) {
    for (uint32_t i = 0; i < n; i++) {
        if (names[i] == NULL) return "weir_ports: a port has no name";
        if ((into[i] = strdup(names[i])) == NULL) return "out of memory";
    }
    return NULL;
}

const char *ports_declare(const weir_config *config, port_table *table) {
    ports_free(table);
    weir_port_names declared = {{NULL}, 0, {NULL}, 0};
    const char *error = weir_ports(config, &declared);
    if (error == NULL && (declared.inputs_len > WEIR_MAX_PORTS || declared.outputs_len > WEIR_MAX_PORTS))
        error = weir_error("weir_ports: at most %d ports each way", WEIR_MAX_PORTS);
    if (error == NULL) {
        table->inputs_len = declared.inputs_len;
        memset(table->inputs, 0, sizeof table->inputs);
        error = copy_names(declared.inputs, declared.inputs_len, table->inputs);
    }
    if (error == NULL) {
        table->outputs_len = declared.outputs_len;
        memset(table->outputs, 0, sizeof table->outputs);
        error = copy_names(declared.outputs, declared.outputs_len, table->outputs);
    }
    return error;
}

/* `names` as a WIT list of strings, into `*list`. */
static bool names_to_wit(char *const *names, uint32_t n, plugin_list_string_t *list) {
    list->ptr = calloc(n + 1, sizeof(plugin_string_t));
    if (list->ptr == NULL) return false;
    for (uint32_t i = 0; i < n; i++) plugin_string_dup(&list->ptr[i], names[i]);
    list->len = n;
    return true;
}

bool exports_weir_plugin_transform_ports(plugin_string_t *config,
                                         exports_weir_plugin_transform_port_names_t *ret,
                                         plugin_string_t *err) {
    weir_config parsed = {0};
    port_table table = {{NULL}, 0, {NULL}, 0};
    const char *error = config_parse(&parsed, config->ptr, config->len);
    plugin_string_free(config);
    if (error == NULL) error = ports_declare(&parsed, &table);
    if (error == NULL && (!names_to_wit(table.inputs, table.inputs_len, &ret->inputs) ||
                          !names_to_wit(table.outputs, table.outputs_len, &ret->outputs)))
        error = "out of memory";
    ports_free(&table);
    config_free(&parsed);
    return error == NULL || fail(err, error);
}

bool exports_weir_plugin_transform_init(plugin_string_t *config, plugin_string_t *err) {
    config_free(&the_config);
    const char *error = config_parse(&the_config, config->ptr, config->len);
    plugin_string_free(config);
    if (error == NULL) error = ports_declare(&the_config, &the_ports);
    if (error == NULL) error = weir_init(&the_config);
    return error == NULL || fail(err, error);
}

/* Each output port's schema: `weir_describe` over the first input port's. */
static const char *describe_ports(const exports_weir_plugin_transform_list_port_schema_t *inputs,
                                  const weir_config *config, const port_table *table,
                                  exports_weir_plugin_transform_port_schema_t *out) {
    const char *error = NULL;
    for (uint32_t i = 0; error == NULL && i < table->outputs_len; i++) {
        plugin_string_dup(&out[i].name, table->outputs[i]);
        bool known = false;
        if (inputs->len > 0 && inputs->ptr[0].schema.is_some)
            error = describe_one(&inputs->ptr[0].schema.val, config, table->outputs[i],
                                 &out[i].schema.val, &known);
        out[i].schema.is_some = known;
    }
    return error;
}

bool exports_weir_plugin_transform_describe(exports_weir_plugin_transform_list_port_schema_t *inputs,
                                            plugin_string_t *config,
                                            exports_weir_plugin_transform_list_port_schema_t *ret,
                                            plugin_string_t *err) {
    weir_config parsed = {0};
    port_table table = {{NULL}, 0, {NULL}, 0};
    const char *error = config_parse(&parsed, config->ptr, config->len);
    plugin_string_free(config);
    if (error == NULL) error = ports_declare(&parsed, &table);
    exports_weir_plugin_transform_port_schema_t *out =
        error == NULL ? calloc(table.outputs_len + 1, sizeof *out) : NULL;
    if (error == NULL && out == NULL) error = "out of memory";
    if (error == NULL) error = describe_ports(inputs, &parsed, &table, out);
    uint32_t described = table.outputs_len;
    ports_free(&table);
    config_free(&parsed);
    exports_weir_plugin_transform_list_port_schema_free(inputs);
    if (error != NULL) {
        if (out != NULL) {
            exports_weir_plugin_transform_list_port_schema_t made = {out, described};
            exports_weir_plugin_transform_list_port_schema_free(&made);
        }
        return fail(err, error);
    }
    ret->ptr = out;
    ret->len = described;
    return true;
}

/* `output` as the WIT output of its port (its arrays handed over). */
static void output_to_wit(weir_output *output, weir_plugin_types_output_t *out) {
    out->port = output->port;
    out->data.tag = WEIR_PLUGIN_TYPES_OUTPUT_DATA_DERIVED;
    weir_plugin_types_derived_t *derived = &out->data.val.derived;
    if (output->mask != NULL) {
        derived->selection.is_some = true;
        derived->selection.val.tag = WEIR_PLUGIN_TYPES_SELECTION_MASK;
        derived->selection.val.val.mask.ptr = output->mask;
        derived->selection.val.val.mask.len = bitmap_bytes(output->rows);
    }
    derived->columns.ptr = output->columns;
    derived->columns.len = output->columns_len;
    derived->drop.ptr = output->drops;
    derived->drop.len = output->drops_len;
    free(output->booleans);
}

/* Frees the outputs of ports other than the first (not their arrays when
 * `handed` — the host frees those). */
static void outputs_free(weir_output *first, bool handed) {
    weir_output *next = first->next;
    while (next != NULL) {
        weir_output *o = next;
        next = o->next;
        if (!handed) output_free(o);
        free(o);
    }
    if (!handed) output_free(first);
}

bool exports_weir_plugin_transform_process(exports_weir_plugin_transform_port_t port,
                                           exports_weir_plugin_transform_borrow_batch_t input,
                                           exports_weir_plugin_transform_list_output_t *ret,
                                           plugin_string_t *err) {
    weir_batch batch = {input, port, port < the_ports.inputs_len ? the_ports.inputs[port] : "in",
                        weir_plugin_types_method_batch_num_rows(input), false, {0}, NULL, 0,
                        {NULL, 0}};
    weir_output output = {.ports = &the_ports, .rows = batch.rows};
    output.first = &output;
    const char *error = weir_process(&batch, &output);
    batch_release(&batch);
    if (error == NULL && batch.rows == 0) {
        /* No rows in, no rows out (a port's end is an empty batch). */
        outputs_free(&output, false);
        *ret = (exports_weir_plugin_transform_list_output_t){NULL, 0};
        return true;
    }
    size_t n = 0;
    for (weir_output *o = &output; error == NULL && o != NULL; o = o->next, n++) error = output_seal(o);
    weir_plugin_types_output_t *out = error == NULL ? calloc(n, sizeof *out) : NULL;
    if (out == NULL) {
        outputs_free(&output, false);
        return fail(err, error != NULL ? error : "out of memory");
    }
    n = 0;
    for (weir_output *o = &output; o != NULL; o = o->next) output_to_wit(o, &out[n++]);
    outputs_free(&output, true);
    /* The host frees all of it after the call returns. */
    ret->ptr = out;
    ret->len = n;
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
