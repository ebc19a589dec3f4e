/* How a lane asks the scheduler for its time: a short slice while it carries keystrokes,
   none while it floods. */
#include "plane.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#endif

#define SHORT_SLICE_NS 100000
#define WINDOW_NS 10000000
#define FLOOD_BYTES (64 * 1024)
#define CALM_NS 100000000 /* no flood for this long: short slices again */

uint64_t plane_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A lane that carries keystrokes and their echoes asks the scheduler (EEVDF, Linux 6.12
   on) for a short slice, so that it runs as soon as it wakes rather than after the threads
   busy with a flood end their longer ones; a lane that floods gives it up, or it would cut
   in front of the others' keystrokes too. Elsewhere and on older kernels nothing is asked. */
static void set_slice(PlaneObject *p, int slice) {
    if (slice == p->slice) return;
    p->slice = slice;
#if defined(__linux__) && defined(SYS_sched_setattr)
    struct {
        uint32_t size, policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
    } attr = {sizeof attr, 0, 0, 0, 0, (uint64_t)slice, 0, 0};
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)); /* kept as it is */
    if (errno != 0) return;
    attr.nice = nice;
    (void)syscall(SYS_sched_setattr, 0, &attr, 0);
#endif
}

/* Over windows of WINDOW_NS: more than FLOOD_BYTES read in one is a flood. */
void plane_pace(PlaneObject *p) {
    uint64_t now = plane_now_ns();
    if (now - p->window_at < WINDOW_NS) return;
    if (p->read_now > FLOOD_BYTES) p->flood_at = now;
    p->read_now = 0;
    p->window_at = now;
    set_slice(p, now - p->flood_at > CALM_NS ? SHORT_SLICE_NS : 0);
}
