// SPDX-License-Identifier: GPL-2.0
/*
 * KBUS: /proc/kbus/bindings and /proc/kbus/stats (spec section 8).
 *
 * Both are seq_files with one record per device, in index order. The
 * device pointer is looked up under kbus_table_lock (released again), and
 * each record is printed under that device's own lock.
 */

#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "kbus_internal.h"

static struct proc_dir_entry *kbus_proc_dir;

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
	list_for_each_entry(b, &dev->bindings, list)
		seq_printf(s, "%3u: %8u %8lu  %c  %.*s\n", dev->index,
			   b->ksock->id, (unsigned long)b->ksock->pid,
			   b->is_replier ? 'R' : 'L', (int)b->name_len,
			   b->name);
	mutex_unlock(&dev->lock);
	return 0;
}

static void kbus_stats_ksock(struct seq_file *s, const struct kbus_ksock *k)
{
	seq_printf(s, "    ksock %u last msg %u:%u queue %u of %u\n",
		   k->id, k->last_sent.network_id, k->last_sent.serial_num,
		   k->queue_count, k->max_messages);
	seq_printf(s, "      read byte %u of %u, wrote byte %u of %s (%sfinished), %ssending\n",
		   k->rd.pos, k->rd.total, k->wr.pos,
		   kbus_part_name(k->wr.part), k->wr.complete ? "" : "not ",
		   k->sending ? "" : "not ");
	seq_printf(s, "      outstanding requests %u (size %u, max %u), unsent replies %u (max %u)\n",
		   k->out_count, k->out_size, k->out_max,
		   k->unreplied_count, k->unreplied_max);
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
	list_for_each_entry(k, &dev->ksocks, list)
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
	return 0;
}

void kbus_proc_exit(void)
{
	proc_remove(kbus_proc_dir);
}
