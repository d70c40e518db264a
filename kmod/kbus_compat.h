/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KBUS: what differs between kernel versions and configurations, in one
 * place. The rest of the module is written for Linux 6.1 and uses the
 * helpers below where a kernel version or a configuration option changes
 * what is available. (checkpatch warns on each line that names the
 * kernel's version code: keep such lines few, and here.)
 */
#ifndef KBUS_COMPAT_H
#define KBUS_COMPAT_H

#include <linux/compat.h>
#include <linux/device.h>
#include <linux/hrtimer.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/types.h>
#include <linux/version.h>

/*
 * Kernel versions. The module builds from 5.10 to 7.2; these are the
 * interfaces it uses that changed in between.
 */

/* class_create() lost its owner argument in 6.4. */
static inline struct class *kbus_class_create(const char *name)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	return class_create(name);
#else
	return class_create(THIS_MODULE, name);
#endif
}

/* A class's devnode() callback takes a const device since 6.2. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define KBUS_DEVNODE_DEV const struct device
#else
#define KBUS_DEVNODE_DEV struct device
#endif

/*
 * Will this poll() sleep if nothing is ready? That is its first pass, with
 * a timeout: the table still has its queueing function (do_poll() clears
 * it for a zero timeout and after the first pass; epoll passes none once
 * the file is registered). poll_does_not_wait() said so up to 6.12 and is
 * gone by 7.2; its own test stands in on every kernel, so no version
 * boundary has to be guessed.
 */
static inline bool kbus_poll_may_wait(const struct poll_table_struct *p)
{
	return p && p->_qproc;
}

/* hrtimer_setup() replaced hrtimer_init() and the function assignment in 6.13. */
static inline void kbus_hrtimer_setup(struct hrtimer *timer,
				      enum hrtimer_restart (*fn)(struct hrtimer *))
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
	hrtimer_setup(timer, fn, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
#else
	hrtimer_init(timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	timer->function = fn;
#endif
}

/*
 * 32-bit user space on a 64-bit kernel. in_compat_syscall() exists in
 * every configuration (always false without CONFIG_COMPAT); older kernels
 * define compat_ptr() and ptr_to_compat() only with CONFIG_COMPAT, so they
 * are used only there (the fallbacks below are never reached).
 */

/* Does the current syscall come from a task with 4-byte pointers? */
static inline bool kbus_compat_task(void)
{
	return IS_ENABLED(CONFIG_COMPAT) && in_compat_syscall();
}

/* A 4-byte user pointer of such a task, as a kernel user pointer */
static inline void __user *kbus_compat_ptr(u32 uptr)
{
#ifdef CONFIG_COMPAT
	return compat_ptr(uptr);
#else
	return (void __user *)(uintptr_t)uptr;
#endif
}

/* The 4-byte form of a user pointer that came from kbus_compat_ptr() */
static inline u32 kbus_ptr_to_compat(const void __user *ptr)
{
#ifdef CONFIG_COMPAT
	return ptr_to_compat((void __user *)ptr);
#else
	return (u32)(uintptr_t)ptr;
#endif
}

#endif /* KBUS_COMPAT_H */
