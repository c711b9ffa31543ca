// Thread pool: persistent workers, the caller participates as thread 0. An operation is published
// by bumping a generation counter; workers spin on it for a short while (so back-to-back ops cost
// ~1 µs to fork/join) and then sleep on a futex, so an idle pool burns no CPU.
//
// Workers *join* an operation while it is open and the caller closes it once its own share is
// done, then waits only for the workers that joined. All jobs hand out work dynamically, so when
// a worker is descheduled (more runnable threads than cores) the caller finishes without it
// instead of waiting a time slice for it to check in.
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

// How long an idle worker spins before sleeping, and how long the caller spins on the join before
// it sleeps too (short: when the cores are oversubscribed, spinning steals the time slice the
// straggling worker needs).
#define SPIN_NS 100000
#define JOIN_SPIN_NS 20000

#define CLOSED 0x80000000u

typedef struct {
    void *p;
    size_t size;
    char pad[64 - sizeof(void *) - sizeof(size_t)];  // one cache line per thread
} scratch_slot;

typedef struct {
    hk_pool *pool;
    int tid;
} worker_arg;

struct hk_pool {
    int n;
    int level;
    pthread_t *threads;
    worker_arg *args;
    scratch_slot *scratch;
    void *shared;
    size_t shared_size;

    hk_job_fn fn;
    void *ctx;
    _Alignas(64) _Atomic uint32_t gen;  // futex word: bumped once per operation
    _Atomic int sleepers;               // workers inside futex_wait (or about to be)
    _Atomic int stop;
    _Alignas(64) _Atomic uint32_t active;  // futex word: CLOSED bit | workers inside the operation
    _Atomic int joiner_sleeps;             // the caller sleeps on `active`
};

static inline void cpu_relax(void) {
#if HK_X86
    _mm_pause();
#endif
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected) {
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)addr; (void)expected;
    sched_yield();
#endif
}

static void futex_wake_all(_Atomic uint32_t *addr) {
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

// Waits until gen differs from `seen`: spin first, then sleep.
static uint32_t wait_for_work(hk_pool *pool, uint32_t seen) {
    uint64_t start = now_ns();
    for (unsigned it = 1;; it++) {
        uint32_t g = atomic_load_explicit(&pool->gen, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if ((it & 255) == 0 && now_ns() - start > SPIN_NS) break;
    }
    for (;;) {
        // seq_cst increment + reload pairs with the publisher's gen bump + sleepers read: either
        // the publisher sees us as a sleeper and wakes us, or we see the new generation.
        atomic_fetch_add(&pool->sleepers, 1);
        uint32_t g = atomic_load(&pool->gen);
        if (g == seen) futex_wait(&pool->gen, seen);
        atomic_fetch_sub(&pool->sleepers, 1);
        g = atomic_load_explicit(&pool->gen, memory_order_acquire);
        if (g != seen) return g;
    }
}

static void *worker_main(void *p) {
    worker_arg *arg = p;
    hk_pool *pool = arg->pool;
    uint32_t seen = 0;
    for (;;) {
        seen = wait_for_work(pool, seen);
        if (atomic_load_explicit(&pool->stop, memory_order_acquire)) break;
        // Join the open operation, if any (fn/ctx only change while it is closed and empty).
        uint32_t a = atomic_load(&pool->active);
        while (!(a & CLOSED) && !atomic_compare_exchange_weak(&pool->active, &a, a + 1)) {}
        if (a & CLOSED) continue;
        pool->fn(pool->ctx, arg->tid, pool->n);
        // seq_cst decrement + flag read pair with the caller's flag store + re-read of active.
        if (atomic_fetch_sub(&pool->active, 1) == (CLOSED | 1) && atomic_load(&pool->joiner_sleeps))
            futex_wake_all(&pool->active);
    }
    return NULL;
}

hk_pool *hk_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    hk_pool *pool = calloc(1, sizeof(hk_pool));
    if (!pool) return NULL;
    pool->n = n_threads;
    pool->level = hk_simd_level();
    atomic_init(&pool->active, CLOSED);
    pool->scratch = calloc((size_t)n_threads, sizeof(scratch_slot));
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    pool->args = calloc((size_t)n_threads, sizeof(worker_arg));
    if (!pool->scratch || !pool->threads || !pool->args) {
        free(pool->scratch); free(pool->threads); free(pool->args); free(pool);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        pool->args[i] = (worker_arg){pool, i};
        if (pthread_create(&pool->threads[i], NULL, worker_main, &pool->args[i]) != 0) {
            pool->n = i;  // run with the threads we got
            break;
        }
    }
    return pool;
}

void hk_pool_destroy(hk_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->stop, 1);
    atomic_fetch_add(&pool->gen, 1);
    futex_wake_all(&pool->gen);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    for (int i = 0; i < pool->n; i++) free(pool->scratch[i].p);
    free(pool->shared);
    free(pool->scratch);
    free(pool->threads);
    free(pool->args);
    free(pool);
}

int hk_pool_threads(const hk_pool *pool) { return pool ? pool->n : 1; }

int hk_pool_level(const hk_pool *pool) { return pool ? pool->level : hk_simd_level(); }

void hk_pool_set_simd_level(hk_pool *pool, int level) {
    const int max = hk_simd_level();
    pool->level = level < 0 ? 0 : (level > max ? max : level);
}

void hk_pool_run(hk_pool *pool, hk_job_fn fn, void *ctx) {
    if (!pool || pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->active, 0);   // open
    atomic_fetch_add(&pool->gen, 1);  // seq_cst: publishes fn/ctx (see wait_for_work)
    if (atomic_load(&pool->sleepers) > 0) futex_wake_all(&pool->gen);
    fn(ctx, 0, pool->n);
    uint32_t a = atomic_fetch_or(&pool->active, CLOSED) | CLOSED;
    const uint64_t start = now_ns();
    for (unsigned it = 1; a != CLOSED; it++) {
        cpu_relax();
        if ((it & 255) == 0 && now_ns() - start > JOIN_SPIN_NS) break;
        a = atomic_load_explicit(&pool->active, memory_order_acquire);
    }
    if (a == CLOSED) return;
    atomic_store(&pool->joiner_sleeps, 1);
    while ((a = atomic_load(&pool->active)) != CLOSED) futex_wait(&pool->active, a);
    atomic_store(&pool->joiner_sleeps, 0);
}

// Grows a buffer to at least `bytes` (64-byte aligned, contents not preserved).
static void *grow(void **p, size_t *size, size_t bytes) {
    if (bytes <= *size) return *p;
    size_t want = *size ? *size : 4096;
    while (want < bytes) want *= 2;
    void *q = NULL;
    if (posix_memalign(&q, 64, want) != 0) return NULL;
    free(*p);
    *p = q;
    *size = want;
    return q;
}

void *hk_pool_scratch(hk_pool *pool, int tid, size_t bytes) {
    scratch_slot *s = &pool->scratch[tid];
    return grow(&s->p, &s->size, bytes);
}

void *hk_pool_shared(hk_pool *pool, size_t bytes) { return grow(&pool->shared, &pool->shared_size, bytes); }

// ---- parallel_for --------------------------------------------------------------------------------

typedef struct {
    hk_task_fn fn;
    void *ctx;
    int64_t n, chunk;
    _Alignas(64) _Atomic int64_t next;
} pfor_ctx;

static void pfor_job(void *p, int tid, int nth) {
    (void)tid; (void)nth;
    pfor_ctx *c = p;
    for (;;) {
        const int64_t i0 = atomic_fetch_add_explicit(&c->next, c->chunk, memory_order_relaxed);
        if (i0 >= c->n) break;
        const int64_t i1 = i0 + c->chunk < c->n ? i0 + c->chunk : c->n;
        for (int64_t i = i0; i < i1; i++) c->fn(c->ctx, i);
    }
}

void hk_parallel_for(hk_pool *pool, int64_t n, hk_task_fn fn, void *ctx) {
    if (n <= 0) return;
    const int nth = hk_pool_threads(pool);
    if (nth == 1 || n == 1) {
        for (int64_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    // Dynamic chunks (about 4 per thread) balance load when a core is busy elsewhere.
    pfor_ctx c = {.fn = fn, .ctx = ctx, .n = n, .chunk = (n + 4 * nth - 1) / (4 * nth)};
    atomic_init(&c.next, 0);
    hk_pool_run(pool, pfor_job, &c);
}
