/*
 * weir_config.c — the node's config: a small JSON reader for its
 * top-level keys (`weir_config_*` in weir.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir_internal.h"

/* ---- Config: a small JSON reader for the top-level keys -------------------------- */

typedef struct {
    const char *p;
    const char *end;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static void put_utf8(char **out, unsigned cp) {
    char *o = *out;
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    *out = o;
}

static bool hex4(cursor *c, unsigned *value) {
    if (c->end - c->p < 4) return false;
    *value = 0;
    for (int i = 0; i < 4; i++) {
        char h = *c->p++;
        *value <<= 4;
        if (h >= '0' && h <= '9') *value |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f') *value |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') *value |= (unsigned)(h - 'A' + 10);
        else return false;
    }
    return true;
}

/* Parses a JSON string at c->p (on the opening quote) into a malloc'ed,
 * NUL-terminated UTF-8 string; NULL on malformed input. */
static char *parse_string(cursor *c) {
    if (c->p >= c->end || *c->p != '"') return NULL;
    c->p++;
    /* Decoded text is never longer than the escaped text. */
    char *out = malloc((size_t)(c->end - c->p) + 1), *o = out;
    if (out == NULL) return NULL;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch != '\\') {
            *o++ = ch;
            continue;
        }
        if (c->p >= c->end) break;
        char esc = *c->p++;
        unsigned cp;
        switch (esc) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (!hex4(c, &cp)) goto bad;
            if (cp >= 0xD800 && cp < 0xDC00 && c->end - c->p >= 6 && c->p[0] == '\\' &&
                c->p[1] == 'u') {
                unsigned low;
                c->p += 2;
                if (!hex4(c, &low) || low < 0xDC00 || low > 0xDFFF) goto bad;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            put_utf8(&o, cp);
            break;
        default: goto bad;
        }
    }
    if (c->p >= c->end) goto bad;
    c->p++; /* closing quote */
    *o = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* Skips any JSON value (nested arrays and objects included). */
static bool skip_value(cursor *c) {
    skip_space(c);
    if (c->p >= c->end) return false;
    if (*c->p == '"') {
        char *s = parse_string(c);
        free(s);
        return s != NULL;
    }
    if (*c->p == '[' || *c->p == '{') {
        int depth = 0;
        while (c->p < c->end) {
            if (*c->p == '"') {
                char *s = parse_string(c);
                if (s == NULL) return false;
                free(s);
                continue;
            }
            if (*c->p == '[' || *c->p == '{') depth++;
            if (*c->p == ']' || *c->p == '}') depth--;
            c->p++;
            if (depth == 0) return true;
        }
        return false;
    }
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']') c->p++;
    return true;
}

void config_free(weir_config *config) {
    for (size_t i = 0; i < config->len; i++) {
        free(config->entries[i].key);
        free(config->entries[i].string);
    }
    free(config->entries);
    free(config->json);
    memset(config, 0, sizeof *config);
}

const char *config_parse(weir_config *config, const uint8_t *text, size_t len) {
    config->json = malloc(len + 1);
    if (config->json == NULL) return "out of memory";
    memcpy(config->json, text, len);
    config->json[len] = '\0';
    cursor c = {config->json, config->json + len};
    skip_space(&c);
    if (c.p >= c.end || *c.p != '{') return "config: expected a JSON object";
    c.p++;
    for (;;) {
        skip_space(&c);
        if (c.p < c.end && *c.p == '}') return NULL;
        char *key = parse_string(&c);
        if (key == NULL) return "config: malformed JSON (expected a key)";
        skip_space(&c);
        if (c.p >= c.end || *c.p != ':') {
            free(key);
            return "config: malformed JSON (expected ':')";
        }
        c.p++;
        skip_space(&c);
        config_entry entry = {key, JSON_OTHER, NULL, 0, false};
        const char *start = c.p;
        if (c.p < c.end && *c.p == '"') {
            entry.kind = JSON_STRING;
            entry.string = parse_string(&c);
            if (entry.string == NULL) {
                free(key);
                return "config: malformed JSON string";
            }
        } else if (!skip_value(&c)) {
            free(key);
            return "config: malformed JSON value";
        } else if (c.p - start == 4 && memcmp(start, "true", 4) == 0) {
            entry.kind = JSON_BOOL;
            entry.boolean = true;
        } else if (c.p - start == 5 && memcmp(start, "false", 5) == 0) {
            entry.kind = JSON_BOOL;
        } else if (c.p - start == 4 && memcmp(start, "null", 4) == 0) {
            entry.kind = JSON_NULL;
        } else if (*start == '-' || (*start >= '0' && *start <= '9')) {
            entry.kind = JSON_NUMBER;
            entry.number = strtod(start, NULL);
        }
        config_entry *grown = realloc(config->entries, (config->len + 1) * sizeof *grown);
        if (grown == NULL) {
            free(key);
            free(entry.string);
            return "out of memory";
        }
        config->entries = grown;
        config->entries[config->len++] = entry;
        skip_space(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}') return NULL;
        return "config: malformed JSON (expected ',' or '}')";
    }
}

static const config_entry *config_find(const weir_config *config, const char *key) {
    for (size_t i = 0; i < config->len; i++)
        if (strcmp(config->entries[i].key, key) == 0) return &config->entries[i];
    return NULL;
}

static void set_error(const char **error, const char *key, const char *want) {
    if (error != NULL && *error == NULL)
        *error = weir_error("config key `%s`: expected %s", key, want);
}

const char *weir_config_string(const weir_config *config, const char *key, const char *fallback,
                               const char **error) {
    const config_entry *e = config_find(config, key);
    if (e == NULL) return fallback;
    if (e->kind != JSON_STRING) {
        set_error(error, key, "a string");
        return fallback;
    }
    return e->string;
}

double weir_config_number(const weir_config *config, const char *key, double fallback,
                          const char **error) {
    const config_entry *e = config_find(config, key);
    if (e == NULL) return fallback;
    if (e->kind != JSON_NUMBER) {
        set_error(error, key, "a number");
        return fallback;
    }
    return e->number;
}

bool weir_config_bool(const weir_config *config, const char *key, bool fallback,
                      const char **error) {
    const config_entry *e = config_find(config, key);
    if (e == NULL) return fallback;
    if (e->kind != JSON_BOOL) {
        set_error(error, key, "true or false");
        return fallback;
    }
    return e->boolean;
}

const char *weir_config_only(const weir_config *config, const char *const *known) {
    for (size_t i = 0; i < config->len; i++) {
        bool found = false;
        for (const char *const *k = known; *k != NULL && !found; k++)
            found = strcmp(*k, config->entries[i].key) == 0;
        if (!found) return weir_error("unknown config key `%s`", config->entries[i].key);
    }
    return NULL;
}

const char *weir_config_json(const weir_config *config) { return config->json; }

