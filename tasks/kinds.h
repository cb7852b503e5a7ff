/* kinds.h: the task kinds the registry knows (one file each). */
#ifndef HYMEVAL_KINDS_H
#define HYMEVAL_KINDS_H

#include "task.h"

extern const TaskKind kind_niah;             /* tasks/niah.c */
extern const TaskKind kind_recall;           /* tasks/recall.c (+ recall_data.c) */
extern const TaskKind kind_squad_c;          /* tasks/squad_c.c */
extern const TaskKind kind_multiple_choice;  /* tasks/multiple_choice.c */
/* measurement kinds (REQ_MEASURE, docs/tasks/measurements.md) */
extern const TaskKind kind_cache;            /* tasks/cache_kind.c */
extern const TaskKind kind_rope_drift;       /* tasks/rope_drift.c */
extern const TaskKind kind_erf;              /* tasks/erf.c */
extern const TaskKind kind_throughput;       /* tasks/throughput_kind.c */
extern const TaskKind kind_niah_shift;       /* tasks/niah_shift.c */

#endif
