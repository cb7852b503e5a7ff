/* example.c: examples, string arrays and score lists (task.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

Example *examples_push(ExampleList *list, Err *err) {
    if (list->n == list->cap) {
        int new_cap = list->cap ? list->cap * 2 : 16;
        Example *grown = realloc(list->items, sizeof *grown * (size_t)new_cap);
        if (!grown) {
            err_set(err, "out of memory adding example %d", list->n + 1);
            return NULL;
        }
        list->items = grown;
        list->cap = new_cap;
    }
    Example *ex = &list->items[list->n++];
    memset(ex, 0, sizeof *ex);
    ex->depth = -1;
    ex->needle_token_pos = -1;
    ex->add_bos = 1;
    return ex;
}

static void example_release(Example *ex) {
    free(ex->prompt);
    strv_free(ex->stop, ex->n_stop);
    strv_free(ex->targets, ex->n_targets);
    strv_free(ex->contexts, ex->n_choices);
    strv_free(ex->continuations, ex->n_choices);
    cJSON_Delete(ex->extra);
}

void examples_free(ExampleList *list) {
    for (int i = 0; i < list->n; i++) example_release(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = list->cap = 0;
}

char *xstrdup(const char *s) {
    if (!s) return NULL;
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy) memcpy(copy, s, len + 1);
    return copy;
}

int strv_push(char ***v, int *n, const char *s) {
    char *copy = xstrdup(s ? s : "");
    char **grown = copy ? realloc(*v, sizeof *grown * (size_t)(*n + 1)) : NULL;
    if (!grown) {
        free(copy);
        return -1;
    }
    grown[*n] = copy;
    *v = grown;
    (*n)++;
    return 0;
}

void strv_free(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Sets name to value (replacing an earlier value of the same name). A kind
   that adds more than MAX_METRICS names has a bug, which must not lose a
   metric silently, so that stops the program. */
void scores_add(Scores *s, const char *name, double value) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0) {
            s->value[i] = value;
            return;
        }
    if (s->n >= MAX_METRICS || strlen(name) >= sizeof s->name[0]) {
        fprintf(stderr, "hymeval: internal error: scores_add(\"%s\"): more than %d metrics or a name over %zu bytes\n",
                name, MAX_METRICS, sizeof s->name[0] - 1);
        abort();
    }
    snprintf(s->name[s->n], sizeof s->name[s->n], "%s", name);
    s->value[s->n++] = value;
}
