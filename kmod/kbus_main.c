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
 * Written for Linux 6.1 (class_create() and the devnode callback changed
 * signature in 6.4 and 6.2).
 *
 * Locking
 * -------
 * - Each KBUS device has one mutex, kbus_dev.lock. It protects all of the
 *   device's state and all state of every Ksock opened on it: bindings,
 *   Ksock list, queues, set-aside list, counters, flags, and each Ksock's
 *   read, write and sending state. Every file operation (open, release,
 *   read, write, poll, ioctl) and every /proc record takes it for the whole
 *   operation, so all operations on a device are serialised and every
 *   Listener sees the same message order. Delivery to another Ksock of the
 *   same device is therefore safe without any further lock. Nothing ever
 *   holds two device locks.
 * - kbus_table_lock (a mutex) protects the device table kbus_devices[] and
 *   the device count (kbus_num_devices). Lock order: a device lock may be
 *   held when taking kbus_table_lock (NEWDEVICE does this), never the other
 *   way round. /proc readers take kbus_table_lock only to look up a device
 *   pointer, drop it, then take that device's lock. Devices are never freed
 *   before module unload, and unload cannot happen while a file is open or
 *   (after proc_remove() returns) while a /proc file is being read.
 * - The driver takes no spinlock of its own; it sleeps (allocates, copies
 *   from/to user space) only with mutexes held. Wait queues:
 *   kbus_ksock.read_wait is woken whenever a message is queued to that
 *   Ksock; kbus_dev.write_wait is woken whenever room may have appeared
 *   (a pop, an UNBIND, a released reservation, MAXMSGS, an open or close)
 *   or the Replier for a name may have changed (a Replier BIND), which is
 *   what poll() of a Ksock in sending state waits for. Wake-ups
 *   are keyed (EPOLLIN, EPOLLOUT).
 * - Lock interruption: ioctl and open give ERESTARTSYS, read and write
 *   EAGAIN (as the specification says); release and poll wait
 *   uninterruptibly, since they cannot fail.
 *
 * 32-bit user space on a 64-bit kernel (compat) is not supported yet, so
 * there is deliberately no .compat_ioctl: such callers get ENOTTY.
 */

#include <linux/cdev.h>
#include <linux/fs.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

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

static char *kbus_devnode(struct device *dev, umode_t *mode)
{
	if (mode)
		*mode = 0666;
	return NULL;
}

/* Create device number kbus_devices_count; kbus_table_lock held. */
static int kbus_dev_create(u32 *index)
{
	u32 i = kbus_devices_count;
	struct kbus_dev *dev;

	if (i >= KBUS_MAX_NUM_DEVICES)
		return -EINVAL;
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	mutex_init(&dev->lock);
	dev->index = i;
	INIT_LIST_HEAD(&dev->bindings);
	INIT_LIST_HEAD(&dev->ksocks);
	INIT_LIST_HEAD(&dev->set_aside);
	init_waitqueue_head(&dev->write_wait);
	dev->max_msg_size = kbus_max_message_size;
	dev->dev = device_create(kbus_class, NULL,
				 MKDEV(MAJOR(kbus_devt), i), dev, "kbus%u", i);
	if (IS_ERR(dev->dev)) {
		int err = PTR_ERR(dev->dev);

		mutex_destroy(&dev->lock);
		kfree(dev);
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
		WARN_ON(!list_empty(&dev->ksocks) ||
			!list_empty(&dev->bindings) ||
			!list_empty(&dev->set_aside));
		mutex_destroy(&dev->lock);
		kfree(dev);
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

	if (!dev)
		return -ENOENT;
	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k)
		return -ENOMEM;
	k->outstanding = kcalloc(KBUS_INIT_OUTSTANDING_SIZE,
				 sizeof(*k->outstanding), GFP_KERNEL);
	if (!k->outstanding) {
		kfree(k);
		return -EFAULT;
	}
	k->out_size = KBUS_INIT_OUTSTANDING_SIZE;
	k->dev = dev;
	k->pid = task_pid_nr(current);
	k->writable = file->f_mode & FMODE_WRITE;
	k->max_messages = KBUS_DEF_MAX_MESSAGES;
	INIT_LIST_HEAD(&k->queue);
	INIT_LIST_HEAD(&k->unreplied);
	init_waitqueue_head(&k->read_wait);

	if (mutex_lock_interruptible(&dev->lock)) {
		kfree(k->outstanding);
		kfree(k);
		return -ERESTARTSYS;
	}
	k->id = kbus_next_counter(&dev->next_ksock_id);
	list_add(&k->list, &dev->ksocks);
	kbus_wake_writers(dev);
	kbus_dbg(dev, "ksock %u opened by pid %d\n", k->id, k->pid);
	mutex_unlock(&dev->lock);

	file->private_data = k;
	return 0;
}

static int kbus_release(struct inode *inode, struct file *file)
{
	struct kbus_ksock *k = file->private_data;
	struct kbus_dev *dev = k->dev;

	mutex_lock(&dev->lock);
	kbus_dbg(dev, "ksock %u closing\n", k->id);
	kbus_ksock_teardown(k);
	mutex_unlock(&dev->lock);
	kfree(k);
	return 0;
}

static ssize_t kbus_read(struct file *file, char __user *buf, size_t count,
			 loff_t *ppos)
{
	struct kbus_ksock *k = file->private_data;
	ssize_t ret;

	if (mutex_lock_interruptible(&k->dev->lock))
		return -EAGAIN;
	ret = kbus_read_bytes(k, buf, count);
	mutex_unlock(&k->dev->lock);
	return ret;
}

static ssize_t kbus_write(struct file *file, const char __user *buf,
			  size_t count, loff_t *ppos)
{
	struct kbus_ksock *k = file->private_data;
	ssize_t ret;

	if (mutex_lock_interruptible(&k->dev->lock))
		return -EAGAIN;
	ret = kbus_write_bytes(k, buf, count);
	mutex_unlock(&k->dev->lock);
	return ret;
}

static __poll_t kbus_poll(struct file *file, poll_table *wait)
{
	struct kbus_ksock *k = file->private_data;
	struct kbus_dev *dev = k->dev;
	__poll_t mask = 0;

	/*
	 * Writable Ksocks always register on the writer queue, not only while
	 * in sending state: epoll registers only once, when the file is added,
	 * and must still see writer wake-ups after a later EAGAIN. Wake-ups are
	 * keyed, so waiters that did not ask for POLLOUT are not disturbed.
	 */
	poll_wait(file, &k->read_wait, wait);
	if (k->writable)
		poll_wait(file, &dev->write_wait, wait);
	mutex_lock(&dev->lock);
	if (k->writable) {
		if (k->sending)
			kbus_retry_pending(k);
		if (!k->sending)
			mask |= EPOLLOUT | EPOLLWRNORM;
	}
	if (k->queue_count)
		mask |= EPOLLIN | EPOLLRDNORM;
	mutex_unlock(&dev->lock);
	return mask;
}

/* ------------------------------------------------------------------------
 * ioctls (spec 3.10, 3.11)
 */

static long kbus_ioc_bind(struct kbus_ksock *k, void __user *argp, bool bind)
{
	struct kbus_bind_request req;
	char *name;
	long ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (!req.name_len)
		return -EBADMSG;
	if (req.name_len > KBUS_MAX_NAME_LEN)
		return -ENAMETOOLONG;
	name = memdup_user_nul(req.name, req.name_len);
	if (IS_ERR(name))
		return PTR_ERR(name);
	if (bind)
		ret = kbus_bind(k, req.is_replier, name, req.name_len);
	else
		ret = kbus_unbind(k, req.is_replier, name, req.name_len);
	kfree(name);
	return ret;
}

static long kbus_ioc_replier(struct kbus_ksock *k, void __user *argp)
{
	struct kbus_bind_query query;
	char *name;

	if (copy_from_user(&query, argp, sizeof(query)))
		return -EFAULT;
	if (!query.name_len || query.name_len > KBUS_MAX_NAME_LEN)
		return -ENAMETOOLONG;
	name = memdup_user_nul(query.name, query.name_len);
	if (IS_ERR(name))
		return PTR_ERR(name);
	query.return_id = kbus_find_replier(k->dev, name, query.name_len);
	kfree(name);
	if (copy_to_user(argp, &query, sizeof(query)))
		return -EFAULT;
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
	u32 val;

	if (get_user(val, argp))
		return -EFAULT;
	if (val) {
		k->max_messages = val;
		kbus_drain_set_aside(k);
		kbus_wake_writers(k->dev);
	}
	return put_user(k->max_messages, argp);
}

/* The "just ask" convention of spec 3.12: 0/1 set, 0xFFFFFFFF queries. */
static long kbus_ioc_flag(bool *flag, u32 __user *argp)
{
	u32 old = *flag, val;

	if (get_user(val, argp))
		return -EFAULT;
	if (val > 1 && val != KBUS_JUST_ASK)
		return -EINVAL;
	if (val != KBUS_JUST_ASK)
		*flag = val;
	return put_user(old, argp);
}

static long kbus_ioc_report(struct kbus_ksock *k, u32 __user *argp)
{
	struct kbus_dev *dev = k->dev;
	u32 old = dev->report_binds, val;
	long ret;

	if (get_user(val, argp))
		return -EFAULT;
	if (val > 1 && val != KBUS_JUST_ASK)
		return -EINVAL;
	if (val != KBUS_JUST_ASK)
		dev->report_binds = val;
	if (val == 1) {
		ret = kbus_report_current_binds(k);
		if (ret)
			return ret;
	}
	return put_user(old, argp);
}

static long kbus_ioc_maxmsgsize(struct kbus_dev *dev, u32 __user *argp)
{
	u32 val;

	if (get_user(val, argp))
		return -EFAULT;
	if (val == 0) {
		val = dev->max_msg_size;
	} else if (val == 1) {
		val = kbus_abs_max_message_size;
	} else {
		if (val < KBUS_MIN_MAX_MESSAGE_SIZE ||
		    val > kbus_abs_max_message_size)
			return -EINVAL;
		dev->max_msg_size = val;
	}
	return put_user(val, argp);
}

static long kbus_ioc_newdevice(struct kbus_dev *dev, u32 __user *argp)
{
	u32 index = 0;
	int err;

	/*
	 * Fail before creating anything if the answer cannot be written:
	 * a device made for a caller who never learns its number would be
	 * state left behind by bad input.
	 */
	if (put_user(index, argp))
		return -EFAULT;
	mutex_lock(&kbus_table_lock);
	err = kbus_dev_create(&index);
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
		return put_user(k->queue_count + k->set_aside_count,
				(u32 __user *)argp);
	case KBUS_IOC_UNREPLIEDTO:
		return put_user(k->unreplied_count, (u32 __user *)argp);
	case KBUS_IOC_MSGONLYONCE:
		return kbus_ioc_flag(&k->only_once, argp);
	case KBUS_IOC_VERBOSE:
		return kbus_ioc_flag(&dev->verbose, argp);
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

static long kbus_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct kbus_ksock *k = file->private_data;
	void __user *argp = (void __user *)arg;
	long ret;

	if (_IOC_TYPE(cmd) != KBUS_IOC_MAGIC || _IOC_NR(cmd) > KBUS_IOC_MAXNR)
		return -ENOTTY;
	if ((_IOC_DIR(cmd) & (_IOC_READ | _IOC_WRITE)) &&
	    !access_ok(argp, _IOC_SIZE(cmd)))
		return -EFAULT;
	if (mutex_lock_interruptible(&k->dev->lock))
		return -ERESTARTSYS;
	ret = kbus_ioctl_locked(k, cmd, argp);
	mutex_unlock(&k->dev->lock);
	return ret;
}

static const struct file_operations kbus_fops = {
	.owner = THIS_MODULE,
	.open = kbus_open,
	.release = kbus_release,
	.read = kbus_read,
	.write = kbus_write,
	.poll = kbus_poll,
	.unlocked_ioctl = kbus_ioctl,
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
		err = kbus_dev_create(&index);
	mutex_unlock(&kbus_table_lock);
	return err;
}

static int __init kbus_init(void)
{
	int err;

	err = kbus_check_params();
	if (err) {
		pr_err("kbus: invalid module parameters\n");
		return err;
	}
	err = alloc_chrdev_region(&kbus_devt, 0, KBUS_MAX_NUM_DEVICES, "kbus");
	if (err)
		return err;
	cdev_init(&kbus_cdev, &kbus_fops);
	kbus_cdev.owner = THIS_MODULE;
	err = cdev_add(&kbus_cdev, kbus_devt, KBUS_MAX_NUM_DEVICES);
	if (err)
		goto out_region;
	kbus_class = class_create(THIS_MODULE, "kbus");
	if (IS_ERR(kbus_class)) {
		err = PTR_ERR(kbus_class);
		goto out_cdev;
	}
	kbus_class->devnode = kbus_devnode;
	err = kbus_create_initial_devices();
	if (err)
		goto out_devices;
	err = kbus_proc_init();
	if (err)
		goto out_devices;
	pr_info("kbus: %u devices\n", kbus_num_devices_now());
	return 0;

out_devices:
	kbus_destroy_devices();
	class_destroy(kbus_class);
out_cdev:
	cdev_del(&kbus_cdev);
out_region:
	unregister_chrdev_region(kbus_devt, KBUS_MAX_NUM_DEVICES);
	return err;
}

static void __exit kbus_exit(void)
{
	kbus_proc_exit();
	kbus_destroy_devices();
	class_destroy(kbus_class);
	cdev_del(&kbus_cdev);
	unregister_chrdev_region(kbus_devt, KBUS_MAX_NUM_DEVICES);
	kbus_check_leaks();
}

module_init(kbus_init);
module_exit(kbus_exit);

MODULE_DESCRIPTION("KBUS kernel-mediated message bus");
MODULE_LICENSE("GPL");
