/* probe.h: how every adversarial probe says what the kernel answered.
 *
 * Include it first (it asks glibc for strerrorname_np). A probe prints one
 * token per attack on stdout: "ok", or "errno=NAME" with the kernel's errno
 * by name (errno=EACCES from Landlock, errno=EPERM from seccomp), which is
 * what tests/adversarial asserts. One table for every probe: glibc's.
 */
#ifndef CORRAL_PROBE_H
#define CORRAL_PROBE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The errno's name ("EACCES"), or "E<number>" for one glibc does not name. */
static inline const char *errno_name(int e)
{
    static char unnamed[16];
    const char *name = strerrorname_np(e);
    if (name)
        return name;
    snprintf(unnamed, sizeof unnamed, "E%d", e);
    return unnamed;
}

/* Print the answer to a call that returned RET (< 0: failed with errno). */
static inline int answer(long ret)
{
    if (ret < 0)
        printf("errno=%s\n", errno_name(errno));
    else
        puts("ok");
    return 0;
}

#endif
