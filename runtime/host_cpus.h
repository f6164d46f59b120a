/* The CPUs this process may use, which is what its thread counts should follow: the online
 * CPUs, less those outside its affinity mask (taskset, numactl, Slurm and container cpusets,
 * mpirun's binding of a rank), less what its cgroup's CPU quota leaves (docker --cpus,
 * Kubernetes CPU limits), rounded up. More threads than that share CPUs, and each call
 * waits for the piece a preempted thread holds. Measured on 2 vCPUs (Zen 3), Q4_K GEMV
 * 4096 x 14336, cpu q8 path:
 *   taskset to 1 CPU: 2 threads 1.07-1.31x the time of 1 (M = 1 and 8);
 *   8 threads on 2 CPUs: 1.27-1.33x the time of 2 threads, p75 2.5x on 1024 x 4096;
 *   a 1-CPU cgroup quota, samples of 1 s: 2 threads 1.21-1.29x the time of 1 (one noisy
 *   round 0.97-1.10); in samples of 2 ms their median looks faster, since they run on both
 *   CPUs until the quota throttles them, and the slowest sample took 13-57 ms;
 *   PoCL, 8 threads on 2 CPUs: 2.8-2.9x the launch time of 2 threads, 1.2-1.3x the M = 1
 *   GEMV time (exact path); under the 1-CPU quota, q8 path, 1 thread 1.07-1.20x faster
 *   at M = 1. */
#ifndef KD_HOST_CPUS_H
#define KD_HOST_CPUS_H

typedef struct kd_host_cpus {
    int online;        /* sysconf(_SC_NPROCESSORS_ONLN), at least 1 */
    int affinity;      /* CPUs in the affinity mask; 0 where unknown */
    double quota;      /* CPUs the CFS quota allows (the tightest of the process's cgroup
                        * and its ancestors, v1 or v2); 0 where none */
    int usable;        /* min(online, affinity, ceil(quota)), at least 1 */
    const char *bound; /* what set usable: "online", "affinity" or "cgroup quota" */
} kd_host_cpus;

/* This process's CPUs, read now (affinity and cgroups may change while it runs). */
void kd_host_cpus_read(kd_host_cpus *out);

/* The CPUs the cgroup CPU quota of this process allows, 0 where none: read from
 * root/proc/self/cgroup, root/proc/self/mountinfo and the cgroup files under the mount
 * points they name (root: "" for the real ones; tests pass a tree of their own). */
double kd_cgroup_cpu_quota(const char *root);

/* A cgroup v2 cpu.max ("max 100000", "150000 100000") as CPUs: 0 for no limit or text
 * that is not a limit (malformed, zero or negative numbers). */
double kd_cgroup2_cpu_max(const char *text);
/* A cgroup v1 pair cpu.cfs_quota_us, cpu.cfs_period_us the same way ("-1": no limit). */
double kd_cgroup1_cpu_quota(const char *quota, const char *period);

#endif
