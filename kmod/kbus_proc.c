// SPDX-License-Identifier: GPL-2.0
/*
 * KBUS: /proc/kbus/bindings and /proc/kbus/stats (spec section 8), and
 * debugfs kbus/reply_spin (ours: how Reply spins ended).
 *
 * Both are seq_files with one record per device, in index order. The
 * device pointer is looked up under kbus_table_lock (released again), and
 * each record is printed under that device's own lock. A Ksock's read and
 * write positions belong to its own lock, which /proc never takes (a Ksock
 * stalled in a user copy must not stall readers of /proc, spec 14.3): they
 * are read as a snapshot with READ_ONCE.
 */

#include <linux/debugfs.h>
#include <linux/pid.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "kbus_internal.h"

static struct proc_dir_entry *kbus_proc_dir;
static struct dentry *kbus_debugfs_dir;

static void *kbus_seq_start(struct seq_file *s, loff_t *pos)
{
	if (*pos < 0 || *pos >= kbus_num_devices_now())
		return NULL;
	return kbus_dev_get((u32)*pos);
}

static void *kbus_seq_next(struct seq_file *s, void *v, loff_t *pos)
{
	++*pos;
	return kbus_seq_start(s, pos);
}

static void kbus_seq_stop(struct seq_file *s, void *v)
{
}

static int kbus_bindings_show(struct seq_file *s, void *v)
{
	struct kbus_dev *dev = v;
	struct kbus_binding *b;

	if (mutex_lock_interruptible(&dev->lock))
		return -ERESTARTSYS;
	seq_puts(s, "# <device> is bound to <Ksock-ID> in <process-PID> as <Replier|Listener> for <message-name>\n");
	/* Spec 14.6: the PID in the reader's namespace, 0 if not visible */
	list_for_each_entry(b, &dev->bindings, dev_list)
		seq_printf(s, "%3u: %8u %8lu  %c  %.*s\n", dev->index,
			   b->ksock->id, (unsigned long)pid_vnr(b->ksock->pid),
			   b->is_replier ? 'R' : 'L', (int)b->name->len,
			   b->name->str);
	mutex_unlock(&dev->lock);
	return 0;
}

static void kbus_stats_ksock(struct seq_file *s, const struct kbus_ksock *k)
{
	struct kbus_msg_id last = READ_ONCE(k->last_sent);

	seq_printf(s, "    ksock %u last msg %u:%u queue %u of %u\n",
		   k->id, last.network_id, last.serial_num,
		   READ_ONCE(k->queue_count), k->max_messages);
	seq_printf(s, "      read byte %u of %u, wrote byte %u of %s (%sfinished), %ssending\n",
		   READ_ONCE(k->rd.pos), READ_ONCE(k->rd.total),
		   READ_ONCE(k->wr.pos), kbus_part_name(READ_ONCE(k->wr.part)),
		   READ_ONCE(k->wr.complete) ? "" : "not ",
		   READ_ONCE(k->sending) ? "" : "not ");
	seq_printf(s, "      outstanding requests %u (size %u, max %u), unsent replies %u (max %u)\n",
		   k->out_count, k->out_size, k->out_max,
		   READ_ONCE(k->unreplied_count), READ_ONCE(k->unreplied_max));
}

static int kbus_stats_show(struct seq_file *s, void *v)
{
	struct kbus_dev *dev = v;
	struct kbus_ksock *k;

	if (mutex_lock_interruptible(&dev->lock))
		return -ERESTARTSYS;
	seq_printf(s, "dev %2u: next ksock %u next msg %u unsent unbindings %u%s\n",
		   dev->index, dev->next_ksock_id, dev->next_serial,
		   dev->set_aside_count, dev->tragic ? "(gone tragic)" : "");
	list_for_each_entry(k, &dev->ksock_list, list)
		kbus_stats_ksock(s, k);
	mutex_unlock(&dev->lock);
	return 0;
}

static const struct seq_operations kbus_bindings_ops = {
	.start = kbus_seq_start,
	.next = kbus_seq_next,
	.stop = kbus_seq_stop,
	.show = kbus_bindings_show,
};

static const struct seq_operations kbus_stats_ops = {
	.start = kbus_seq_start,
	.next = kbus_seq_next,
	.stop = kbus_seq_stop,
	.show = kbus_stats_show,
};

static int kbus_reply_spin_show(struct seq_file *s, void *v)
{
	seq_printf(s, "spins %lld\ncaught %lld\ncut %lld\n",
		   (long long)atomic64_read(&kbus_spin_stats.spins),
		   (long long)atomic64_read(&kbus_spin_stats.caught),
		   (long long)atomic64_read(&kbus_spin_stats.cut));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kbus_reply_spin);

/* debugfs is for people and tests: its failures are not ours to report */
static void kbus_debugfs_init(void)
{
	kbus_debugfs_dir = debugfs_create_dir("kbus", NULL);
	debugfs_create_file("reply_spin", 0444, kbus_debugfs_dir, NULL,
			    &kbus_reply_spin_fops);
}

int kbus_proc_init(void)
{
	kbus_proc_dir = proc_mkdir("kbus", NULL);
	if (!kbus_proc_dir)
		return -ENOMEM;
	if (!proc_create_seq("bindings", 0444, kbus_proc_dir,
			     &kbus_bindings_ops) ||
	    !proc_create_seq("stats", 0444, kbus_proc_dir, &kbus_stats_ops)) {
		proc_remove(kbus_proc_dir);
		return -ENOMEM;
	}
	kbus_debugfs_init();
	return 0;
}

void kbus_proc_exit(void)
{
	debugfs_remove(kbus_debugfs_dir);
	proc_remove(kbus_proc_dir);
}
