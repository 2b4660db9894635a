/*
 * Test plugin for named ports in the C helper (the twin of
 * tests/plugins/{js,python}-ports).
 *
 * Input ports `a` and `b`, output ports `kept` and `negative`. Every row
 * gains `from`, the name of the port it came in by; rows with `n` >= 0
 * leave by `kept`, the others (negative or null) by `negative`. Each input
 * port must end exactly once, after its last batch: `weir_finish` fails
 * otherwise.
 */
#include <stdlib.h>
#include <string.h>

#include "weir.h"

static bool ended[2];

const char *weir_ports(const weir_config *config, weir_port_names *ports) {
    (void)config;
    *ports = (weir_port_names){{"a", "b"}, 2, {"kept", "negative"}, 2};
    return NULL;
}

const char *weir_describe(const weir_schema *input, const weir_config *config,
                          weir_output_schema *output) {
    (void)input;
    (void)config;
    return weir_describe_add(output, &(weir_column){.name = "from", .type = WEIR_UTF8, .nullable = true});
}

const char *weir_init(const weir_config *config) {
    (void)config;
    return NULL;
}

const char *weir_process(weir_batch *input, weir_output *output) {
    uint32_t port;
    const char *name = weir_input_port(input, &port);
    if (weir_port_ended(input)) {
        if (ended[port]) return weir_error("port %s ended twice", name);
        ended[port] = true;
        return NULL;
    }
    if (ended[port]) return weir_error("a batch on %s after it ended", name);
    weir_column n;
    const char *error = weir_column_get(input, "n", WEIR_INT64, &n);
    if (error != NULL) return error;
    weir_output *negative = weir_output_to(output, "negative");
    uint8_t *kept = weir_keep_mask(output);
    uint8_t *rejected = negative != NULL ? weir_keep_mask(negative) : NULL;
    if (kept == NULL || rejected == NULL) return "out of memory";
    uint32_t rows = weir_num_rows(input);
    const char **from = malloc((rows + 1) * sizeof *from);
    if (from == NULL) return "out of memory";
    for (uint32_t row = 0; row < rows; row++) {
        weir_bit_set(weir_valid(&n, row) && n.i64[row] >= 0 ? kept : rejected, row);
        from[row] = name;
    }
    error = weir_add_utf8(output, "from", from);
    if (error == NULL) error = weir_add_utf8(negative, "from", from);
    free(from);
    return error;
}

const char *weir_finish(void) {
    if (!ended[0] || !ended[1]) return "ports a and b did not both end";
    return NULL;
}
