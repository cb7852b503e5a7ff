/* niah_shift.c: the `niah_shift` measurement kind (DESIGN.md §5, RoPE
   drift, last bullet; docs/tasks/measurements.md): the accuracy of one NIAH
   task with every position id shifted by Δ (meta tokens included), per
   precision mode. RoPE is relative, so in exact arithmetic a shift changes
   nothing; any change in accuracy is numerics alone.

   The NIAH task is a nested definition (field "niah", any niah field),
   built and scored by the niah kind itself, so at Δ = 0 in FP32 the
   examples, prompts and greedy answers are those of a plain niah task with
   the same fields and seed. There is one example per (mode, Δ, NIAH
   example), group "<mode>@<Δ>": the summary gives the accuracy per (mode,
   Δ) with n and its standard error, and `compare` pairs the examples.

   Generation runs on the run's device (both backends take the model's
   position offset: the CPU forward and the CUDA backend's RoPE positions),
   greedily, with the NIAH example's stop strings and token budget. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "erf.h"
#include "generate.h"
#include "kinds.h"
#include "model.h"
#include "task.h"

static const char *const shift_fields[] = {"niah", "shifts", "modes", NULL};
static const int default_shifts[] = {0, 1024, 16384};
enum { MAX_SHIFT = 1 << 24 };

typedef struct {
    TaskDef niah;        /* the nested definition (json points into the task's) */
    int *shifts, n_shifts;
    char **modes;
    int n_modes;
} ShiftParams;

static void params_free(ShiftParams *p) {
    free(p->shifts);
    strv_free(p->modes, p->n_modes);
    memset(p, 0, sizeof *p);
}

static int params_read(const TaskDef *t, ShiftParams *p, Err *err) {
    memset(p, 0, sizeof *p);
    if (task_nested(t, "niah", &kind_niah, &p->niah, err) ||
        measure_int_list(t, "shifts", default_shifts, 3, 0, MAX_SHIFT, 0, &p->shifts, &p->n_shifts, err) ||
        measure_modes(t, &p->modes, &p->n_modes, err))
        goto fail;
    return 0;
fail:
    params_free(p);
    return -1;
}

static int shift_validate(const TaskDef *t, Err *err) {
    ShiftParams p;
    if (params_read(t, &p, err)) return -1;
    params_free(&p);
    return 0;
}

/* A deep copy of a NIAH example as the (mode, Δ) example; its needle depth
   goes to extra, not to `depth` (which would make heatmap cells of every
   mode and shift mixed together). */
static int copy_example(const Example *src, const char *mode, int shift, Example *dst, Err *err) {
    dst->request = REQ_MEASURE;
    snprintf(dst->id, sizeof dst->id, "%s@%d/%.100s", mode, shift, src->id);
    snprintf(dst->group, sizeof dst->group, "%s@%d", mode, shift);
    dst->prompt = xstrdup(src->prompt);
    dst->max_new_tokens = src->max_new_tokens;
    dst->add_bos = src->add_bos;
    dst->target_tokens = src->target_tokens;
    dst->prompt_tokens = src->prompt_tokens;
    dst->needle_token_pos = src->needle_token_pos;
    dst->needle_token_len = src->needle_token_len;
    int bad = !dst->prompt;
    for (int i = 0; i < src->n_stop && !bad; i++) bad = strv_push(&dst->stop, &dst->n_stop, src->stop[i]);
    for (int i = 0; i < src->n_targets && !bad; i++) bad = strv_push(&dst->targets, &dst->n_targets, src->targets[i]);
    dst->extra = src->extra ? cJSON_Duplicate(src->extra, 1) : cJSON_CreateObject();
    if (bad || !dst->extra) return err_set(err, "out of memory");
    cJSON_AddStringToObject(dst->extra, "mode", mode);
    cJSON_AddNumberToObject(dst->extra, "shift", shift);
    cJSON_AddStringToObject(dst->extra, "niah_id", src->id);
    if (src->depth >= 0) cJSON_AddNumberToObject(dst->extra, "depth", src->depth);
    return 0;
}

static int shift_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    ShiftParams p;
    if (params_read(t, &p, err)) return -1;
    ExampleList base = {0};
    int rc = kind_niah.build(&p.niah, tok, &base, err);
    int n = p.niah.limit > 0 && p.niah.limit < base.n ? p.niah.limit : base.n;
    for (int mi = 0; rc == 0 && mi < p.n_modes; mi++)
        for (int si = 0; rc == 0 && si < p.n_shifts; si++)
            for (int i = 0; rc == 0 && i < n; i++) {
                Example *ex = examples_push(out, err);
                rc = ex ? copy_example(&base.items[i], p.modes[mi], p.shifts[si], ex, err) : -1;
            }
    examples_free(&base);
    params_free(&p);
    return rc;
}

/* Greedy generation of ex's prompt with every position id + shift, encoded
   and decoded as `hymeval run` does a generation example: on the run's
   device (env->backend_at) when the run offers one, else on m's CPU forward. */
static int generate_shifted(const MeasureEnv *env, HymbaModel *m, int shift, const Example *ex, GenerateResult *res,
                            int *n_prompt, Err *err) {
    int saved_offset = m->position_offset;
    const HymbaObserver *saved_obs = m->observer;
    m->position_offset = shift;  /* both backends read it: RoPE positions, and the meta prefix is redone */
    m->observer = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = -1;
    Backend *own = NULL, *b = measure_backend_on(env, m, &own, err);
    if (b && tokenizer_encode(m->tok, ex->prompt, strlen(ex->prompt), ex->add_bos, &ids, &n_ids, err) == 0) {
        GenerateOptions opt = {ex->max_new_tokens, (const char *const *)ex->stop, ex->n_stop, 1, NULL, NULL};
        rc = generate_greedy(b, ids, (int)n_ids, &opt, res, err);
        *n_prompt = (int)n_ids;
    }
    backend_close(own);
    free(ids);
    m->position_offset = saved_offset;
    m->observer = saved_obs;
    return rc;
}

static int shift_measure(const TaskDef *t, const MeasureEnv *env, const Example *ex, Scores *out, cJSON **extra,
                         Err *err) {
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(ex->extra, "mode");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(ex->extra, "shift");
    Precision mode;
    if (!cJSON_IsString(jm) || !cJSON_IsNumber(js) || precision_parse(jm->valuestring, &mode))
        return err_set(err, "niah_shift example %s: no mode/shift", ex->id);
    int shift = (int)js->valuedouble, owned = 0, n_prompt = 0;
    ShiftParams p;
    if (params_read(t, &p, err)) return -1;
    HymbaModel *m = measure_model_at(env, mode, &owned, err);
    GenerateResult res = {0};
    int rc = -1;
    if (m && !m->tok) {
        err_set(err, "%s has no tokenizer.json", m->dir);
    } else if (m && generate_shifted(env, m, shift, ex, &res, &n_prompt, err) == 0) {
        Prediction pred = {res.text ? res.text : "", NULL, NULL};
        rc = kind_niah.score(&p.niah, ex, &pred, out, err);
    }
    if (rc == 0) {
        cJSON *o = cJSON_Duplicate(ex->extra, 1);
        cJSON_AddStringToObject(o, "prediction", res.text ? res.text : "");
        cJSON_AddNumberToObject(o, "prompt_tokens", n_prompt);
        cJSON_AddNumberToObject(o, "generated_tokens", res.n_ids);
        /* the position ids the run used: the first meta token's, and the last token fed */
        cJSON_AddNumberToObject(o, "first_position", shift);
        cJSON_AddNumberToObject(o, "last_position",
                                (double)shift + m->cfg.n_meta + n_prompt + (res.n_ids > 0 ? res.n_ids - 1 : 0) - 1);
        *extra = o;
    }
    generate_result_free(&res);
    if (owned) model_free(m);
    params_free(&p);
    return rc;
}

const TaskKind kind_niah_shift = {
    .name = "niah_shift",
    .fields = shift_fields,
    .validate = shift_validate,
    .build = shift_build,
    .score = measure_no_score,
    .measure = shift_measure,
};
