/* observe.h: an optional observer of the forward pass (engine/model.c; the
   CUDA backend reports the same rows, tokens and states),
   for measurements that need what the logits do not show: attention rows,
   the SSM's hidden-attention ingredients and the final hidden states
   (tasks/erf.c, tasks/rope_drift.c; DESIGN.md §5).

   HymbaModel.observer is NULL by default, and then the forward pays nothing.
   When it is set, forward_chunk() calls the callbacks that are not NULL; they
   see values, they never change them, so an observed forward computes exactly
   what an unobserved one does. Positions are sequence positions: meta token m
   is m, text token t is M + t (docs/ARCHITECTURE.md §1), before any
   HymbaModel.position_offset is added. With an observer set, model_begin()
   runs the meta tokens through the forward again instead of copying the
   cached prefix, so the observer sees every row of the sequence. */
#ifndef HYMEVAL_OBSERVE_H
#define HYMEVAL_OBSERVE_H

typedef struct HymbaObserver {
    void *user;
    /* One attention head's row for the query at q_pos in layer `layer`:
       the n_keys visible keys (meta tokens first, then the text keys in
       position order) with their positions, the pre-softmax scores
       q.k/sqrt(dk) and the softmax probabilities. Called from the OpenMP
       threads of the attention loop: concurrently for different q_pos (the
       heads of one row come one after another on one thread), so a callback
       may write per-(layer, head, row) slots without locking but must not
       share an accumulator across rows. */
    void (*attn_row)(void *user, int layer, int head, int q_pos, int n_keys, const int *key_pos, const float *scores,
                     const float *probs);
    /* One token of an SSM layer, after its scan step (serially, in position
       order within a layer): delta [I] (after softplus and its bias), B [N],
       C [N], x [I] (the conv + SiLU output the scan multiplies) and A [I][N]
       (= -exp(A_log)). With these the hidden attention of the layer is
       alpha_{S,s}[c] = sum_n C_S[n] exp(A[c,n] sum_{k=s+1..S} delta_k[c]) delta_s[c] B_s[n] x_s[c]. */
    void (*ssm_token)(void *user, int layer, int pos, int I, int N, const float *delta, const float *B,
                      const float *C, const float *x, const float *A);
    /* The final hidden state of each row (after the final RMSNorm: the LM
       head's input), H values, serially in position order, meta rows included. */
    void (*hidden)(void *user, int pos, const float *h, int H);
} HymbaObserver;

#endif
