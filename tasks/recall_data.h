/* recall_data.h: the data-backed variants of the `recall` kind (Based-format
   SWDE / FDA, RULER QA over SQuAD / HotpotQA files); the synthetic variants
   live in recall.c, which dispatches here. */
#ifndef HYMEVAL_RECALL_DATA_H
#define HYMEVAL_RECALL_DATA_H

#include "task.h"

/* variant: "swde", "fda", "qa_squad", "qa_hotpot". Builds REQ_GENERATE
   examples with targets; fields are documented in docs/tasks/recall.md. */
int recall_data_validate(const TaskDef *t, const char *variant, Err *err);
int recall_data_build(const TaskDef *t, const char *variant, const Tokenizer *tok, ExampleList *out, Err *err);
/* headline metric: "contains" for swde/fda, "string_match_part" for qa */
int recall_data_score(const TaskDef *t, const char *variant, const Example *ex, const Prediction *p, Scores *out,
                      Err *err);
/* The field names these variants accept (NULL-terminated). */
extern const char *const recall_data_fields[];

#endif
