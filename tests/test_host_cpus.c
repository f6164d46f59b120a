/* The CPUs this process may use (host_cpus.h): the cgroup quota parsers, the lookup through
 * /proc/self/cgroup and mountinfo on trees made here (v1 and v2, nested limits, a
 * container's mount root, escaped mount points, lookups that must find nothing), and the
 * counts of this host. tests/test_cpu_budget.sh checks the thread counts under taskset. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host_cpus.h"
#include "kd_test_util.h"

static char tree[256]; /* this test's fake root, under $TMPDIR */

static int near(double a, double b) { return fabs(a - b) < 1e-9; }

static void test_cgroup2_cpu_max(void)
{
    CU_ASSERT(near(kd_cgroup2_cpu_max("150000 100000\n"), 1.5));
    CU_ASSERT(near(kd_cgroup2_cpu_max("50000 100000"), 0.5));
    CU_ASSERT(near(kd_cgroup2_cpu_max("400000 100000 \n"), 4.0));
    /* no limit, and text that is not one */
    const char *none[] = {"max 100000\n", "", "\n", "abc", "150000", "150000\n", "-5 100000",
                          "0 100000", "150000 0", "150000x 100000", "150000 100000x",
                          "99999999999999999999 100000", "1.5 1"};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        CU_ASSERT_EQUAL(kd_cgroup2_cpu_max(none[i]), 0);
        if (kd_cgroup2_cpu_max(none[i]) != 0)
            printf("\n  cpu.max '%s' read as a limit", none[i]);
    }
}

static void test_cgroup1_cpu_quota(void)
{
    CU_ASSERT(near(kd_cgroup1_cpu_quota("200000\n", "100000\n"), 2.0));
    CU_ASSERT(near(kd_cgroup1_cpu_quota("25000", "100000"), 0.25));
    CU_ASSERT_EQUAL(kd_cgroup1_cpu_quota("-1\n", "100000\n"), 0); /* no limit */
    CU_ASSERT_EQUAL(kd_cgroup1_cpu_quota("", ""), 0);
    CU_ASSERT_EQUAL(kd_cgroup1_cpu_quota("100000", "0"), 0);
    CU_ASSERT_EQUAL(kd_cgroup1_cpu_quota("100000", "-1"), 0);
    CU_ASSERT_EQUAL(kd_cgroup1_cpu_quota("1e5", "100000"), 0);
}

/* Writes text to tree/rel, making its directories. */
static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tree, rel);
    for (char *p = path + strlen(tree) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            CU_FAIL("mkdir");
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void clear_tree(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", tree);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
    CU_ASSERT_EQUAL(mkdir(tree, 0755), 0);
}

#define MOUNT_V2 "30 20 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"

static void test_v2_tightest_ancestor(void)
{
    clear_tree();
    put("proc/self/cgroup", "0::/a/b\n");
    put("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" MOUNT_V2);
    put("sys/fs/cgroup/a/cpu.max", "200000 100000\n");
    put("sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
    CU_ASSERT(near(kd_cgroup_cpu_quota(tree), 2.0)); /* the parent's limit holds below it */
    put("sys/fs/cgroup/a/b/cpu.max", "50000 100000\n");
    CU_ASSERT(near(kd_cgroup_cpu_quota(tree), 0.5)); /* the child's, tighter */
    put("sys/fs/cgroup/cpu.max", "25000 100000\n");
    CU_ASSERT(near(kd_cgroup_cpu_quota(tree), 0.25)); /* the mount point's own, tighter still */
}

static void test_v2_none(void)
{
    clear_tree();
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0); /* no /proc at all */
    put("proc/self/cgroup", "0::/a\n");
    put("proc/self/mountinfo", MOUNT_V2);
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0); /* no cpu.max anywhere */
    put("sys/fs/cgroup/a/cpu.max", "max 100000\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
    /* a limit on a sibling is not ours */
    put("sys/fs/cgroup/b/cpu.max", "100000 100000\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
    /* nor one on the path of a v1 hierarchy's line (hybrid mode lists those first) */
    put("proc/self/cgroup", "4:memory:/b\n0::/a\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
}

static void test_v1_container_root(void)
{
    clear_tree();
    /* a container without a cgroup namespace: its cgroup is /docker/abc, mounted as the
     * root of its view */
    put("proc/self/cgroup", "7:memory:/docker/abc\n5:cpu,cpuacct:/docker/abc\n0::/\n");
    put("proc/self/mountinfo",
        "40 30 0:33 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "41 30 0:34 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n");
    put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "300000\n");
    put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    CU_ASSERT(near(kd_cgroup_cpu_quota(tree), 3.0));
    put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
}

static void test_v1_lookups_that_find_nothing(void)
{
    clear_tree();
    /* the hierarchy with cpuacct but not cpu: "cpu" must match a whole controller name */
    put("proc/self/cgroup", "2:cpuacct:/\n");
    put("proc/self/mountinfo", "33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n");
    put("sys/fs/cgroup/cpuacct/cpu.cfs_quota_us", "100000\n");
    put("sys/fs/cgroup/cpuacct/cpu.cfs_period_us", "100000\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
    /* our cgroup outside the mount's root: the files there belong to another cgroup */
    put("proc/self/cgroup", "1:cpu:/other\n");
    put("proc/self/mountinfo", "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
    put("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "100000\n");
    put("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
    /* a root that is a prefix of the path but not its parent directory (a lookup that took
     * it would land in .../cpudef, given a limit here to show it) */
    put("proc/self/cgroup", "1:cpu:/docker/abcdef\n");
    put("sys/fs/cgroup/cpudef/cpu.cfs_quota_us", "50000\n");
    put("sys/fs/cgroup/cpudef/cpu.cfs_period_us", "100000\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
    /* and the same mount with our cgroup inside its root: found */
    put("proc/self/cgroup", "1:cpu:/docker/abc\n");
    CU_ASSERT(near(kd_cgroup_cpu_quota(tree), 1.0));
}

static void test_escaped_mount_point(void)
{
    clear_tree();
    put("proc/self/cgroup", "0::/job\n");
    put("proc/self/mountinfo", "30 20 0:26 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n");
    put("mnt/cg two/job/cpu.max", "150000 100000\n");
    CU_ASSERT(near(kd_cgroup_cpu_quota(tree), 1.5));
}

static void test_malformed_files(void)
{
    clear_tree();
    put("proc/self/cgroup", "garbage\n::\n0:\n1:cpu\n");
    put("proc/self/mountinfo", "no separator here\n - \n1 2 3 - cgroup2\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
    put("proc/self/cgroup", "0::/a\n");
    put("proc/self/mountinfo", "1 2 3 - cgroup2 x y\n" MOUNT_V2);
    put("sys/fs/cgroup/a/cpu.max", "\xff\xfe 100000\n");
    CU_ASSERT_EQUAL(kd_cgroup_cpu_quota(tree), 0);
}

static void test_this_host(void)
{
    kd_host_cpus c;
    kd_host_cpus_read(&c);
    printf("\n  online %d, affinity %d, quota %.2f: usable %d (%s)", c.online, c.affinity, c.quota,
           c.usable, c.bound);
    CU_ASSERT(c.online >= 1);
    CU_ASSERT(c.usable >= 1 && c.usable <= c.online);
    CU_ASSERT(c.affinity >= 0 && c.affinity <= c.online);
    if (c.affinity > 0)
        CU_ASSERT(c.usable <= c.affinity);
    if (c.quota > 0)
        CU_ASSERT(c.usable <= (int)ceil(c.quota));
    CU_ASSERT(strcmp(c.bound, "online") == 0 ? c.usable == c.online
              : strcmp(c.bound, "affinity") == 0 ? c.usable == c.affinity
              : strcmp(c.bound, "cgroup quota") == 0 && c.usable == (int)ceil(c.quota));
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tree, sizeof tree, "%s/kd-host-cpus-%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("host_cpus", NULL, NULL);
    CU_add_test(s, "cgroup v2 cpu.max", test_cgroup2_cpu_max);
    CU_add_test(s, "cgroup v1 quota and period", test_cgroup1_cpu_quota);
    CU_add_test(s, "v2: the tightest limit from the cgroup up", test_v2_tightest_ancestor);
    CU_add_test(s, "v2: no limit", test_v2_none);
    CU_add_test(s, "v1: a container's mount root", test_v1_container_root);
    CU_add_test(s, "v1: lookups that must find nothing", test_v1_lookups_that_find_nothing);
    CU_add_test(s, "an escaped mount point", test_escaped_mount_point);
    CU_add_test(s, "malformed files", test_malformed_files);
    CU_add_test(s, "this host's counts", test_this_host);
    int rc = kd_test_main();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", tree);
    return kd_test_system(cmd) == 0 ? rc : 1;
}
