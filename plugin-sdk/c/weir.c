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
