/* registry.c: the task kinds hymeval knows, by name. */
#include <string.h>

#include "kinds.h"

static const TaskKind *const all_kinds[] = {
    &kind_niah,
    &kind_squad_c,
    &kind_recall,
    &kind_multiple_choice,
    &kind_cache,
    &kind_rope_drift,
    &kind_erf,
    &kind_throughput,
    &kind_niah_shift,
    NULL,
};

const TaskKind *task_kind_find(const char *name) {
    for (int i = 0; all_kinds[i]; i++)
        if (strcmp(all_kinds[i]->name, name) == 0) return all_kinds[i];
    return NULL;
}

const TaskKind *const *task_kinds(void) { return all_kinds; }
