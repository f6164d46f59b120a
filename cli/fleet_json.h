/*
 * A small JSON reader for `kdispatch fleet`: rank 0 reads back the JSON every rank sent
 * (each rank's record embeds its subcommand's own --json output). A tree of values; a
 * missing key or a value of another type reads as the caller's default.
 */
#ifndef KD_FLEET_JSON_H
#define KD_FLEET_JSON_H

#include <stddef.h>
#include <stdio.h>

typedef enum fj_type { FJ_NULL = 0, FJ_BOOL, FJ_NUM, FJ_STR, FJ_ARR, FJ_OBJ } fj_type;

typedef struct fj {
    fj_type type;
    int boolean;
    double num;
    char *str;          /* FJ_STR */
    struct fj *items;   /* FJ_ARR / FJ_OBJ: n values */
    char **keys;        /* FJ_OBJ: n keys */
    int n;
} fj;

/* Parses len bytes (one JSON value, whitespace around it allowed); NULL with a message in
 * why (the byte offset and what was expected) if the text is not JSON. */
fj *fj_parse(const char *text, size_t len, char *why, size_t cap);
void fj_free(fj *v);

const fj *fj_get(const fj *obj, const char *key); /* NULL: absent or obj not an object */
const fj *fj_at(const fj *arr, int i);            /* NULL: out of range or not an array */
int fj_len(const fj *arr);                        /* items of an array, else 0 */
const char *fj_str(const fj *v, const char *dflt);
double fj_num(const fj *v, double dflt);
int fj_bool(const fj *v, int dflt);

/* Writes a value back as compact JSON (with kd_json's escaping). */
void fj_write(FILE *f, const fj *v);

#endif
