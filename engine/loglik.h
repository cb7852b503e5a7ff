/* loglik.h: log-likelihood of continuations given a context (lm-eval's
   loglikelihood request): the context runs once, its state is forked for
   every continuation, and the continuations run as one batch. */
#ifndef HYMEVAL_LOGLIK_H
#define HYMEVAL_LOGLIK_H

#include "backend.h"

/* ll[i] = sum of log p(conts[i][t] | ctx, conts[i][<t]); greedy[i] = 1 if
   every continuation token was the argmax. Needs n_ctx >= 1 and non-empty
   continuations. */
int loglik_continuations(Backend *b, const int32_t *ctx, int n_ctx, const int32_t *const *conts,
                         const int *cont_lens, int n_conts, double *ll, int *greedy, Err *err);

#endif
