/* dist.h: one evaluation spread over many processes (DESIGN.md §7).

   A run is split into shares: under `mpirun -np N` (built with MPI) rank K
   runs share K of N; without MPI, `hymeval run --shard K/N` runs share K of
   N and `hymeval merge` joins the shards. Shares come from one
   deterministic assignment: every process builds every example of the run,
   estimates its cost, and hands the examples out greedily, most expensive
   first, to the least-loaded share (longest processing time first), so each
   process computes the same assignment with no communication.

   Without MPI built in (or outside a launcher) the functions here describe a
   single process and their collectives are local. */
#ifndef HYMEVAL_DIST_H
#define HYMEVAL_DIST_H

#include <stdint.h>

#include "error.h"
#include "task.h"

typedef enum {
    DIST_SINGLE, /* one process runs everything, appending to DIR/samples.jsonl */
    DIST_MPI,    /* rank `rank` of `size` MPI ranks; rank 0 merges */
    DIST_SHARD,  /* --shard rank/size: one share; `hymeval merge` joins the shards later */
} DistMode;

typedef struct {
    DistMode mode;
    int rank, size;        /* this process's share and the number of shares */
    int local_rank;        /* rank among this host's processes (MPI), else 0 */
    int device_index;      /* the GPU this process should use (from local_rank) */
    long pid;
    char host[256];
} Dist;

/* What each process says at a collective check; gathered to every rank. */
typedef struct {
    int ok;
    int rank, local_rank, device_index;
    long pid;
    char host[256];
    char plan[65];         /* hash of the process's assignment: all must agree */
    char message[1024];    /* why it failed, when !ok */
} DistStatus;

/* Parses "K/N" (0 <= K < N). Returns -1 with a message in err when malformed. */
int dist_parse_shard(const char *text, int *index, int *count, Err *err);

/* Starts MPI when this process was started by an MPI launcher (mpirun, srun
   with PMI/PMIx) and hymeval was built with MPI; a launcher with several
   ranks and no MPI built in is an error (every rank would run everything).
   shard_count > 0 selects --shard shard_index/shard_count (not under MPI). */
int dist_init(Dist *d, int shard_index, int shard_count, Err *err);
void dist_finalize(Dist *d);

/* Chooses this process's GPU: its node-local rank modulo the GPUs visible.
   In a CUDA build with device "cuda" it makes that GPU current
   (cudaSetDevice), which is the one the CUDA backend opens on; otherwise it
   only records the index. */
void dist_bind_device(Dist *d, const char *device);

/* The file name (no directory, no extension) this process's samples go to
   when it writes a part: "rank-K-of-N" or "shard-K-of-N". */
void dist_part_name(const Dist *d, char *out, size_t len);

/* Collective status check: every process reports ok (or its message) and its
   plan hash; `all` (d->size entries, may be NULL) receives everyone's status.
   Returns 0 when every process is ok and all plan hashes agree; otherwise -1
   with err naming the rank, host and cause. Waits without spinning, so ranks
   that finish early do not steal CPU from the ones still working. */
int dist_agree(const Dist *d, int ok, const char *message, const char *plan, DistStatus *all, Err *err);

/* ---------------------------------------------------------------- assignment */

/* Decode steps are weighed against prompt tokens by this factor: one greedy
   step of a sequence costs about as much as this many prefill tokens. */
#define DIST_DECODE_FACTOR 16

/* Estimated cost of an example: prompt tokens + DIST_DECODE_FACTOR x
   max_new_tokens for generation; for log-likelihood, the tokens of each
   distinct context plus every continuation. Unknown token counts are
   estimated as bytes / 4. */
int64_t dist_example_cost(const Example *ex);

/* Longest processing time first: items (in canonical order, cost[i]) go,
   most expensive first (ties: the earlier item), to the share with the least
   total so far (ties: the lower share). Writes owner[i] in [0, shares). */
int dist_assign(const int64_t *cost, int n, int shares, int *owner, Err *err);

#endif
