/* dist.c: shares of a run over MPI ranks or --shard processes (see dist.h). */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HYMEVAL_HAVE_MPI
#include <mpi.h>
#endif
#ifdef HYMEVAL_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

int dist_parse_shard(const char *text, int *index, int *count, Err *err) {
    char *end = NULL;
    long k = strtol(text, &end, 10);
    if (end == text || *end != '/') return err_set(err, "--shard expects K/N (share K of N, 0 <= K < N), got \"%s\"", text);
    const char *rest = end + 1;
    long n = strtol(rest, &end, 10);
    if (end == rest || *end || n < 1 || n > 1000000 || k < 0 || k >= n)
        return err_set(err, "--shard expects K/N (share K of N, 0 <= K < N), got \"%s\"", text);
    *index = (int)k;
    *count = (int)n;
    return 0;
}

/* ---------------------------------------------------------------- starting */

/* The world size an MPI launcher announces in the environment: Open MPI's
   mpirun, MPICH/Hydra and Slurm's PMI2, MVAPICH; PMIx (srun --mpi=pmix,
   prterun) names only the rank. 0 when not started by a launcher. */
static int launcher_size(void) {
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < sizeof size_vars / sizeof *size_vars; i++) {
        const char *v = getenv(size_vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    const char *pmix_rank = getenv("PMIX_RANK");
    if (pmix_rank) return atoi(pmix_rank) + 1; /* at least this many */
    return 0;
}

static void describe_self(Dist *d) {
    d->pid = (long)getpid();
    if (gethostname(d->host, sizeof d->host) != 0) snprintf(d->host, sizeof d->host, "unknown");
    d->host[sizeof d->host - 1] = 0;
}

int dist_init(Dist *d, int shard_index, int shard_count, Err *err) {
    memset(d, 0, sizeof *d);
    d->mode = DIST_SINGLE;
    d->size = 1;
    describe_self(d);
    int launched = launcher_size();
    const char *srun_tasks = getenv("SLURM_STEP_NUM_TASKS");
    if (!launched && shard_count == 0 && srun_tasks && atoi(srun_tasks) > 1)
        return err_set(err, "srun started %s tasks without an MPI plugin: each would run the whole suite. Use srun "
                       "--mpi=pmix (or pmi2) with an MPI build, or --shard $SLURM_PROCID/$SLURM_NTASKS and hymeval "
                       "merge", srun_tasks);
#ifdef HYMEVAL_HAVE_MPI
    if (launched > 0) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return err_set(err, "MPI_Init failed");
        MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &d->size);
        MPI_Comm local;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local);
        MPI_Comm_rank(local, &d->local_rank);
        MPI_Comm_free(&local);
        d->mode = DIST_MPI;
        if (shard_count > 0 && d->size > 1) {
            err_set(err, "--shard is for runs without mpirun; under mpirun every rank already takes its share");
            return -1;
        }
    }
#else
    if (launched > 1)
        return err_set(err, "started by an MPI launcher with %d ranks, but this hymeval was built without MPI "
                       "(configure with -Dmpi=enabled); every rank would run the whole suite. Use --shard K/N "
                       "and hymeval merge instead", launched);
#endif
    if (shard_count > 0) {
        d->mode = DIST_SHARD;
        d->rank = shard_index;
        d->size = shard_count;
    }
    d->device_index = d->local_rank;
    return 0;
}

void dist_finalize(Dist *d) {
#ifdef HYMEVAL_HAVE_MPI
    int started = 0, finished = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&finished);
    if (started && !finished) MPI_Finalize();
#endif
    (void)d;
}

/* The number of GPUs this process may use: CUDA's count in a CUDA build,
   else the entries of CUDA_VISIBLE_DEVICES (0 when unknown). */
static int visible_gpus(const char *device) {
#ifdef HYMEVAL_HAVE_CUDA
    int count = 0;
    if (strcmp(device, "cuda") == 0 && cudaGetDeviceCount(&count) == cudaSuccess) return count;
#endif
    (void)device;
    const char *list = getenv("CUDA_VISIBLE_DEVICES");
    if (!list || !*list) return 0;
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    return n;
}

void dist_bind_device(Dist *d, const char *device) {
    int gpus = visible_gpus(device);
    d->device_index = gpus > 0 ? d->local_rank % gpus : d->local_rank;
#ifdef HYMEVAL_HAVE_CUDA
    /* backend_cuda_open() opens on the current device */
    if (strcmp(device, "cuda") == 0 && gpus > 0) cudaSetDevice(d->device_index);
#endif
}

void dist_part_name(const Dist *d, char *out, size_t len) {
    snprintf(out, len, "%s-%d-of-%d", d->mode == DIST_SHARD ? "shard" : "rank", d->rank, d->size);
}

/* ---------------------------------------------------------------- collective checks */

static void fill_status(const Dist *d, int ok, const char *message, const char *plan, DistStatus *s) {
    memset(s, 0, sizeof *s);
    s->ok = ok;
    s->rank = d->rank;
    s->local_rank = d->local_rank;
    s->device_index = d->device_index;
    s->pid = d->pid;
    snprintf(s->host, sizeof s->host, "%s", d->host);
    snprintf(s->plan, sizeof s->plan, "%s", plan ? plan : "");
    snprintf(s->message, sizeof s->message, "%s", ok || !message ? "" : message);
}

#ifdef HYMEVAL_HAVE_MPI
/* A barrier that sleeps between polls: Open MPI's blocking collectives spin,
   and a rank that finished its share early would take a core (or a GPU
   process's CPU) from the ranks still running. */
static void quiet_barrier(void) {
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    int done = 0;
    struct timespec nap = {0, 20 * 1000 * 1000};
    for (;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) break;
        nanosleep(&nap, NULL);
    }
}
#endif

int dist_agree(const Dist *d, int ok, const char *message, const char *plan, DistStatus *all, Err *err) {
    DistStatus mine;
    fill_status(d, ok, message, plan, &mine);
    DistStatus *statuses = all;
    int n = 1;
#ifdef HYMEVAL_HAVE_MPI
    if (d->mode == DIST_MPI) {
        n = d->size;
        if (!statuses) statuses = malloc(sizeof *statuses * (size_t)n);
        if (!statuses) {
            /* cannot report through the collective: end the whole job */
            fprintf(stderr, "error: rank %d (%s): out of memory at a status check\n", d->rank, d->host);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        quiet_barrier();
        MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, statuses, (int)sizeof mine, MPI_BYTE, MPI_COMM_WORLD);
    }
#endif
    if (n == 1) {
        if (statuses) statuses[0] = mine;
        else statuses = &mine;
    }
    int failed = 0, first = -1, disagree = -1;
    for (int i = 0; i < n; i++) {
        if (!statuses[i].ok) {
            if (first < 0) first = i;
            failed++;
        } else if (strcmp(statuses[i].plan, statuses[0].plan) != 0 && disagree < 0) {
            disagree = i;
        }
    }
    int rc = 0;
    if (failed && n == 1) {
        rc = -1; /* err already holds this process's own message */
    } else if (failed) {
        const DistStatus *s = &statuses[first];
        err_set(err, "rank %d of %d (host %s, pid %ld) failed: %s%s", s->rank, n, s->host, s->pid, s->message,
                failed > 1 ? " (and other ranks failed too; see their messages above)" : "");
        rc = -1;
    } else if (disagree >= 0) {
        const DistStatus *s = &statuses[disagree];
        err_set(err, "rank %d (host %s) assigned the examples differently from rank 0 (plan %.12s vs %.12s): "
                "the task file, its data or the tokenizer differ between hosts", s->rank, s->host, s->plan,
                statuses[0].plan);
        rc = -1;
    }
    if (statuses != all && statuses != &mine) free(statuses);
    return rc;
}

/* ---------------------------------------------------------------- assignment */

static int64_t bytes_as_tokens(const char *s) {
    return s ? ((int64_t)strlen(s) + 3) / 4 : 0;
}

int64_t dist_example_cost(const Example *ex) {
    if (ex->request != REQ_LOGLIK) {
        /* generation (and measurements, whose length is their target) */
        int64_t prompt = ex->prompt_tokens > 0 ? ex->prompt_tokens : bytes_as_tokens(ex->prompt);
        if (prompt < ex->target_tokens) prompt = ex->target_tokens;
        return prompt + (int64_t)DIST_DECODE_FACTOR * (ex->max_new_tokens > 0 ? ex->max_new_tokens : 0) + 1;
    }
    int64_t cost = 1;
    for (int i = 0; i < ex->n_choices; i++) {
        int shared = 0; /* choices with the same context share its forward pass */
        for (int j = 0; j < i && !shared; j++) shared = strcmp(ex->contexts[i], ex->contexts[j]) == 0;
        if (!shared) cost += bytes_as_tokens(ex->contexts[i]);
        cost += bytes_as_tokens(ex->continuations[i]);
    }
    return cost;
}

typedef struct {
    int64_t cost;
    int index;
} Item;

static int by_cost_desc(const void *a, const void *b) {
    const Item *x = a, *y = b;
    if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

int dist_assign(const int64_t *cost, int n, int shares, int *owner, Err *err) {
    Item *items = malloc(sizeof *items * (size_t)(n > 0 ? n : 1));
    int64_t *load = calloc((size_t)shares, sizeof *load);
    if (!items || !load) {
        free(items), free(load);
        return err_set(err, "out of memory assigning %d examples to %d shares", n, shares);
    }
    for (int i = 0; i < n; i++) items[i] = (Item){cost[i], i};
    qsort(items, (size_t)n, sizeof *items, by_cost_desc);
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int s = 1; s < shares; s++)
            if (load[s] < load[best]) best = s;
        load[best] += items[i].cost;
        owner[items[i].index] = best;
    }
    free(items), free(load);
    return 0;
}
