/* loglik.c: log-likelihood scoring with a shared, forked context state. */
#include "loglik.h"

#include <math.h>
#include <stdlib.h>

/* log-softmax of one row at `target` (FP64 sum), and whether target is the argmax. */
static double log_prob(const float *row, int V, int target, int *is_argmax) {
    float max_v = row[0];
    int arg = 0;
    for (int i = 1; i < V; i++)
        if (row[i] > max_v) max_v = row[i], arg = i;
    double total = 0.0;
    for (int i = 0; i < V; i++) total += exp((double)row[i] - max_v);
    *is_argmax = arg == target;
    return (double)row[target] - max_v - log(total);
}

int loglik_continuations(Backend *b, const int32_t *ctx, int n_ctx, const int32_t *const *conts,
                         const int *cont_lens, int n_conts, double *ll, int *greedy, Err *err) {
    const int V = b->model->cfg.vocab_size;
    if (n_ctx < 1) return err_set(err, "log-likelihood needs at least one context token");
    for (int i = 0; i < n_conts; i++)
        if (cont_lens[i] < 1) return err_set(err, "continuation %d is empty", i);
    float *last = malloc(sizeof(float) * (size_t)V);
    Sequence **forks = calloc((size_t)n_conts + 1, sizeof *forks);
    float **rows = calloc((size_t)n_conts + 1, sizeof *rows);
    int *feed = calloc((size_t)n_conts + 1, sizeof *feed);
    Sequence *context = NULL;
    int rc = -1;
    if (!last || !forks || !rows || !feed) {
        err_set(err, "out of memory");
        goto done;
    }
    context = b->begin(b, err);
    if (!context) goto done;
    int one = n_ctx;
    if (b->forward(b, &context, &ctx, &one, 1, LOGITS_LAST, &last, err)) goto done;
    /* The last token of a continuation is only predicted, never fed, so a
       one-token continuation needs no fork at all. */
    for (int i = 0; i < n_conts; i++) {
        int argmax;
        ll[i] = log_prob(last, V, conts[i][0], &argmax);
        greedy[i] = argmax;
        feed[i] = cont_lens[i] - 1;
        if (feed[i] == 0) continue;
        forks[i] = b->fork(b, context, err);
        rows[i] = malloc(sizeof(float) * (size_t)feed[i] * V);
        if (!forks[i] || !rows[i]) {
            if (forks[i]) err_set(err, "out of memory for %d logit rows", feed[i]);
            goto done;
        }
    }
    /* every fork of this context in one batched forward */
    Sequence **batch = calloc((size_t)n_conts + 1, sizeof *batch);
    const int32_t **batch_ids = calloc((size_t)n_conts + 1, sizeof *batch_ids);
    int *batch_lens = calloc((size_t)n_conts + 1, sizeof *batch_lens);
    float **batch_rows = calloc((size_t)n_conts + 1, sizeof *batch_rows);
    int n = 0;
    if (batch && batch_ids && batch_lens && batch_rows) {
        for (int i = 0; i < n_conts; i++)
            if (feed[i] > 0) {
                batch[n] = forks[i];
                batch_ids[n] = conts[i];
                batch_lens[n] = feed[i];
                batch_rows[n] = rows[i];
                n++;
            }
        rc = n ? b->forward(b, batch, batch_ids, batch_lens, n, LOGITS_ALL, batch_rows, err) : 0;
    } else {
        err_set(err, "out of memory");
    }
    free(batch), free(batch_ids), free(batch_lens), free(batch_rows);
    for (int i = 0; rc == 0 && i < n_conts; i++)
        for (int t = 1; t < cont_lens[i]; t++) {
            int argmax;
            ll[i] += log_prob(rows[i] + (size_t)(t - 1) * V, V, conts[i][t], &argmax);
            greedy[i] &= argmax;
        }
done:
    if (context) b->release(b, context);
    for (int i = 0; forks && i < n_conts; i++) {
        if (forks[i]) b->release(b, forks[i]);
        if (rows) free(rows[i]);
    }
    free(forks), free(rows), free(feed), free(last);
    return rc;
}
