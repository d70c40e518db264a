// SPDX-License-Identifier: GPL-2.0
/*
 * KBUS - a kernel-mediated message bus for embedded Linux.
 *
 * Clean-room implementation from the project's behavioural specification
 * (kbus-spec.md, sections 2-8, with the decisions of its section 13).
 *
 * This file: module load/unload, devices, file operations, ioctls. Others:
 *   kbus_msg.c      messages, write() assembly, read(), NEXTMSG, SEND
 *   kbus_deliver.c  names, bindings, delivery, synthetic messages,
 *                   Replier Bind Events and the set-aside list
 *   kbus_proc.c     /proc/kbus/bindings and /proc/kbus/stats
 * Written for Linux 6.1; builds from 5.10 to 7.2 with what differs in
 * kbus_compat.h (the only file that names kernel versions).
 *
 * Locking (lock order: top to bottom; kmod/README.md has the whole picture)
 * -------
 * - kbus_ksock.lock (mutex), one per Ksock: its own operations. read(),
 *   write(), every ioctl, and release take it first; it protects the
 *   Ksock's read and write state, sending state, LASTSENT and unreplied
 *   list. Every copy from or to user memory happens under this lock and no
 *   other, so a page fault that never ends (userfaultfd, FUSE) stalls only
 *   that Ksock (spec 14.3).
 * - kbus_dev.lock (mutex), one per device: routing state. Bindings and the
 *   name table, the Ksock table and list, outstanding Requests (the
 *   reservations), set-aside lists, MSGONLYONCE state, queue limits and the
 *   device flags and counters. SEND (after copying in), BIND, UNBIND,
 *   REPLIER, MAXMSGS, REPORTREPLIERBINDS, open and close take it for the
 *   routing work only. It is never held across a user copy and never while
 *   taking a kbus_ksock.lock.
 * - kbus_ksock.qlock (spinlock): the Ksock's queue and its counters. Taken
 *   on its own by NEXTMSG (the reader's hot path needs no device lock) and
 *   inside kbus_dev.lock by delivery; never two at once.
 * - kbus_dev.pending_lock (spinlock): the list of Ksocks in sending state,
 *   the only ones that "wake writers" touches.
 * - kbus_dev.wake_lock (irq-safe spinlock): the Ksocks whose wake-up a
 *   streaming sender held back. Delivery takes it inside kbus_dev.lock;
 *   the device's timer, SEND (after the device lock) and close take it
 *   with no other spinlock held.
 * - kbus_table_lock (mutex): the device table and count; taken alone.
 *   /proc looks a device up under it, drops it, then takes kbus_dev.lock.
 *   Devices are never freed before module unload.
 * - poll() takes no lock to report: queue_count and sending are read with
 *   READ_ONCE after registering on the Ksock's wait queue. Only a Ksock in
 *   sending state takes its own lock and the device lock to retry.
 *
 * Wake-ups: each Ksock has one wait queue, woken keyed with EPOLLIN when a
 * message is queued to it and with EPOLLOUT when its pending send may get
 * through. "Wake writers" walks only the Ksocks in sending state, and only
 * when a queue that was full lost a message, a reservation was released, a
 * binding went or a Replier bound; it costs one atomic read when no sender
 * waits. A streaming sender's EPOLLIN wake-ups are coalesced (up to
 * kbus_wake_coalesce_us; the rules are in kbus_deliver.c). A Ksock about
 * to sleep in poll() for its Reply spins briefly first (kbus_poll_spin()).
 *
 * Interruption: ioctl and open give ERESTARTSYS, read and write EAGAIN (as
 * the specification says); release and the device lock inside NEXTMSG and
 * poll wait uninterruptibly (they are short: the device lock is never held
 * across a user copy).
 *
 * 32-bit user space on a 64-bit kernel (compat): .compat_ioctl accepts
 * exactly the 32-bit request codes (size field 4, spec 3.9) and runs them
 * as the native ones; BIND, UNBIND and REPLIER read (and REPLIER writes)
 * their argument in the caller's layout. Every other argument is u32s only.
 * Headers are translated where they cross to and from user space
 * (kbus_msg.c). Whether a syscall is compat is in_compat_syscall()'s
 * answer for that syscall; kbus_compat.h keeps such differences.
 */

#include <linux/capability.h>
#include <linux/cdev.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/lockdep.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "kbus_compat.h"
#include "kbus_internal.h"

static int kbus_num_devices = 1;
module_param(kbus_num_devices, int, 0444);
MODULE_PARM_DESC(kbus_num_devices,
		 "Number of KBUS device nodes to create initially");
module_param_named(num_kbus_devices, kbus_num_devices, int, 0444);
MODULE_PARM_DESC(num_kbus_devices, "Alias of kbus_num_devices");

static unsigned int kbus_max_message_size = KBUS_DEF_MAX_MESSAGE_SIZE;
module_param(kbus_max_message_size, uint, 0444);
MODULE_PARM_DESC(kbus_max_message_size,
		 "Initial maximum message size of each device (bytes)");

unsigned int kbus_abs_max_message_size = KBUS_DEF_MAX_MESSAGE_SIZE;
module_param(kbus_abs_max_message_size, uint, 0444);
MODULE_PARM_DESC(kbus_abs_max_message_size,
		 "Absolute maximum message size, limit for MAXMSGSIZE (bytes)");

/* Spec section 14; root may change these at run time through sysfs. */
static bool kbus_unprivileged_admin;
module_param(kbus_unprivileged_admin, bool, 0644);
MODULE_PARM_DESC(kbus_unprivileged_admin,
		 "Let any user create devices and set VERBOSE and MAXMSGSIZE");

static unsigned int kbus_max_devices = KBUS_MAX_NUM_DEVICES;
module_param(kbus_max_devices, uint, 0644);
MODULE_PARM_DESC(kbus_max_devices,
		 "Most devices that NEWDEVICE may bring the count to (<= 256)");

unsigned int kbus_max_queued_bytes = KBUS_DEF_MAX_QUEUED_BYTES;
module_param(kbus_max_queued_bytes, uint, 0644);
MODULE_PARM_DESC(kbus_max_queued_bytes,
		 "Most message bytes queued to one Ksock; more is a full queue");

static unsigned int kbus_max_msgs_limit = KBUS_DEF_MAX_MSGS_LIMIT;
module_param(kbus_max_msgs_limit, uint, 0644);
MODULE_PARM_DESC(kbus_max_msgs_limit,
		 "Ceiling of MAXMSGS; larger requests are clamped to it");

unsigned int kbus_wake_coalesce_us = KBUS_DEF_WAKE_COALESCE_US;
module_param(kbus_wake_coalesce_us, uint, 0644);
MODULE_PARM_DESC(kbus_wake_coalesce_us,
		 "Longest a streaming sender's wake-ups are held to batch them (us, 0: never)");

static unsigned int kbus_reply_spin_us = KBUS_DEF_REPLY_SPIN_US;
module_param(kbus_reply_spin_us, uint, 0644);
MODULE_PARM_DESC(kbus_reply_spin_us,
		 "Longest poll() watches for a Reply before it sleeps (us, 0: never)");

static DEFINE_MUTEX(kbus_table_lock);
static struct kbus_dev *kbus_devices[KBUS_MAX_NUM_DEVICES];
static u32 kbus_devices_count;
static dev_t kbus_devt;
static struct cdev kbus_cdev;
static struct class *kbus_class;

/* Next value of a per-device counter; 0 is never handed out. */
u32 kbus_next_counter(u32 *counter)
{
	if (!*counter)
		*counter = 1;
	return (*counter)++;
}

/* ------------------------------------------------------------------------
 * Device table
 */

u32 kbus_num_devices_now(void)
{
	u32 n;

	mutex_lock(&kbus_table_lock);
	n = kbus_devices_count;
	mutex_unlock(&kbus_table_lock);
	return n;
}

struct kbus_dev *kbus_dev_get(u32 index)
{
	struct kbus_dev *dev = NULL;

	mutex_lock(&kbus_table_lock);
	if (index < kbus_devices_count)
		dev = kbus_devices[index];
	mutex_unlock(&kbus_table_lock);
	return dev;
}

static char *kbus_devnode(KBUS_DEVNODE_DEV *dev, umode_t *mode)
{
	if (mode)
		*mode = 0666;
	return NULL;
}

static void kbus_dev_free(struct kbus_dev *dev)
{
	kbus_wake_exit(dev);
	kbus_dev_tables_destroy(dev);
	xa_destroy(&dev->ksocks);
	mutex_destroy(&dev->lock);
	kfree(dev);
}

/* Create device number kbus_devices_count, if it is below @limit. */
static int kbus_dev_create(u32 limit, u32 *index)
{
	u32 i = kbus_devices_count;
	struct kbus_dev *dev;
	int err;

	lockdep_assert_held(&kbus_table_lock);
	if (i >= min_t(u32, limit, KBUS_MAX_NUM_DEVICES))
		return -EINVAL;
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	mutex_init(&dev->lock);
	dev->index = i;
	INIT_LIST_HEAD(&dev->bindings);
	INIT_LIST_HEAD(&dev->ksock_list);
	INIT_LIST_HEAD(&dev->pending);
	spin_lock_init(&dev->pending_lock);
	kbus_wake_init(dev);
	xa_init_flags(&dev->ksocks, XA_FLAGS_ALLOC1);
	dev->max_msg_size = kbus_max_message_size;
	err = kbus_dev_tables_init(dev);
	if (err) {
		xa_destroy(&dev->ksocks);
		mutex_destroy(&dev->lock);
		kfree(dev);
		return err;
	}
	dev->dev = device_create(kbus_class, NULL,
				 MKDEV(MAJOR(kbus_devt), i), dev, "kbus%u", i);
	if (IS_ERR(dev->dev)) {
		err = PTR_ERR(dev->dev);
		kbus_dev_free(dev);
		return err;
	}
	kbus_devices[i] = dev;
	kbus_devices_count = i + 1;
	WRITE_ONCE(kbus_num_devices, i + 1);
	*index = i;
	return 0;
}

/* Unload: no Ksock can be open, so the device holds no messages. */
static void kbus_destroy_devices(void)
{
	struct kbus_dev *dev;
	u32 i;

	mutex_lock(&kbus_table_lock);
	for (i = 0; i < kbus_devices_count; i++) {
		dev = kbus_devices[i];
		kbus_devices[i] = NULL;
		device_destroy(kbus_class, MKDEV(MAJOR(kbus_devt), i));
		WARN_ON(!list_empty(&dev->ksock_list) ||
			!list_empty(&dev->bindings) || dev->set_aside_count);
		kbus_dev_free(dev);
	}
	kbus_devices_count = 0;
	mutex_unlock(&kbus_table_lock);
}

/* ------------------------------------------------------------------------
 * File operations
 */

static int kbus_open(struct inode *inode, struct file *file)
{
	struct kbus_dev *dev = kbus_dev_get(iminor(inode));
	struct kbus_ksock *k;
	int err;

	if (!dev)
		return -ENOENT;
	k = kzalloc(sizeof(*k), KBUS_GFP);
	if (!k)
		return -ENOMEM;
	k->dev = dev;
	k->pid = get_pid(task_pid(current));
	k->uid = file->f_cred->euid;
	k->admin = file_ns_capable(file, &init_user_ns, CAP_SYS_ADMIN);
	k->writable = file->f_mode & FMODE_WRITE;
	k->max_messages = KBUS_DEF_MAX_MESSAGES;
	k->out_size = KBUS_INIT_OUTSTANDING_SIZE;
	mutex_init(&k->lock);
	spin_lock_init(&k->qlock);
	init_waitqueue_head(&k->wait);
	INIT_LIST_HEAD(&k->queue);
	INIT_LIST_HEAD(&k->unreplied);
	INIT_LIST_HEAD(&k->bindings);
	INIT_LIST_HEAD(&k->outstanding);
	INIT_LIST_HEAD(&k->set_aside);
	INIT_LIST_HEAD(&k->pending);
	INIT_LIST_HEAD(&k->wake_later);
	INIT_LIST_HEAD(&k->list);

	if (mutex_lock_interruptible(&dev->lock)) {
		err = -ERESTARTSYS;
		goto out_free;
	}
	/* Ids are unique while open; the counter wraps, skipping 0 */
	err = xa_alloc_cyclic(&dev->ksocks, &k->id, k, xa_limit_32b,
			      &dev->next_ksock_id, KBUS_GFP);
	if (err < 0) {
		mutex_unlock(&dev->lock);
		goto out_free;
	}
	list_add(&k->list, &dev->ksock_list);
	kbus_dbg(dev, "ksock %u opened by pid %d\n", k->id,
		 pid_nr(k->pid));
	mutex_unlock(&dev->lock);

	file->private_data = k;
	return 0;

out_free:
	put_pid(k->pid);
	mutex_destroy(&k->lock);
	kfree(k);
	return err;
}

static int kbus_release(struct inode *inode, struct file *file)
{
	struct kbus_ksock *k = file->private_data;
	struct kbus_dev *dev = k->dev;

	mutex_lock(&k->lock);
	mutex_lock(&dev->lock);
	kbus_dbg(dev, "ksock %u closing\n", k->id);
	kbus_ksock_teardown(k);
	mutex_unlock(&dev->lock);
	mutex_unlock(&k->lock);
	kbus_wake_forget(k);
	put_pid(k->pid);
	mutex_destroy(&k->lock);
	kfree(k);
	return 0;
}

static ssize_t kbus_read(struct file *file, char __user *buf, size_t count,
			 loff_t *ppos)
{
	struct kbus_ksock *k = file->private_data;
	ssize_t ret;

	if (mutex_lock_interruptible(&k->lock))
		return -EAGAIN;
	ret = kbus_read_bytes(k, buf, count);
	mutex_unlock(&k->lock);
	return ret;
}

static ssize_t kbus_write(struct file *file, const char __user *buf,
			  size_t count, loff_t *ppos)
{
	struct kbus_ksock *k = file->private_data;
	ssize_t ret;

	if (mutex_lock_interruptible(&k->lock))
		return -EAGAIN;
	ret = kbus_write_bytes(k, buf, count);
	mutex_unlock(&k->lock);
	return ret;
}

/*
 * Reply spinning: spin before sleeping, as KVM's halt polling does. A
 * Ksock about to sleep in poll() for EPOLLIN, with a Request of its own
 * outstanding and nothing queued, watches its queue for up to
 * kbus_reply_spin_us first: a Replier on another CPU usually answers
 * sooner than an idle CPU wakes up again. The spin ends at once when
 * another task wants this CPU or a signal is pending, and never starts with
 * one CPU online. A spin that ends without a message switches the Ksock's
 * spinning off until a message comes within twice the window of a poll
 * again, so a slow Replier costs one window, not one per Request. The
 * fields are read and written locklessly: they are a guess, and racing
 * pollers only guess worse.
 */
static u64 kbus_reply_spin_ns(void)
{
	return (u64)READ_ONCE(kbus_reply_spin_us) * NSEC_PER_USEC;
}

/* How spins ended, for tuning (debugfs kbus/reply_spin, kbus_proc.c) */
struct kbus_spin_stats kbus_spin_stats = {
	.spins = ATOMIC64_INIT(0),
	.caught = ATOMIC64_INIT(0),
	.cut = ATOMIC64_INIT(0),
};

/* Watch the queue for up to @window ns; true if a message came */
static bool kbus_reply_spin(struct kbus_ksock *k, u64 window)
{
	u64 start = local_clock();

	atomic64_inc(&kbus_spin_stats.spins);
	do {
		if (READ_ONCE(k->queue_count)) {
			atomic64_inc(&kbus_spin_stats.caught);
			return true;
		}
		if (need_resched() || !single_task_running() ||
		    signal_pending(current)) {
			atomic64_inc(&kbus_spin_stats.cut);
			break;
		}
		cpu_relax();
	} while (local_clock() - start < window);
	WRITE_ONCE(k->spin_off, true);
	WRITE_ONCE(k->spin_since, start);
	return false;
}

/* Would this poll() sleep waiting for a Reply? Then maybe spin first. */
static bool kbus_poll_spin(struct kbus_ksock *k, poll_table *wait,
			   __poll_t mask)
{
	__poll_t wanted = poll_requested_events(wait);
	u64 window = kbus_reply_spin_ns();

	if (!window || !kbus_poll_may_wait(wait) || !(wanted & EPOLLIN) ||
	    (mask & wanted) || !READ_ONCE(k->out_count) ||
	    num_online_cpus() < 2)
		return false;
	if (READ_ONCE(k->spin_off)) {
		WRITE_ONCE(k->spin_since, local_clock());
		return false;
	}
	return kbus_reply_spin(k, window);
}

/*
 * A message came after a poll() found none: quick enough to spin for? The
 * time measured includes this task's own wake-up, hence twice the window.
 */
static void kbus_poll_spin_learn(struct kbus_ksock *k)
{
	u64 since = READ_ONCE(k->spin_since);

	if (!since)
		return;
	WRITE_ONCE(k->spin_since, 0);
	if (local_clock() - since < 2 * kbus_reply_spin_ns())
		WRITE_ONCE(k->spin_off, false);
}

static __poll_t kbus_poll(struct file *file, poll_table *wait)
{
	struct kbus_ksock *k = file->private_data;
	__poll_t mask = 0;

	/*
	 * One wait queue per Ksock carries both directions (keyed), so epoll,
	 * which registers once, sees every wake-up.
	 */
	poll_wait(file, &k->wait, wait);
	/* Registration before the reads below; pairs with wq_has_sleeper() */
	smp_mb();
	/* Waiting for something: not a streaming sender (coalescing) */
	if (!READ_ONCE(k->received))
		WRITE_ONCE(k->received, true);
	if (k->writable) {
		if (READ_ONCE(k->sending)) {
			mutex_lock(&k->lock);
			if (k->sending)
				kbus_retry_pending(k);
			mutex_unlock(&k->lock);
		}
		if (!READ_ONCE(k->sending))
			mask |= EPOLLOUT | EPOLLWRNORM;
	}
	if (READ_ONCE(k->queue_count)) {
		kbus_poll_spin_learn(k);
		mask |= EPOLLIN | EPOLLRDNORM;
	} else if (kbus_poll_spin(k, wait, mask)) {
		mask |= EPOLLIN | EPOLLRDNORM;
	}
	return mask;
}

/* ------------------------------------------------------------------------
 * ioctls (spec 3.10, 3.11). Each runs under the Ksock's own lock; the
 * argument is read and written only outside the device lock.
 */

/* May the caller change device-wide settings (spec 14.1)? */
static bool kbus_admin_allowed(void)
{
	return READ_ONCE(kbus_unprivileged_admin) || capable(CAP_SYS_ADMIN);
}

/*
 * The argument of BIND, UNBIND and REPLIER (spec 3.2) in the caller's
 * layout: 12 bytes from a compat task, else the native struct (16 bytes on
 * a 64-bit kernel). kbus_bind_query has the same shape, its first word
 * being the output return_id.
 */
static int kbus_get_bind_arg(const void __user *argp,
			     struct kbus_bind_request *req)
{
	struct kbus_bind_request32 req32;

	if (!kbus_compat_task())
		return copy_from_user(req, argp, sizeof(*req)) ? -EFAULT : 0;
	if (copy_from_user(&req32, argp, sizeof(req32)))
		return -EFAULT;
	req->is_replier = req32.is_replier;
	req->name_len = req32.name_len;
	req->name = kbus_compat_ptr(req32.name);
	return 0;
}

/* REPLIER's answer: the whole argument back, in the caller's layout */
static int kbus_put_bind_query(void __user *argp,
			       const struct kbus_bind_query *query)
{
	struct kbus_bind_request32 q32;

	if (!kbus_compat_task())
		return copy_to_user(argp, query, sizeof(*query)) ? -EFAULT : 0;
	q32.is_replier = query->return_id;
	q32.name_len = query->name_len;
	q32.name = kbus_ptr_to_compat(query->name);
	return copy_to_user(argp, &q32, sizeof(q32)) ? -EFAULT : 0;
}

static long kbus_ioc_bind(struct kbus_ksock *k, void __user *argp, bool bind)
{
	struct kbus_bind_request req;
	struct kbus_dev *dev = k->dev;
	char *name;
	long ret;

	ret = kbus_get_bind_arg(argp, &req);
	if (ret)
		return ret;
	if (!req.name_len)
		return -EBADMSG;
	if (req.name_len > KBUS_MAX_NAME_LEN)
		return -ENAMETOOLONG;
	name = memdup_user_nul(req.name, req.name_len);
	if (IS_ERR(name))
		return PTR_ERR(name);
	mutex_lock(&dev->lock);
	if (bind)
		ret = kbus_bind(k, req.is_replier, name, req.name_len);
	else
		ret = kbus_unbind(k, req.is_replier, name, req.name_len);
	mutex_unlock(&dev->lock);
	kfree(name);
	return ret;
}

static long kbus_ioc_replier(struct kbus_ksock *k, void __user *argp)
{
	struct kbus_bind_request arg;
	struct kbus_bind_query query;
	struct kbus_dev *dev = k->dev;
	char *name;
	int err;

	err = kbus_get_bind_arg(argp, &arg);
	if (err)
		return err;
	query.name_len = arg.name_len;
	query.name = arg.name;
	if (!query.name_len || query.name_len > KBUS_MAX_NAME_LEN)
		return -ENAMETOOLONG;
	name = memdup_user_nul(query.name, query.name_len);
	if (IS_ERR(name))
		return PTR_ERR(name);
	mutex_lock(&dev->lock);
	query.return_id = kbus_find_replier(dev, name, query.name_len);
	mutex_unlock(&dev->lock);
	kfree(name);
	err = kbus_put_bind_query(argp, &query);
	if (err)
		return err;
	return query.return_id ? 1 : 0;
}

static long kbus_ioc_nextmsg(struct kbus_ksock *k, u32 __user *argp)
{
	u32 len;
	int ret;

	ret = kbus_nextmsg(k, &len);
	if (ret < 0)
		return ret;
	if (put_user(len, argp))
		return -EFAULT;
	return ret;
}

static long kbus_ioc_send(struct kbus_ksock *k, void __user *argp)
{
	struct kbus_msg_id id;
	int ret;

	ret = kbus_send(k, &id);
	if ((!ret || ret == -EAGAIN) && copy_to_user(argp, &id, sizeof(id)))
		return -EFAULT;
	return ret;
}

static long kbus_ioc_maxmsgs(struct kbus_ksock *k, u32 __user *argp)
{
	struct kbus_dev *dev = k->dev;
	u32 val;

	if (get_user(val, argp))
		return -EFAULT;
	mutex_lock(&dev->lock);
	if (val) {
		/* Spec 14.2: clamped to the ceiling, which is then reported */
		k->max_messages = clamp(val, 1U,
					max(READ_ONCE(kbus_max_msgs_limit), 1U));
		kbus_drain_set_aside(k);
		kbus_wake_writers(dev);
	}
	val = k->max_messages;
	mutex_unlock(&dev->lock);
	return put_user(val, argp);
}

static long kbus_ioc_nummsgs(struct kbus_ksock *k, u32 __user *argp)
{
	u32 n = READ_ONCE(k->queue_count) + READ_ONCE(k->set_aside_count);

	return put_user(n, argp);
}

/* The "just ask" convention of spec 3.12: 0/1 set, 0xFFFFFFFF queries. */
static int kbus_flag_arg(u32 __user *argp, u32 *val)
{
	if (get_user(*val, argp))
		return -EFAULT;
	if (*val > 1 && *val != KBUS_JUST_ASK)
		return -EINVAL;
	return 0;
}

/* MSGONLYONCE and VERBOSE: @flag lives under the device lock. */
static long kbus_ioc_flag(struct kbus_dev *dev, bool *flag, bool privileged,
			  u32 __user *argp)
{
	u32 val, old;
	int err;

	err = kbus_flag_arg(argp, &val);
	if (err)
		return err;
	if (privileged && val != KBUS_JUST_ASK && !kbus_admin_allowed())
		return -EPERM;
	mutex_lock(&dev->lock);
	old = *flag;
	if (val != KBUS_JUST_ASK)
		WRITE_ONCE(*flag, val);
	mutex_unlock(&dev->lock);
	return put_user(old, argp);
}

static long kbus_ioc_report(struct kbus_ksock *k, u32 __user *argp)
{
	struct kbus_dev *dev = k->dev;
	u32 val, old;
	long ret = 0;

	ret = kbus_flag_arg(argp, &val);
	if (ret)
		return ret;
	mutex_lock(&dev->lock);
	old = dev->report_binds;
	if (val != KBUS_JUST_ASK)
		dev->report_binds = val;
	if (val == 1)
		ret = kbus_report_current_binds(k);
	mutex_unlock(&dev->lock);
	if (ret)
		return ret;
	return put_user(old, argp);
}

static long kbus_ioc_maxmsgsize(struct kbus_dev *dev, u32 __user *argp)
{
	u32 val;

	if (get_user(val, argp))
		return -EFAULT;
	if (val == 0) {
		val = READ_ONCE(dev->max_msg_size);
	} else if (val == 1) {
		val = kbus_abs_max_message_size;
	} else {
		if (!kbus_admin_allowed())
			return -EPERM;
		if (val < KBUS_MIN_MAX_MESSAGE_SIZE ||
		    val > kbus_abs_max_message_size)
			return -EINVAL;
		WRITE_ONCE(dev->max_msg_size, val);
	}
	return put_user(val, argp);
}

static long kbus_ioc_newdevice(struct kbus_dev *dev, u32 __user *argp)
{
	u32 index = 0;
	int err;

	if (!kbus_admin_allowed())
		return -EPERM;
	/*
	 * Fail before creating anything if the answer cannot be written:
	 * a device made for a caller who never learns its number would be
	 * state left behind by bad input.
	 */
	if (put_user(index, argp))
		return -EFAULT;
	mutex_lock(&kbus_table_lock);
	err = kbus_dev_create(READ_ONCE(kbus_max_devices), &index);
	mutex_unlock(&kbus_table_lock);
	if (err)
		return err;
	kbus_dbg(dev, "created device %u\n", index);
	return put_user(index, argp);
}

static long kbus_ioctl_locked(struct kbus_ksock *k, unsigned int cmd,
			      void __user *argp)
{
	struct kbus_dev *dev = k->dev;

	lockdep_assert_held(&k->lock);
	switch (cmd) {
	case KBUS_IOC_RESET:
		return 0;
	case KBUS_IOC_BIND:
		return kbus_ioc_bind(k, argp, true);
	case KBUS_IOC_UNBIND:
		return kbus_ioc_bind(k, argp, false);
	case KBUS_IOC_KSOCKID:
		return put_user(k->id, (u32 __user *)argp);
	case KBUS_IOC_REPLIER:
		return kbus_ioc_replier(k, argp);
	case KBUS_IOC_NEXTMSG:
		return kbus_ioc_nextmsg(k, argp);
	case KBUS_IOC_LENLEFT:
		return put_user(kbus_lenleft(k), (u32 __user *)argp);
	case KBUS_IOC_SEND:
		return kbus_ioc_send(k, argp);
	case KBUS_IOC_DISCARD:
		kbus_write_discard(k);
		return 0;
	case KBUS_IOC_LASTSENT:
		if (copy_to_user(argp, &k->last_sent, sizeof(k->last_sent)))
			return -EFAULT;
		return 0;
	case KBUS_IOC_MAXMSGS:
		return kbus_ioc_maxmsgs(k, argp);
	case KBUS_IOC_NUMMSGS:
		return kbus_ioc_nummsgs(k, argp);
	case KBUS_IOC_UNREPLIEDTO:
		return put_user(k->unreplied_count, (u32 __user *)argp);
	case KBUS_IOC_MSGONLYONCE:
		return kbus_ioc_flag(dev, &k->only_once, false, argp);
	case KBUS_IOC_VERBOSE:
		return kbus_ioc_flag(dev, &dev->verbose, true, argp);
	case KBUS_IOC_NEWDEVICE:
		return kbus_ioc_newdevice(dev, argp);
	case KBUS_IOC_REPORTREPLIERBINDS:
		return kbus_ioc_report(k, argp);
	case KBUS_IOC_MAXMSGSIZE:
		return kbus_ioc_maxmsgsize(dev, argp);
	default:
		return -ENOTTY;
	}
}

/*
 * Spec 3.10 after the type and number checks: @cmd is a native code,
 * @size the argument size encoded in the code the caller gave.
 */
static long kbus_ioctl_run(struct file *file, unsigned int cmd,
			   unsigned int size, void __user *argp)
{
	struct kbus_ksock *k = file->private_data;
	long ret;

	if ((_IOC_DIR(cmd) & (_IOC_READ | _IOC_WRITE)) && !access_ok(argp, size))
		return -EFAULT;
	if (mutex_lock_interruptible(&k->lock))
		return -ERESTARTSYS;
	ret = kbus_ioctl_locked(k, cmd, argp);
	mutex_unlock(&k->lock);
	return ret;
}

static long kbus_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	if (_IOC_TYPE(cmd) != KBUS_IOC_MAGIC || _IOC_NR(cmd) > KBUS_IOC_MAXNR)
		return -ENOTTY;
	return kbus_ioctl_run(file, cmd, _IOC_SIZE(cmd), (void __user *)arg);
}

#ifdef CONFIG_COMPAT
/*
 * A task with 4-byte pointers on a 64-bit kernel. Its request codes encode
 * sizeof(char *) == 4 (spec 3.9, "32-bit" columns). Exactly those run, as
 * the native code with the same direction and number; the native codes
 * themselves (size 8) are not its ABI and get ENOTTY, like any other code
 * that is no table entry. Codes without a size are the same in both.
 */
static long kbus_compat_ioctl(struct file *file, unsigned int cmd,
			      unsigned long arg)
{
	unsigned int size = _IOC_SIZE(cmd);
	unsigned int native = cmd;

	if (_IOC_TYPE(cmd) != KBUS_IOC_MAGIC || _IOC_NR(cmd) > KBUS_IOC_MAXNR)
		return -ENOTTY;
	if (size == sizeof(compat_uptr_t))
		native = _IOC(_IOC_DIR(cmd), KBUS_IOC_MAGIC, _IOC_NR(cmd),
			      sizeof(char *));
	else if (size)
		return -ENOTTY;
	return kbus_ioctl_run(file, native, size, compat_ptr(arg));
}
#endif

static const struct file_operations kbus_fops = {
	.owner = THIS_MODULE,
	.open = kbus_open,
	.release = kbus_release,
	.read = kbus_read,
	.write = kbus_write,
	.poll = kbus_poll,
	.unlocked_ioctl = kbus_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl = kbus_compat_ioctl,
#endif
	.llseek = noop_llseek,
};

/* ------------------------------------------------------------------------
 * Module load and unload
 */

static int kbus_check_params(void)
{
	if (kbus_num_devices < 1 || kbus_num_devices > KBUS_MAX_NUM_DEVICES)
		return -EINVAL;
	if (kbus_abs_max_message_size < KBUS_MIN_MAX_MESSAGE_SIZE ||
	    kbus_abs_max_message_size > KBUS_ABS_MAX_MESSAGE_SIZE_LIMIT)
		return -EINVAL;
	if (kbus_max_message_size < KBUS_MIN_MAX_MESSAGE_SIZE)
		return -EINVAL;
	/* So that lowering only the absolute maximum works */
	kbus_max_message_size = min(kbus_max_message_size,
				    kbus_abs_max_message_size);
	return 0;
}

static int kbus_create_initial_devices(void)
{
	u32 wanted = kbus_num_devices, index, i;
	int err = 0;

	mutex_lock(&kbus_table_lock);
	for (i = 0; i < wanted && !err; i++)
		err = kbus_dev_create(KBUS_MAX_NUM_DEVICES, &index);
	mutex_unlock(&kbus_table_lock);
	return err;
}

/*
 * The character device goes live last: once cdev_add() returns, a node
 * can be opened, so nothing after it may fail.
 */
static int __init kbus_init(void)
{
	int err;

	err = kbus_check_params();
	if (err) {
		pr_err("kbus: invalid module parameters\n");
		return err;
	}
	err = kbus_caches_init();
	if (err)
		return err;
	err = alloc_chrdev_region(&kbus_devt, 0, KBUS_MAX_NUM_DEVICES, "kbus");
	if (err)
		goto out_caches;
	kbus_class = kbus_class_create("kbus");
	if (IS_ERR(kbus_class)) {
		err = PTR_ERR(kbus_class);
		goto out_region;
	}
	kbus_class->devnode = kbus_devnode;
	err = kbus_create_initial_devices();
	if (err)
		goto out_devices;
	err = kbus_proc_init();
	if (err)
		goto out_devices;
	cdev_init(&kbus_cdev, &kbus_fops);
	kbus_cdev.owner = THIS_MODULE;
	err = cdev_add(&kbus_cdev, kbus_devt, KBUS_MAX_NUM_DEVICES);
	if (err)
		goto out_proc;
	pr_info("kbus: %u devices\n", kbus_num_devices_now());
	return 0;

out_proc:
	kbus_proc_exit();
out_devices:
	kbus_destroy_devices();
	class_destroy(kbus_class);
out_region:
	unregister_chrdev_region(kbus_devt, KBUS_MAX_NUM_DEVICES);
out_caches:
	kbus_caches_exit();
	return err;
}

static void __exit kbus_exit(void)
{
	cdev_del(&kbus_cdev);
	kbus_proc_exit();
	kbus_destroy_devices();
	class_destroy(kbus_class);
	unregister_chrdev_region(kbus_devt, KBUS_MAX_NUM_DEVICES);
	/* Queued answers may still wait for RCU-deferred frees of ids */
	rcu_barrier();
	kbus_caches_exit();
	kbus_check_leaks();
}

module_init(kbus_init);
module_exit(kbus_exit);

MODULE_DESCRIPTION("KBUS kernel-mediated message bus");
MODULE_LICENSE("GPL");
