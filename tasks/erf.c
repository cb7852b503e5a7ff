/* erf.c: the `erf` measurement kind (DESIGN.md §5, research/eval-anchors.md
   §3, docs/tasks/measurements.md): how far back the model looks, under three
   definitions, on seeded sequences of each length:
     erf_hymba      the Hymba paper's Eq. 5: the last token's attention-
                    weighted mean distance, averaged over heads and over
                    layers with weight 2(N-n+1)/(N(N+1)); attention heads use
                    their softmax row, SSM heads the normalised hidden-
                    attention row |alpha_{S,s}|;
     mmd            DeciMamba's mean distance of each SSM layer's hidden-
                    attention row;
     erf95_perturb  replace the token at t-d, measure the relative L2 change
                    of the final hidden state at t; the smallest d holding 95 %
                    of the total influence.
   Also the shared helpers of the measurement kinds and effective_length()
   (erf.h). Everything runs through a backend's forward with the model's
   observer (engine/observe.h): rows are accumulated as the forward produces
   them, never stored as a matrix. */
#include "erf.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "haystack.h"
#include "observe.h"

/* ---------------------------------------------------------------- effective length */

typedef struct {
    int length;
    double acc;
} LenAcc;

static int by_len(const void *a, const void *b) {
    const LenAcc *x = a, *y = b;
    return (x->length > y->length) - (x->length < y->length);
}

double effective_length(const int *lengths, const double *accuracy, int n, double threshold, int relative) {
    if (n <= 0) return 0;
    LenAcc *v = malloc(sizeof *v * (size_t)n);
    if (!v) return 0;
    for (int i = 0; i < n; i++) v[i] = (LenAcc){lengths[i], accuracy[i]};
    qsort(v, (size_t)n, sizeof *v, by_len);
    /* merge equal lengths into their mean */
    int u = 0;
    for (int i = 0; i < n;) {
        int j = i;
        double sum = 0;
        while (j < n && v[j].length == v[i].length) sum += v[j++].acc;
        v[u++] = (LenAcc){v[i].length, sum / (j - i)};
        i = j;
    }
    double limit = relative ? threshold * v[0].acc : threshold;
    double eff = 0;
    if (!(relative && v[0].acc <= 0)) {
        for (int i = 0; i < u; i++) {
            int pass = relative ? v[i].acc >= limit : v[i].acc > limit;
            if (!pass) break;
            eff = v[i].length;
        }
    }
    free(v);
    return eff;
}

/* ---------------------------------------------------------------- shared helpers */

const char *const measure_sources[] = {"prose", "random", NULL};

static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t measure_seed(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t s = seed ^ (a * 0x9e3779b97f4a7c15ull);
    uint64_t x = splitmix(&s);
    s = x ^ (b * 0xc2b2ae3d27d4eb4full);
    return splitmix(&s);
}

int measure_sequence(const HymbaModel *m, const char *source, uint64_t seed, int length, int32_t **ids, Err *err) {
    int V = m->cfg.vocab_size;
    int32_t *out = malloc(sizeof *out * (size_t)(length > 0 ? length : 1));
    *ids = NULL;
    if (!out) return err_set(err, "out of memory for a sequence of %d tokens", length);
    if (strcmp(source, "random") == 0) {
        uint64_t s = seed;
        for (int i = 0; i < length; i++) {
            uint64_t r = splitmix(&s);
            out[i] = V > 3 ? (int32_t)(3 + r % (uint64_t)(V - 3)) : (int32_t)(r % (uint64_t)V);
        }
        if (length > 0 && m->cfg.bos_id >= 0 && m->cfg.bos_id < V) out[0] = m->cfg.bos_id;
        *ids = out;
        return 0;
    }
    if (!m->tok) {
        free(out);
        return err_set(err, "source \"prose\" needs the model's tokenizer.json (or use source \"random\")");
    }
    HaystackSpec spec = {.kind = HAY_PROSE, .seed = seed};
    Haystack *h = haystack_open(&spec, err);
    if (!h) {
        free(out);
        return -1;
    }
    size_t sentences = (size_t)length / 8 + 8;
    int rc = -1;
    for (int tries = 0; tries < 40; tries++) {
        StrBuf text = {0};
        int32_t *enc = NULL;
        size_t count = 0;
        if (haystack_render(h, sentences, 0, NULL, 0, &text, NULL, err) ||
            tokenizer_encode(m->tok, text.s ? text.s : "", text.len, 1, &enc, &count, err)) {
            sb_free(&text);
            break;
        }
        sb_free(&text);
        if (count >= (size_t)length) {
            memcpy(out, enc, sizeof *out * (size_t)length);
            free(enc);
            rc = 0;
            break;
        }
        free(enc);
        sentences *= 2;
    }
    haystack_close(h);
    if (rc) {
        free(out);
        return err->msg[0] ? -1 : err_set(err, "could not make %d tokens of prose", length);
    }
    *ids = out;
    return 0;
}

HymbaModel *measure_model_at(const MeasureEnv *env, Precision p, int *owned, Err *err) {
    *owned = 0;
    if (env->model->precision == p) return env->model;
    if (env->model_at) return env->model_at(env->user, (int)p, err);
    HymbaModel *m = model_load(env->model->dir, p, err);
    *owned = m != NULL;
    return m;
}

Backend *measure_backend_on(const MeasureEnv *env, HymbaModel *m, Backend **owned, Err *err) {
    *owned = NULL;
    if (!env->backend_at) return *owned = backend_cpu_open(m, err);
    Backend *b = env->backend_at(env->user, (int)m->precision, err);
    if (b && b->model != m) {
        err_set(err, "internal error: the run's backend at %s is on another model", precision_name(m->precision));
        return NULL;
    }
    return b;
}

int measure_no_score(const TaskDef *t, const Example *ex, const Prediction *p, Scores *out, Err *err) {
    (void)p, (void)out;
    return err_set(err, "task %s example %s: a measurement kind (%s) is scored by its measure(), not score()",
                   t->name, ex->id, t->kind);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int measure_int_list(const TaskDef *t, const char *field, const int *fallback, int n_fallback, int min, int max,
                     int sort, int **out, int *n, Err *err) {
    *out = NULL;
    *n = 0;
    int *v = NULL, count = 0;
    if (task_has(t, field)) {
        if (task_int_list(t, field, &v, &count, err)) return -1;
        if (count == 0) {
            free(v);
            return task_field_error(t, field, err, "expected a non-empty array of integers");
        }
    } else {
        v = malloc(sizeof *v * (size_t)(n_fallback > 0 ? n_fallback : 1));
        if (!v) return err_set(err, "out of memory");
        memcpy(v, fallback, sizeof *v * (size_t)n_fallback);
        count = n_fallback;
    }
    for (int i = 0; i < count; i++) {
        if (v[i] < min || v[i] > max) {
            int bad = v[i];
            free(v);
            return task_field_error(t, field, err, "element [%d] is %d; expected an integer in [%d, %d]", i, bad, min,
                                    max);
        }
        for (int j = 0; j < i; j++)
            if (v[j] == v[i]) {
                int bad = v[i];
                free(v);
                return task_field_error(t, field, err, "%d appears twice", bad);
            }
    }
    if (sort) qsort(v, (size_t)count, sizeof *v, cmp_int);
    *out = v;
    *n = count;
    return 0;
}

int measure_modes(const TaskDef *t, char ***out, int *n, Err *err) {
    static const char *const all[] = {"fp32", "bf16-paper", "bf16-hf", "bf16-all", NULL};
    *out = NULL;
    *n = 0;
    if (!task_has(t, "modes")) {
        for (int i = 0; all[i]; i++)
            if (strv_push(out, n, all[i])) goto oom;
        return 0;
    }
    if (task_string_list(t, "modes", out, n, err)) return -1;
    int rc = 0;
    if (*n == 0) rc = task_field_error(t, "modes", err, "expected a non-empty array of precision modes");
    for (int i = 0; i < *n && rc == 0; i++) {
        Precision prec;
        if (precision_parse((*out)[i], &prec))
            rc = task_field_error(t, "modes", err, "element [%d] is \"%s\"; expected fp32, bf16-paper, bf16-hf or "
                                  "bf16-all", i, (*out)[i]);
        for (int j = 0; j < i && rc == 0; j++)
            if (strcmp((*out)[j], (*out)[i]) == 0)
                rc = task_field_error(t, "modes", err, "\"%s\" appears twice", (*out)[i]);
    }
    if (rc == 0) return 0;
    strv_free(*out, *n);
    *out = NULL;
    *n = 0;
    return -1;
oom:
    strv_free(*out, *n);
    *out = NULL;
    *n = 0;
    return err_set(err, "out of memory");
}

cJSON *measure_json_doubles(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(isfinite(v[i]) ? v[i] : 0.0));
    return a;
}

cJSON *measure_json_ints(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* ---------------------------------------------------------------- the erf kind: fields */

static const char *const erf_fields[] = {"lengths", "num_sequences", "source", "targets", "points_per_octave",
                                         "perturb", NULL};
static const int default_lengths[] = {256, 1024};
enum { MAX_LENGTH = 1 << 20 };

typedef struct {
    int *lengths, n_lengths;
    int num_sequences, targets, points_per_octave, perturb;
    const char *source;
} ErfParams;

static void erf_params_free(ErfParams *p) { free(p->lengths); }

static int erf_params(const TaskDef *t, ErfParams *p, Err *err) {
    memset(p, 0, sizeof *p);
    if (measure_int_list(t, "lengths", default_lengths, 2, 8, MAX_LENGTH, 1, &p->lengths, &p->n_lengths, err) ||
        task_int(t, "num_sequences", 1, 1, 10000, &p->num_sequences, err) ||
        task_string(t, "source", "prose", measure_sources, &p->source, err) ||
        task_int(t, "targets", 2, 1, 64, &p->targets, err) ||
        task_int(t, "points_per_octave", 4, 1, 32, &p->points_per_octave, err) ||
        task_bool(t, "perturb", 1, &p->perturb, err)) {
        erf_params_free(p);
        return -1;
    }
    if (p->targets * 2 > p->lengths[0]) {
        int shortest = p->lengths[0];
        erf_params_free(p);
        return task_field_error(t, "targets", err, "%d targets need lengths of at least %d tokens (shortest: %d)",
                                p->targets, 2 * p->targets, shortest);
    }
    return 0;
}

static int erf_validate(const TaskDef *t, Err *err) {
    ErfParams p;
    if (erf_params(t, &p, err)) return -1;
    erf_params_free(&p);
    return 0;
}

static int erf_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    (void)tok;
    ErfParams p;
    if (erf_params(t, &p, err)) return -1;
    for (int i = 0; i < p.n_lengths; i++)
        for (int k = 0; k < p.num_sequences; k++) {
            Example *ex = examples_push(out, err);
            if (!ex) {
                erf_params_free(&p);
                return -1;
            }
            ex->request = REQ_MEASURE;
            snprintf(ex->id, sizeof ex->id, "len%d_seq%d", p.lengths[i], k);
            snprintf(ex->group, sizeof ex->group, "%d", p.lengths[i]);
            ex->target_tokens = ex->prompt_tokens = p.lengths[i];
            ex->extra = cJSON_CreateObject();
            cJSON_AddNumberToObject(ex->extra, "length", p.lengths[i]);
            cJSON_AddNumberToObject(ex->extra, "sequence", k);
        }
    erf_params_free(&p);
    return 0;
}

/* ---------------------------------------------------------------- the observer */

/* Distance bins of the profiles: bin 0 = distance 0, bin b >= 1 = [2^(b-1), 2^b). */
static int dist_bin(int d) {
    int b = 0;
    while (d > 0) d >>= 1, b++;
    return b;
}

typedef struct {
    const HymbaConfig *cfg;
    int M, S, L, nh, I, N, dv, n_bins;
    int pass;              /* 1: record C_S and the delta sums to S; 2: accumulate the rows */
    double *cum;           /* [L][I] sum of delta up to the current token */
    double *cum_S;         /* [L][I] the same at S */
    float *C_S;            /* [L][N] */
    /* the attention row of S, per (layer, head) */
    double *att_dist, *att_meta, *att_text_dist, *att_text_mass;
    double *att_prof;      /* [L][n_bins], mean over heads */
    /* the hidden-attention row of S, per (layer, SSM head = dv channels) */
    double *ssm_w, *ssm_wd, *ssm_meta, *ssm_text_wd;
    double *ssm_prof;      /* [L][n_bins], sum over channels */
    /* final hidden states wanted: sequence positions and H floats each */
    const int *hid_pos;
    int n_hid, H;
    float *hid;
} ErfObs;

static void erf_attn_row(void *user, int layer, int head, int q_pos, int n_keys, const int *key_pos,
                         const float *scores, const float *probs) {
    (void)scores;
    ErfObs *o = user;
    if (q_pos != o->S || o->pass != 2) return;
    size_t slot = (size_t)layer * o->nh + head;
    double dist = 0, meta = 0, text_dist = 0, text_mass = 0;
    for (int k = 0; k < n_keys; k++) {
        int d = o->S - key_pos[k];
        double p = probs[k];
        dist += p * d;
        if (key_pos[k] < o->M) {
            meta += p;
        } else {
            text_mass += p;
            text_dist += p * d;
        }
        /* the heads of one row come one after another on one thread */
        o->att_prof[(size_t)layer * o->n_bins + dist_bin(d)] += p / o->nh;
    }
    o->att_dist[slot] = dist;
    o->att_meta[slot] = meta;
    o->att_text_dist[slot] = text_dist;
    o->att_text_mass[slot] = text_mass;
}

static void erf_ssm_token(void *user, int layer, int pos, int I, int N, const float *delta, const float *B,
                          const float *C, const float *x, const float *A) {
    ErfObs *o = user;
    double *cum = o->cum + (size_t)layer * I;
    for (int c = 0; c < I; c++) cum[c] += delta[c]; /* cum = sum of delta_k for k <= pos */
    if (o->pass == 1) {
        if (pos == o->S) {
            memcpy(o->cum_S + (size_t)layer * I, cum, sizeof *cum * (size_t)I);
            memcpy(o->C_S + (size_t)layer * N, C, sizeof *C * (size_t)N);
        }
        return;
    }
    if (pos > o->S) return;
    /* alpha_{S,pos}[c] = sum_n C_S[n] exp(A[c,n] sum_{k=pos+1..S} delta_k[c]) delta_pos[c] B_pos[n] x_pos[c] */
    const double *cum_S = o->cum_S + (size_t)layer * I;
    const float *C_S = o->C_S + (size_t)layer * N;
    int d = o->S - pos, bin = dist_bin(d);
    double row_total = 0;
    for (int c = 0; c < I; c++) {
        double span = cum_S[c] - cum[c], acc = 0;
        const float *a = A + (size_t)c * N;
        for (int n = 0; n < N; n++) acc += (double)C_S[n] * exp((double)a[n] * span) * B[n];
        double alpha = fabs(acc * delta[c] * x[c]);
        size_t slot = (size_t)layer * o->nh + c / o->dv;
        o->ssm_w[slot] += alpha;
        o->ssm_wd[slot] += alpha * d;
        if (pos < o->M) o->ssm_meta[slot] += alpha;
        else o->ssm_text_wd[slot] += alpha * d;
        row_total += alpha;
    }
    o->ssm_prof[(size_t)layer * o->n_bins + bin] += row_total;
}

static void erf_hidden(void *user, int pos, const float *h, int H) {
    ErfObs *o = user;
    for (int i = 0; i < o->n_hid; i++)
        if (o->hid_pos[i] == pos) memcpy(o->hid + (size_t)i * H, h, sizeof *h * (size_t)H);
}

static void erf_obs_free(ErfObs *o) {
    free(o->cum), free(o->cum_S), free(o->C_S);
    free(o->att_dist), free(o->att_meta), free(o->att_text_dist), free(o->att_text_mass), free(o->att_prof);
    free(o->ssm_w), free(o->ssm_wd), free(o->ssm_meta), free(o->ssm_text_wd), free(o->ssm_prof);
    free(o->hid);
}

static int erf_obs_init(ErfObs *o, const HymbaConfig *cfg, int T, const int *hid_pos, int n_hid, Err *err) {
    memset(o, 0, sizeof *o);
    o->cfg = cfg;
    o->M = cfg->n_meta;
    o->S = cfg->n_meta + T - 1;
    o->L = cfg->n_layers;
    o->nh = cfg->n_heads;
    o->I = cfg->ssm_inner;
    o->N = cfg->ssm_state;
    o->dv = cfg->v_head_dim;
    o->n_bins = dist_bin(o->S) + 1;
    o->hid_pos = hid_pos;
    o->n_hid = n_hid;
    o->H = cfg->hidden_size;
    size_t LH = (size_t)o->L * o->nh, LB = (size_t)o->L * o->n_bins;
    o->cum = calloc((size_t)o->L * o->I, sizeof *o->cum);
    o->cum_S = calloc((size_t)o->L * o->I, sizeof *o->cum_S);
    o->C_S = calloc((size_t)o->L * o->N, sizeof *o->C_S);
    o->att_dist = calloc(LH, sizeof(double));
    o->att_meta = calloc(LH, sizeof(double));
    o->att_text_dist = calloc(LH, sizeof(double));
    o->att_text_mass = calloc(LH, sizeof(double));
    o->att_prof = calloc(LB, sizeof(double));
    o->ssm_w = calloc(LH, sizeof(double));
    o->ssm_wd = calloc(LH, sizeof(double));
    o->ssm_meta = calloc(LH, sizeof(double));
    o->ssm_text_wd = calloc(LH, sizeof(double));
    o->ssm_prof = calloc(LB, sizeof(double));
    o->hid = calloc((size_t)(n_hid > 0 ? n_hid : 1) * o->H, sizeof(float));
    if (!o->cum || !o->cum_S || !o->C_S || !o->att_dist || !o->att_meta || !o->att_text_dist || !o->att_text_mass ||
        !o->att_prof || !o->ssm_w || !o->ssm_wd || !o->ssm_meta || !o->ssm_text_wd || !o->ssm_prof || !o->hid) {
        erf_obs_free(o);
        return err_set(err, "out of memory for the ERF accumulators");
    }
    return 0;
}

/* Runs the whole sequence (meta prefix included) through b with observer o. */
static int observed_pass(Backend *b, ErfObs *o, const HymbaObserver *obs, int pass, const int32_t *ids, int T,
                         Err *err) {
    o->pass = pass;
    memset(o->cum, 0, sizeof *o->cum * (size_t)o->L * o->I);
    b->model->observer = obs;
    Sequence *s = b->begin(b, err);
    int rc = s ? b->forward(b, &s, &ids, &T, 1, LOGITS_NONE, NULL, err) : -1;
    if (s) b->release(b, s);
    b->model->observer = NULL;
    return rc;
}

/* ---------------------------------------------------------------- perturbation */

typedef struct {
    int target, d_index, p;
} PerturbRun;

static int by_p(const void *a, const void *b) {
    const PerturbRun *x = a, *y = b;
    if (x->p != y->p) return (x->p > y->p) - (x->p < y->p);
    return (x->target > y->target) - (x->target < y->target);
}

typedef struct {
    int *d;                /* distance grid */
    int n_d;
    int *targets;          /* text indices */
    int n_targets;
    double *infl;          /* [n_targets][n_d] relative L2 change of the final hidden state */
    double *mean;          /* [n_d] mean over targets */
    double *weight;        /* [n_d] the distances each grid point stands for */
    double erf95;
} Perturb;

static void perturb_free(Perturb *p) {
    free(p->d), free(p->targets), free(p->infl), free(p->mean), free(p->weight);
}

/* Log-spaced distances 1 .. dmax (points_per_octave per doubling), dmax included. */
static int distance_grid(int dmax, int ppo, int **out, int *n) {
    int cap = 16, count = 0;
    int *d = malloc(sizeof *d * (size_t)cap);
    if (!d) return -1;
    for (int i = 0;; i++) {
        int v = (int)lround(pow(2.0, (double)i / ppo));
        if (v >= dmax) break;
        if (count && d[count - 1] == v) continue;
        if (count == cap) {
            int *g = realloc(d, sizeof *d * (size_t)(cap *= 2));
            if (!g) return free(d), -1;
            d = g;
        }
        d[count++] = v;
    }
    if (count == cap) {
        int *g = realloc(d, sizeof *d * (size_t)(cap + 1));
        if (!g) return free(d), -1;
        d = g;
    }
    d[count++] = dmax;
    *out = d;
    *n = count;
    return 0;
}

static int perturb_run(Backend *b, const ErfParams *pp, const int32_t *ids, int T, const float *clean,
                       uint64_t seed, Perturb *out, Err *err) {
    HymbaModel *m = b->model;
    const HymbaConfig *cfg = &m->cfg;
    const int M = cfg->n_meta, H = cfg->hidden_size, V = cfg->vocab_size, K = pp->targets;
    memset(out, 0, sizeof *out);
    out->n_targets = K;
    out->targets = malloc(sizeof(int) * (size_t)K);
    if (!out->targets) return err_set(err, "out of memory");
    for (int k = 0; k < K; k++) out->targets[k] = T - 1 - k;
    int dmax = T - K; /* the smallest target minus d stays a text index */
    if (distance_grid(dmax, pp->points_per_octave, &out->d, &out->n_d)) return err_set(err, "out of memory");
    int nd = out->n_d;
    out->infl = calloc((size_t)K * nd, sizeof(double));
    out->mean = calloc((size_t)nd, sizeof(double));
    out->weight = calloc((size_t)nd, sizeof(double));
    PerturbRun *runs = malloc(sizeof *runs * (size_t)K * nd);
    int32_t *buf = malloc(sizeof *buf * (size_t)(T + 1));
    float *h = malloc(sizeof *h * (size_t)H);
    if (!out->infl || !out->mean || !out->weight || !runs || !buf || !h) {
        free(runs), free(buf), free(h);
        return err_set(err, "out of memory");
    }
    int n_runs = 0;
    for (int k = 0; k < K; k++)
        for (int i = 0; i < nd; i++) runs[n_runs++] = (PerturbRun){k, i, out->targets[k] - out->d[i]};
    qsort(runs, (size_t)n_runs, sizeof *runs, by_p);

    /* the clean prefix advances once; each run forks it at t-d */
    int rc = 0, fed = 0;
    m->observer = NULL;
    Sequence *base = b->begin(b, err);
    if (!base) {
        free(runs), free(buf), free(h);
        return -1;
    }
    int hid_pos = 0;
    ErfObs capture = {0};
    capture.hid_pos = &hid_pos;
    capture.n_hid = 1;
    capture.H = H;
    capture.hid = h;
    HymbaObserver obs = {.user = &capture, .hidden = erf_hidden};
    for (int r = 0; r < n_runs && rc == 0; r++) {
        int p = runs[r].p, k = runs[r].target, t = out->targets[k];
        if (p > fed) {
            const int32_t *feed = ids + fed;
            int n = p - fed;
            rc = b->forward(b, &base, &feed, &n, 1, LOGITS_NONE, NULL, err);
            fed = p;
            if (rc) break;
        }
        uint64_t s = measure_seed(seed, (uint64_t)p, (uint64_t)k + 1);
        uint64_t z = splitmix(&s);
        int32_t repl = V > 4 ? (int32_t)(3 + z % (uint64_t)(V - 3)) : (int32_t)(z % (uint64_t)V);
        if (repl == ids[p]) repl = V > 4 ? 3 + (repl - 3 + 1) % (V - 3) : (repl + 1) % V;
        buf[0] = repl;
        memcpy(buf + 1, ids + p + 1, sizeof *buf * (size_t)(t - p));
        Sequence *fork = b->fork(b, base, err);
        if (!fork) {
            rc = -1;
            break;
        }
        hid_pos = M + t;
        m->observer = &obs;
        const int32_t *feed = buf;
        int n = t - p + 1;
        rc = b->forward(b, &fork, &feed, &n, 1, LOGITS_NONE, NULL, err);
        m->observer = NULL;
        b->release(b, fork);
        if (rc) break;
        const float *ref = clean + (size_t)k * H;
        double num = 0, den = 0;
        for (int i = 0; i < H; i++) {
            double e = (double)h[i] - ref[i];
            num += e * e;
            den += (double)ref[i] * ref[i];
        }
        out->infl[(size_t)k * nd + runs[r].d_index] = den > 0 ? sqrt(num / den) : sqrt(num);
    }
    b->release(b, base);
    free(runs), free(buf), free(h);
    if (rc) return -1;

    /* mean over targets; each grid point stands for the distances up to the next one */
    double total = 0;
    for (int i = 0; i < nd; i++) {
        for (int k = 0; k < K; k++) out->mean[i] += out->infl[(size_t)k * nd + i] / K;
        out->weight[i] = i + 1 < nd ? out->d[i + 1] - out->d[i] : 1;
        total += out->weight[i] * out->mean[i];
    }
    out->erf95 = 0;
    double run = 0;
    for (int i = 0; i < nd && total > 0; i++) {
        run += out->weight[i] * out->mean[i];
        if (run >= 0.95 * total) {
            out->erf95 = out->d[i];
            break;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- measure */

static int extra_int(const Example *ex, const char *key, int fallback) {
    const cJSON *v = ex->extra ? cJSON_GetObjectItemCaseSensitive(ex->extra, key) : NULL;
    return cJSON_IsNumber(v) ? (int)v->valuedouble : fallback;
}

static int erf_measure(const TaskDef *t, const MeasureEnv *env, const Example *ex, Scores *out, cJSON **extra,
                       Err *err) {
    HymbaModel *m = env->model;
    const HymbaConfig *cfg = &m->cfg;
    ErfParams pp;
    if (erf_params(t, &pp, err)) return -1;
    int T = extra_int(ex, "length", ex->target_tokens), seq = extra_int(ex, "sequence", 0);
    const int L = cfg->n_layers, nh = cfg->n_heads, M = cfg->n_meta, H = cfg->hidden_size;
    int saved_offset = m->position_offset;
    m->position_offset = 0;
    uint64_t seed = measure_seed(t->seed, (uint64_t)T, (uint64_t)seq);
    int32_t *ids = NULL;
    int *hid_pos = malloc(sizeof *hid_pos * (size_t)pp.targets);
    ErfObs o;
    Perturb pert = {0};
    int have_obs = 0, rc = -1;
    /* the run's backend: the CUDA backend reports attention rows, SSM tokens
       and hidden states as the CPU does (test_backend checks all three) */
    Backend *own_b = NULL;
    Backend *b = measure_backend_on(env, m, &own_b, err);
    if (!b) goto done;
    if (!hid_pos) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int k = 0; k < pp.targets; k++) hid_pos[k] = M + T - 1 - k;
    if (measure_sequence(m, pp.source, seed, T, &ids, err)) goto done;
    if (erf_obs_init(&o, cfg, T, hid_pos, pp.targets, err)) goto done;
    have_obs = 1;

    int any_ssm = 0, any_attn = 0;
    for (int l = 0; l < L; l++) any_ssm |= layer_has_ssm(cfg, l), any_attn |= layer_has_attn(cfg, l);
    /* pass 1 (SSM layers only): C_S and the delta sums up to S; pass 2: the rows */
    HymbaObserver obs1 = {.user = &o, .ssm_token = erf_ssm_token};
    HymbaObserver obs2 = {.user = &o, .attn_row = erf_attn_row, .ssm_token = any_ssm ? erf_ssm_token : NULL,
                          .hidden = erf_hidden};
    if (any_ssm && observed_pass(b, &o, &obs1, 1, ids, T, err)) goto done;
    if (observed_pass(b, &o, &obs2, 2, ids, T, err)) goto done;
    if (pp.perturb && perturb_run(b, &pp, ids, T, o.hid, seed, &pert, err)) goto done;

    /* per layer, then Eq. 5's weighted average over layers */
    double erf = 0, erf_text = 0, w_attn = 0, erf_attn = 0, w_ssm = 0, erf_ssm = 0, meta_mass = 0, mmd_sum = 0;
    int n_ssm = 0;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "length", T);
    cJSON_AddNumberToObject(root, "sequence", seq);
    cJSON_AddStringToObject(root, "source", pp.source);
    cJSON_AddNumberToObject(root, "meta_tokens", M);
    cJSON_AddNumberToObject(root, "query_position", o.S);
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    cJSON *att_prof = cJSON_CreateArray(), *ssm_prof = cJSON_CreateArray();
    for (int l = 0; l < L; l++) {
        double w = 2.0 * (L - l) / ((double)L * (L + 1)); /* n = l + 1: 2(N - n + 1) / (N (N + 1)) */
        double a = 0, a_text = 0, a_meta = 0, s = 0, s_text = 0, s_meta = 0, mmd = 0;
        cJSON *lj = cJSON_CreateObject();
        cJSON_AddNumberToObject(lj, "layer", l);
        char kind[2] = {cfg->layer_kind[l], 0};
        cJSON_AddStringToObject(lj, "kind", kind);
        cJSON_AddNumberToObject(lj, "weight", w);
        if (layer_has_attn(cfg, l)) {
            cJSON *per_head = cJSON_CreateArray();
            for (int j = 0; j < nh; j++) {
                size_t slot = (size_t)l * nh + j;
                a += o.att_dist[slot] / nh;
                a_meta += o.att_meta[slot] / nh;
                a_text += (o.att_text_mass[slot] > 0 ? o.att_text_dist[slot] / o.att_text_mass[slot] : 0) / nh;
                cJSON_AddItemToArray(per_head, cJSON_CreateNumber(o.att_dist[slot]));
            }
            cJSON_AddBoolToObject(lj, "global", cfg->is_global[l]);
            cJSON_AddNumberToObject(lj, "attn_dist", a);
            cJSON_AddNumberToObject(lj, "attn_text_dist", a_text);
            cJSON_AddNumberToObject(lj, "attn_meta_mass", a_meta);
            cJSON_AddItemToObject(lj, "attn_dist_per_head", per_head);
            erf_attn += w * a;
            w_attn += w;
            meta_mass += w * a_meta;
        }
        if (layer_has_ssm(cfg, l)) {
            double tw = 0, twd = 0;
            int heads = 0;
            cJSON *per_head = cJSON_CreateArray();
            for (int j = 0; j < nh; j++) {
                size_t slot = (size_t)l * nh + j;
                double sw = o.ssm_w[slot], text_w = sw - o.ssm_meta[slot];
                double dist = sw > 0 ? o.ssm_wd[slot] / sw : 0;
                s += dist;
                s_text += text_w > 0 ? o.ssm_text_wd[slot] / text_w : 0;
                s_meta += sw > 0 ? o.ssm_meta[slot] / sw : 0;
                tw += sw;
                twd += o.ssm_wd[slot];
                heads++;
                cJSON_AddItemToArray(per_head, cJSON_CreateNumber(dist));
            }
            s /= heads, s_text /= heads, s_meta /= heads;
            mmd = tw > 0 ? twd / tw : 0;
            cJSON_AddNumberToObject(lj, "ssm_dist", s);
            cJSON_AddNumberToObject(lj, "ssm_text_dist", s_text);
            cJSON_AddNumberToObject(lj, "ssm_meta_mass", s_meta);
            cJSON_AddNumberToObject(lj, "mmd", mmd);
            cJSON_AddItemToObject(lj, "mmd_per_head", per_head);
            erf_ssm += w * s;
            w_ssm += w;
            mmd_sum += mmd;
            n_ssm++;
        }
        /* a hybrid layer's heads: nh attention + nh SSM heads, so the two branches count equally (as the fusion averages them) */
        double v = layer_has_attn(cfg, l) && layer_has_ssm(cfg, l) ? (a + s) / 2 : layer_has_attn(cfg, l) ? a : s;
        double v_text = layer_has_attn(cfg, l) && layer_has_ssm(cfg, l) ? (a_text + s_text) / 2
                        : layer_has_attn(cfg, l)                      ? a_text
                                                                      : s_text;
        cJSON_AddNumberToObject(lj, "erf", v);
        cJSON_AddNumberToObject(lj, "erf_text", v_text);
        erf += w * v;
        erf_text += w * v_text;
        cJSON_AddItemToArray(layers, lj);
        /* profiles: share of the row per distance bin */
        double *ap = o.att_prof + (size_t)l * o.n_bins, *sp = o.ssm_prof + (size_t)l * o.n_bins, stot = 0;
        for (int b = 0; b < o.n_bins; b++) stot += sp[b];
        for (int b = 0; b < o.n_bins && stot > 0; b++) sp[b] /= stot;
        cJSON_AddItemToArray(att_prof, layer_has_attn(cfg, l) ? measure_json_doubles(ap, o.n_bins) : cJSON_CreateNull());
        cJSON_AddItemToArray(ssm_prof, layer_has_ssm(cfg, l) ? measure_json_doubles(sp, o.n_bins) : cJSON_CreateNull());
    }
    cJSON *bins = cJSON_CreateArray();
    for (int b = 0; b < o.n_bins; b++) cJSON_AddItemToArray(bins, cJSON_CreateNumber(b == 0 ? 0 : 1 << (b - 1)));
    cJSON *prof = cJSON_AddObjectToObject(root, "profiles");
    cJSON_AddItemToObject(prof, "bin_start", bins);
    cJSON_AddItemToObject(prof, "attention", att_prof);
    cJSON_AddItemToObject(prof, "ssm", ssm_prof);

    scores_add(out, "erf_hymba", erf);
    scores_add(out, "erf_hymba_text", erf_text);
    if (any_attn) {
        scores_add(out, "erf_hymba_attn", erf_attn / w_attn);
        scores_add(out, "meta_mass", meta_mass / w_attn);
    }
    if (any_ssm) {
        scores_add(out, "erf_hymba_ssm", erf_ssm / w_ssm);
        scores_add(out, "mmd", mmd_sum / n_ssm);
    }
    if (pp.perturb) {
        scores_add(out, "erf95_perturb", pert.erf95);
        cJSON *pj = cJSON_AddObjectToObject(root, "perturb");
        cJSON_AddItemToObject(pj, "targets", measure_json_ints(pert.targets, pert.n_targets));
        cJSON_AddItemToObject(pj, "d", measure_json_ints(pert.d, pert.n_d));
        cJSON_AddItemToObject(pj, "weight", measure_json_doubles(pert.weight, pert.n_d));
        cJSON_AddItemToObject(pj, "influence", measure_json_doubles(pert.mean, pert.n_d));
        cJSON *per = cJSON_AddArrayToObject(pj, "per_target");
        for (int k = 0; k < pert.n_targets; k++)
            cJSON_AddItemToArray(per, measure_json_doubles(pert.infl + (size_t)k * pert.n_d, pert.n_d));
        cJSON_AddNumberToObject(pj, "erf95", pert.erf95);
    }
    *extra = root;
    rc = 0;
    (void)H;
done:
    backend_close(own_b);
    m->observer = NULL;
    m->position_offset = saved_offset;
    if (have_obs) erf_obs_free(&o);
    perturb_free(&pert);
    free(ids);
    free(hid_pos);
    erf_params_free(&pp);
    return rc;
}

const TaskKind kind_erf = {
    .name = "erf",
    .fields = erf_fields,
    .validate = erf_validate,
    .build = erf_build,
    .score = measure_no_score,
    .measure = erf_measure,
};
